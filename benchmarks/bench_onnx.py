"""ONNX hand-off against PyTorch: the same predictions and the same noise score.

For the paper's Dense CNN-2, Sparse CNN-2 and Sparse CNN-2 DSW on MNIST, each briefly trained with
its paper recipe (the first 6,000 training images, one epoch, seed 0), the exported graph
(`sparsity.onnx_export.to_onnx`, preprocessing inside) is run in onnxruntime on the raw pixels
and the PyTorch model on the featurised pixels:

* clean: the full 10,000-image test set; target >= 99.9 % identical predictions;
* noise: the "mnist-pixels" curve (11 levels) on the test set, the noisy images drawn once by
  `sparsity.noise` (as `noise_curve` draws them: batch b from ``generator(0, "noise", kind, b)``) and
  fed to both; target: the onnxruntime noise score within 0.1 % of PyTorch's.

One thread for torch and onnxruntime. Writes benchmarks/results/onnx-<UTC>.json.

    SPARSE_SWEEPS_DATA=/work/shared/data python -m benchmarks.bench_onnx [--train 6000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_record
from sparsity import generator, preset
from sparsity.data import DataConfig, load_dataset
from sparsity.data.mnist import mnist_featurize
from sparsity.noise import get_noise, noise_curve
from sparsity.onnx_export import INPUT, to_onnx
from sparsity.recipe import paper_recipe
from sparsity.train import train

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("dense-cnn2", "sparse-cnn2", "sparse-cnn2-dsw")
KIND = "mnist-pixels"
BATCH = 1000


def _session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare(model, session, split) -> dict:
    """Clean predictions on the whole split, and the noise curve's correct counts, from both."""
    noise = get_noise(KIND)
    levels = noise.levels
    n = len(split)
    same = 0
    correct_pt = np.zeros(len(levels), dtype=np.int64)
    correct_ort = np.zeros(len(levels), dtype=np.int64)
    t_pt = t_ort = 0.0
    model.eval()
    with torch.inference_mode():
        for b, lo in enumerate(range(0, n, BATCH)):
            hi = min(lo + BATCH, n)
            targets = split.targets[lo:hi].numpy()
            sampler = noise.sampler(split.raw[lo:hi], generator(0, "noise", KIND, b))
            for i, level in enumerate(levels):
                raw = split.raw[lo:hi] if noise.is_clean(level) else sampler(level)
                x = split.inputs[lo:hi] if noise.is_clean(level) else mnist_featurize(raw)
                t0 = time.perf_counter()
                pt = model(x).argmax(1).numpy()
                t1 = time.perf_counter()
                ort = session.run(None, {INPUT["mnist"]: raw.numpy()})[0].argmax(1)
                t2 = time.perf_counter()
                t_pt, t_ort = t_pt + t1 - t0, t_ort + t2 - t1
                if noise.is_clean(level):
                    same += int((pt == ort).sum())
                correct_pt[i] += int((pt == targets).sum())
                correct_ort[i] += int((ort == targets).sum())
    score_pt, score_ort = int(correct_pt.sum()), int(correct_ort.sum())
    reference = noise_curve(model, split, mnist_featurize, kind=KIND, seed=0, batch_size=BATCH)  # the library's own
    return {
        "test_images": n,
        "identical_predictions": same,
        "identical_fraction": same / n,
        "pytorch_test_accuracy": float(correct_pt[list(levels).index(noise.clean_level)] / n),
        "noise_score_pytorch": score_pt,
        "noise_score_onnxruntime": score_ort,
        "noise_score_noise_curve": reference.noise_score,
        "noise_score_relative_difference": abs(score_ort - score_pt) / score_pt,
        "correct_per_level_pytorch": correct_pt.tolist(),
        "correct_per_level_onnxruntime": correct_ort.tolist(),
        "seconds_pytorch": round(t_pt, 2),
        "seconds_onnxruntime": round(t_ort, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=6000, help="training images (default 6000)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/onnx-<UTC>.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = load_dataset(DataConfig(name="mnist", train_limit=args.train))
    classes = data.classes
    record = {"benchmark": "onnx", "machine": machine_record(REPO, threads=1), "threads": 1,
              "train_images": args.train, "epochs": args.epochs, "noise": KIND, "targets": {
                  "identical_fraction": ">= 0.999", "noise_score_relative_difference": "<= 0.001"}, "networks": {}}
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        for name in PRESETS:
            t0 = time.perf_counter()
            recipe = paper_recipe(name, "mnist").replace(epochs=args.epochs)
            model = train(preset(name, "mnist"), recipe, data, seed=0, device="cpu", threads=1).model.eval()
            trained = time.perf_counter() - t0
            path = to_onnx(model, Path(tmp) / f"{name}.onnx", dataset="mnist", classes=classes)
            row = compare(model, _session(path), data.test)
            row["seconds_training"] = round(trained, 1)
            row["meets_targets"] = row["identical_fraction"] >= 0.999 and row["noise_score_relative_difference"] <= 0.001
            record["networks"][name] = row
            print(f"{name}: {row['identical_predictions']:,}/{row['test_images']:,} identical "
                  f"({100 * row['identical_fraction']:.2f} %), noise score PyTorch {row['noise_score_pytorch']:,} "
                  f"(noise_curve {row['noise_score_noise_curve']:,}), onnxruntime {row['noise_score_onnxruntime']:,} "
                  f"({100 * row['noise_score_relative_difference']:.3f} % apart); test acc "
                  f"{100 * row['pytorch_test_accuracy']:.2f} %; inference s: PyTorch {row['seconds_pytorch']}, "
                  f"onnxruntime {row['seconds_onnxruntime']}", flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"onnx-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
