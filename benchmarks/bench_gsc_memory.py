"""Peak host memory of one GSC training epoch at the full dataset's shape, before and after chunking.

Full Google Speech Commands v0.02 with the paper's 12 classes gives 93,327 training, 10,979
validation and 12,106 test clips (105,829 utterances split by the official lists, plus 10 %
silence crops per split). This builds a synthetic dataset of that shape in memory, exactly as
``load_gsc`` hands it to a trial (waveforms, standardized log-mel inputs, labels, six background
recordings of 60 s), and runs one epoch of ``sparsity.train.train`` (Sparse CNN-2, batch 64, one
thread, validation scored) in a child process, whose peak resident memory (``ru_maxrss``) is the
figure:

* the code of a reference commit (``--old-ref``, default ``main``: float32 waveforms, one call
  augmenting the whole training split), extracted with ``git archive`` into a temporary folder,
  on ``--old-fractions`` of the shape (the full set would not fit a 24 GiB machine), and
  extrapolated linearly to the full shape;
* this checkout's code (int16 waveforms, chunked augmentation and featurization) on a fraction
  and on the full shape, under a memory cap (``RLIMIT_DATA``, ``--cap-gb``): a run that needed
  more would fail, not swap. A full-size epoch takes about 4 CPU-minutes; ``--full-chunks N``
  cuts it short (see ``_child``) for a heavily loaded machine.

    python -m benchmarks.bench_gsc_memory                       # whole epochs (~10 min on a quiet box)
    python -m benchmarks.bench_gsc_memory --full-chunks 8       # the full size cut short
    python -m benchmarks.bench_gsc_memory --new-fractions 0.05 --old-fractions 0.02 0.05  # quick

The synthetic waveforms are drawn 4,096 clips at a time, a transient a real load (``torch.load``
of the cache) does not have, so the figures err high.

Writes ``benchmarks/results/gsc-memory-<UTC>.json`` with the machine and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FULL_SHAPE = {"train": 93_327, "validation": 10_979, "test": 12_106}
CLIP_SAMPLES = 16_000
NOISE_SECONDS, NOISE_CLIPS = 60, 6
TARGET_BYTES = 8 * 10**9


def _child(fraction: float, cap_bytes: int | None, seed: int, chunks: int | None = None) -> dict:
    """Build the synthetic dataset with whatever ``sparsity`` is importable, train one epoch, report.

    With ``chunks`` (this checkout's code only), the epoch is cut short where memory stops
    growing: the whole epoch's input tensor is allocated and touched, the whole split's draws
    are made, the first ``chunks`` chunks are augmented and featurized into it, then 20 training
    steps at batch 64 and one validation batch of 1,000 run. Every later chunk allocates and
    frees the same transient as these, so the peak of the full epoch is the peak seen here; it
    lets a full-size measurement finish on a heavily loaded machine (a full epoch is ~4 CPU-minutes)."""
    if cap_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (cap_bytes, cap_bytes))
    import torch

    from sparsity.data.base import DataSplit, Dataset
    from sparsity.data.gsc import GSCAugment, GSCFeaturizer
    from sparsity.presets import preset
    from sparsity.recipe import Recipe
    from sparsity.train import train

    torch.set_num_threads(1)
    int16_raw = "raw_scale" in DataSplit.__dataclass_fields__  # this checkout keeps PCM; the old code float32
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> DataSplit:
        raw = torch.empty(n, CLIP_SAMPLES, dtype=torch.int16 if int16_raw else torch.float32)
        for lo in range(0, n, 4096):
            pcm = torch.randint(-8000, 8001, (min(4096, n - lo), CLIP_SAMPLES), generator=g, dtype=torch.int16)
            raw[lo : lo + len(pcm)] = pcm if int16_raw else pcm.float() / 32768.0
        inputs = torch.randn(n, 1, 32, 32, generator=g)
        targets = torch.randint(0, 12, (n,), generator=g)
        return DataSplit(raw, inputs, targets, raw_scale=32768.0) if int16_raw else DataSplit(raw, inputs, targets)

    sizes = {name: max(1, round(count * fraction)) for name, count in FULL_SHAPE.items()}
    noise = [torch.rand(NOISE_SECONDS * CLIP_SAMPLES, generator=g) * 0.2 - 0.1 for _ in range(NOISE_CLIPS)]
    data = Dataset(
        name="gsc", classes=tuple(f"c{i}" for i in range(12)), input_shape=(1, 32, 32),
        train=split(sizes["train"]), validation=split(sizes["validation"]), test=split(sizes["test"]),
        featurize=GSCFeaturizer(0.0, 1.0), augment=GSCAugment(noise),
    )
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    row = {"clips": sizes, "waveform_dtype": str(data.train.raw.dtype), "dataset_peak_rss_bytes": loaded}
    if chunks is None:
        result = train(preset("sparse-cnn2", "gsc"), Recipe(epochs=1, batch_size=64), data, seed=seed, device="cpu")
        row.update(epoch="full", train_loss=result.final.train_loss)
    else:
        row.update(epoch=f"cut short after {chunks} chunks of 1,024 clips, 20 steps, 1 validation batch",
                   train_loss=_partial_epoch(data, seed, chunks))
    row.update(peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
               epoch_seconds=round(time.perf_counter() - t0, 1))
    return row


def _partial_epoch(data, seed: int, chunks: int) -> float:
    """The start of ``train``'s epoch, step for step (see ``_child``); returns the mean loss."""
    import torch

    from sparsity.data.base import AUGMENT_CHUNK
    from sparsity.presets import preset
    from sparsity.seeding import generator
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import evaluate, prepare_model, train_step

    split, n = data.train, len(data.train)
    draws = data.augment.draw(n, generator(seed, "augment", 0))
    inputs = torch.zeros((n, *split.inputs.shape[1:]))  # the epoch's inputs, every page touched
    for lo in range(0, min(n, chunks * AUGMENT_CHUNK), AUGMENT_CHUNK):
        hi = min(lo + AUGMENT_CHUNK, n)
        inputs[lo:hi] = data.featurize(data.augment.apply(split.signal(lo, hi), draws[lo:hi]))
    model = prepare_model(preset("sparse-cnn2", "gsc"), seed, torch.device("cpu"))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    order = torch.randperm(min(n, chunks * AUGMENT_CHUNK), generator=generator(seed, "data-order", 0))
    losses = []
    for step in range(min(20, len(order) // 64)):
        idx = order[step * 64 : (step + 1) * 64]
        losses.append(float(train_step(model, opt, sparse_weight_modules(model), inputs[idx], split.targets[idx])[1]))
    evaluate(model, data.validation.head(1000))
    return sum(losses) / len(losses)


def _run(code: str, pythonpath: Path, fraction: float, cap_bytes: int | None, seed: int, timeout: float,
         chunks: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(fraction), "--seed", str(seed)]
    if cap_bytes:
        cmd += ["--cap-bytes", str(cap_bytes)]
    if chunks:
        cmd += ["--chunks", str(chunks)]
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1"}
    print(f"{code} at {fraction:.0%} of the full shape ...", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=pythonpath, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"code": code, "fraction": fraction, "cap_bytes": cap_bytes, "ok": False, "error": f"timed out after {timeout:.0f}s"}
    row = {"code": code, "fraction": fraction, "cap_bytes": cap_bytes, "chunks": chunks,
           "wall_seconds": round(time.perf_counter() - t0, 1)}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {**row, "ok": False, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:500]}
    row.update(ok=True, **json.loads(lines[-1]))
    print(f"  peak {row['peak_rss_bytes'] / 1e9:.2f} GB ({row['epoch_seconds']} s epoch)", flush=True)
    return row


def _extrapolate(rows: list[dict]) -> float | None:
    """Least-squares line through (fraction, peak) of the old code's runs, read at fraction 1."""
    pts = [(r["fraction"], r["peak_rss_bytes"]) for r in rows if r.get("ok")]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return my + slope * (1.0 - mx)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-ref", default="main", help="git ref of the code before chunking (default main)")
    ap.add_argument("--old-fractions", type=float, nargs="*", default=[0.05, 0.10])
    ap.add_argument("--new-fractions", type=float, nargs="*", default=[0.05, 1.0])
    ap.add_argument("--full-chunks", type=int, default=None,
                    help="cut this checkout's full-size epoch short after N chunks (see _child); default: whole epoch")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="RLIMIT_DATA of this checkout's runs (GB, 1e9 bytes)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cap-bytes", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--chunks", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.cap_bytes, args.seed, args.chunks)), flush=True)
        return 0

    from benchmarks.common import machine_record

    machine = machine_record(REPO, threads=1)
    old_commit = subprocess.run(["git", "rev-parse", args.old_ref], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
    cap = int(args.cap_gb * 1e9)
    out = args.out or REPO / "benchmarks" / "results" / f"gsc-memory-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    record: dict = {}

    def write() -> None:  # after every run: a stopped benchmark keeps what it measured
        old_rows = [r for r in runs if r["code"] != "this checkout"]
        new_full = next((r for r in runs if r["code"] == "this checkout" and r["fraction"] == 1.0), None)
        record.update({
            "benchmark": "gsc-memory",
            "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine,
            "old_ref": args.old_ref,
            "old_commit": old_commit,
            "full_shape": FULL_SHAPE,
            "setup": "synthetic in-memory dataset shaped as load_gsc returns it; one epoch of sparsity.train.train "
                     "(sparse-cnn2, batch 64, 1 thread, CPU) in a child process; peak = ru_maxrss",
            "target_bytes": TARGET_BYTES,
            "runs": runs,
            "old_full_extrapolated_bytes": _extrapolate(old_rows),
            "new_full_peak_bytes": new_full.get("peak_rss_bytes") if new_full else None,
            "new_full_within_target": bool(new_full and new_full.get("ok") and new_full["peak_rss_bytes"] <= TARGET_BYTES),
        })
        out.write_text(json.dumps(record, indent=2) + "\n")

    plan = [("this checkout", REPO, f, cap, args.full_chunks if f == 1.0 else None) for f in args.new_fractions if f == 1.0]
    with tempfile.TemporaryDirectory(prefix="gsc-memory-") as tmp:
        archive = subprocess.run(["git", "archive", old_commit, "sparsity"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        plan += [(f"{args.old_ref} ({old_commit[:10]})", Path(tmp), f, None, None) for f in args.old_fractions]
        plan += [("this checkout", REPO, f, cap, None) for f in args.new_fractions if f != 1.0]
        for code, path, fraction, run_cap, chunks in plan:  # the full size first: the figure that matters
            runs.append(_run(code, path, fraction, run_cap, args.seed, args.timeout, chunks))
            write()
    new_full = next((r for r in runs if r["code"] == "this checkout" and r["fraction"] == 1.0), None)
    extrapolated = record["old_full_extrapolated_bytes"]
    print(f"old code at full size (extrapolated): {extrapolated / 1e9:.1f} GB" if extrapolated else "old: no fit")
    if new_full and new_full.get("ok"):
        print(f"this checkout at full size: {new_full['peak_rss_bytes'] / 1e9:.2f} GB (cap {args.cap_gb} GB)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
