"""Training throughput of our in-memory loop against a torchvision DataLoader, and noise-curve cost.

(a) Samples per second of MNIST training of Sparse CNN-2 (batch 64, the paper's lr 0.02, no momentum)
on one torch thread, end to end: ours = ``sparsity.train._train_epoch`` on the split already in
memory as tensors (batches cut by index from a permutation, forward, backward, SGD step, re-zero of
the sparse weights); baseline = the same network and the same loop fed by
``torch.utils.data.DataLoader(torchvision.datasets.MNIST(..., transform=ToTensor + Normalize),
batch_size=64, shuffle=True, num_workers=0)``. Both time the same number of batches (default 300,
i.e. 19,200 samples; --batches 0 = one full epoch of our 55,000-image train split), alternating
ours / baseline --repeats times on a fresh copy of the same initial network; medians are reported.
Target: ours >= 1.5x the baseline.

(b) The full 11-level mnist-pixels noise curve on the 10,000 official MNIST test images against
eleven clean evaluations of the same model (``bench_noise.clean_eval``), on the model trained in (a).
Target: ratio <= 1.1.

    SPARSE_SWEEPS_DATA=<data root> python benchmarks/bench_throughput.py [--batches 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torchvision import transforms

from sparsity import build_network, preset, sparse_weight_modules
from sparsity.data import DataConfig, cache_root, data_root, load_dataset
from sparsity.data.mnist import MNIST_MEAN, MNIST_STD, _locate
from sparsity.noise import get_noise
from sparsity.recipe import paper_recipe
from sparsity.train import _optimizer, _train_epoch, prepare_model, train_step

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_noise import time_noise_vs_clean  # noqa: E402
from machine import cpu_model  # noqa: E402

BATCH = 64
PRESET = "sparse-cnn2"


def fresh_model(channels_last: bool = False):
    """The network as our `train` prepares it (channels-last on the CPU), or as a user builds it."""
    spec = preset(PRESET, "mnist")
    model = prepare_model(spec, 0, torch.device("cpu")) if channels_last else build_network(spec, seed=0)
    recipe = paper_recipe(PRESET, "mnist")
    opt, _ = _optimizer(model, recipe)
    return model, opt, recipe.lr


def time_ours(data, batches: int, seed: int) -> tuple[float, int, torch.nn.Module]:
    model, opt, lr = fresh_model(channels_last=True)
    split = data.train
    n = len(split) if batches == 0 else min(len(split), batches * BATCH)
    t = time.perf_counter()
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    _train_epoch(model, opt, split, split.inputs, BATCH, order, 0, lr)
    return time.perf_counter() - t, n, model


def loader_epoch(model, opt, loader, batches: int) -> int:
    """The same steps as ``_train_epoch`` (incl. loss/accuracy accumulation), fed by ``loader``."""
    sparse = sparse_weight_modules(model)
    model.train()
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.long)
    seen = 0
    for step, (x, y) in enumerate(loader):
        if batches and step >= batches:
            break
        logits, loss = train_step(model, opt, sparse, x, y)
        with torch.no_grad():
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        if step % 50 == 0 and not torch.isfinite(loss_sum):
            raise RuntimeError("non-finite loss")
        seen += len(y)
    float(loss_sum), int(correct)
    return seen


def time_loader(dataset, batches: int, seed: int, channels_last: bool = False) -> tuple[float, int]:
    model, opt, _ = fresh_model(channels_last)
    t = time.perf_counter()
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(seed))
    n = loader_epoch(model, opt, loader, batches)
    return time.perf_counter() - t, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300, help="batches timed per measurement; 0 = full epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"machine: {platform.platform()}; CPU {cpu_model()}; {os.cpu_count()} CPUs; torch {torch.__version__}; "
          f"torch threads {torch.get_num_threads()}; load average at start {os.getloadavg()[0]:.1f} "
          f"(machine shared with other work: figures are indicative)")

    data = load_dataset(DataConfig(name="mnist"))
    folder = _locate(data_root(None), cache_root(None))  # the extracted copy load_mnist reads
    tv = torchvision.datasets.MNIST(
        str(folder), train=True, download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]),
    )
    what = "one full epoch" if args.batches == 0 else f"{args.batches} batches of {BATCH} (extrapolated to samples/s)"
    print(f"\n(a) training throughput, {PRESET} on MNIST, batch {BATCH}, {what}; "
          f"ours: in-memory train split ({len(data.train):,}), baseline: DataLoader over torchvision MNIST "
          f"({len(tv):,}), ToTensor + Normalize, num_workers=0; median of {args.repeats}, alternating")

    time_ours(data, 10, seed=99)  # warm-up (allocator, kernels), not timed
    ours, theirs, theirs_cl, model = [], [], [], None
    for r in range(args.repeats):
        dt, n, model = time_ours(data, args.batches, seed=r)
        ours.append(n / dt)
        dt2, n2 = time_loader(tv, args.batches, seed=r)
        theirs.append(n2 / dt2)
        dt3, n3 = time_loader(tv, args.batches, seed=r, channels_last=True)
        theirs_cl.append(n3 / dt3)
        print(f"  repeat {r}: ours {n / dt:8.0f} samples/s ({n} in {dt:.2f} s)   "
              f"DataLoader {n2 / dt2:8.0f} samples/s ({n2} in {dt2:.2f} s)   "
              f"DataLoader, channels-last net {n3 / dt3:8.0f} samples/s")
    o, t, tcl = statistics.median(ours), statistics.median(theirs), statistics.median(theirs_cl)
    ratio = o / t
    print(f"ours (sparsity.train: in-memory batches, channels-last net on the CPU): {o:8.0f} samples/s "
          f"(one 55,000-image epoch ≈ {len(data.train) / o:.1f} s)")
    print(f"DataLoader + ToTensor/Normalize, the net as built:                 {t:8.0f} samples/s "
          f"(≈ {len(data.train) / t:.1f} s)")
    print(f"ratio:      {ratio:8.2f}x   {'PASS' if ratio >= 1.5 else 'FAIL'} (target >= 1.5x)")
    print(f"for context, the data path alone (DataLoader feeding the channels-last net too): "
          f"{tcl:8.0f} samples/s, ours {o / tcl:.2f}x")

    # Data pipeline alone, for context: how much of the baseline's time is the loader.
    nb = len(data.train) // BATCH if args.batches == 0 else args.batches
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(torch.utils.data.DataLoader(tv, batch_size=BATCH, shuffle=True, num_workers=0)):
        if step + 1 >= nb:
            break
    loader_only = time.perf_counter() - t0
    t0 = time.perf_counter()
    order = torch.randperm(len(data.train))
    for start in range(0, nb * BATCH, BATCH):
        idx = order[start : start + BATCH]
        x, y = data.train.inputs[idx], data.train.targets[idx]
    index_only = time.perf_counter() - t0
    print(f"data only ({nb} batches): DataLoader {loader_only:.2f} s, index cut {index_only:.3f} s")
    baseline_s = nb * BATCH / t
    if baseline_s > loader_only:
        print(f"estimate: the DataLoader alone is {100 * loader_only / baseline_s:.0f} % of the baseline's "
              f"{baseline_s:.1f} s, so removing the data path entirely gives about "
              f"{baseline_s / (baseline_s - loader_only):.2f}x; the rest is the network's forward/backward/step")

    # (b) noise curve vs eleven clean evaluations on the real test set.
    levels = len(get_noise("mnist-pixels").levels)
    model.eval()
    test = data.test
    print(f"\n(b) noise curve, {PRESET} (trained in (a)), {len(test):,} MNIST test images, mnist-pixels, "
          f"{levels} levels, batch 1000; median of {args.noise_repeats}, alternating")
    clean_t, curve_t, curve = time_noise_vs_clean(model, test, data.featurize, "mnist-pixels", args.noise_repeats)
    c, f = statistics.median(clean_t), statistics.median(curve_t)
    print(f"clean eval x{levels}: {c:7.2f} s   (runs: {', '.join(f'{v:.2f}' for v in clean_t)})")
    print(f"noise curve:     {f:7.2f} s   (runs: {', '.join(f'{v:.2f}' for v in curve_t)})")
    print(f"ratio:           {f / c:7.3f}   {'PASS' if f / c <= 1.1 else 'FAIL'} (target <= 1.1)")
    print(f"noise score of this briefly trained model: {curve.noise_score:,} "
          f"(clean accuracy {100 * curve.accuracies[0]:.2f} %)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
