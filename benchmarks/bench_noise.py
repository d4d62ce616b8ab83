"""Cost of the full 11-level MNIST noise curve against eleven clean evaluations.

Target: noise curve <= 1.1x eleven clean evaluations (model forward over ``split.inputs`` in
batches of 1000), for Sparse CNN-2 on 10,000 MNIST-like images at one torch thread.

    python -m benchmarks.bench_noise [--repeats 3] [--n 10000] [--preset sparse-cnn2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sparsity import build_network, preset
from sparsity.data.base import DataSplit
from sparsity.noise import get_noise, noise_curve


def featurize(raw: torch.Tensor) -> torch.Tensor:
    return (raw - 0.1307) / 0.3081


def clean_eval(model: torch.nn.Module, split: DataSplit, batch_size: int = 1000) -> int:
    correct = 0
    with torch.inference_mode():
        for lo in range(0, len(split), batch_size):
            pred = model(split.inputs[lo : lo + batch_size]).argmax(1)
            correct += int((pred == split.targets[lo : lo + batch_size]).sum())
    return correct


def time_noise_vs_clean(model: torch.nn.Module, split: DataSplit, featurize, kind: str, repeats: int):
    """(clean times, curve times, last curve): eleven clean evaluations against one full noise
    curve, alternating, ``repeats`` times, after a warm-up."""
    levels = len(get_noise(kind).levels)
    clean_eval(model, split.head(1000))  # warm-up
    clean_times, curve_times, curve = [], [], None
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(levels):
            clean_eval(model, split)
        clean_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        curve = noise_curve(model, split, featurize, kind)
        curve_times.append(time.perf_counter() - t)
    return clean_times, curve_times, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--preset", default="sparse-cnn2")
    parser.add_argument("--kind", default="mnist-pixels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(args.n, 1, 28, 28, generator=g)
    split = DataSplit(raw, featurize(raw), torch.randint(0, 10, (args.n,), generator=g))
    model = build_network(preset(args.preset), seed=0).eval()
    levels = len(get_noise(args.kind).levels)
    clean_times, curve_times, curve = time_noise_vs_clean(model, split, featurize, args.kind, args.repeats)

    clean, full = statistics.median(clean_times), statistics.median(curve_times)
    print(f"{args.preset}, {args.n} images, {args.threads} thread(s), median of {args.repeats}")
    print(f"clean eval x{levels}:      {clean:8.2f} s   (runs: {', '.join(f'{v:.2f}' for v in clean_times)})")
    print(f"noise curve ({args.kind}): {full:8.2f} s   (runs: {', '.join(f'{v:.2f}' for v in curve_times)})")
    print(f"ratio:                {full / clean:8.3f}   (target <= 1.1)")
    print(f"noise score (untrained net): {curve.noise_score}")


if __name__ == "__main__":
    main()
