"""Cost of the k-winners and sparse-weight machinery in the step training really runs, on the CPU.

Three interleaved comparisons in one process (the variants alternate, in rotating order, inside one
loop, so load that drifts slows every variant alike), at one torch thread by default:

* step: one Sparse CNN-2 training step at batch 64 exactly as `sparsity.train.train` runs it: the
  model from `prepare_model` (channels-last on the CPU), the paper recipe's SGD, `train_step`
  (forward, cross-entropy, backward, SGD step, re-zero of the sparse weights), against the dense
  twin (the same NetworkSpec with every percent_on and weight_density 1: ReLU and dense weights)
  prepared the same way; for context the same two nets in the contiguous layout, and the reference library's
  Sparse CNN-2 (tests/reference_nupic.py: its KWinners2d, KWinners and SparseWeights, whose
  kwinners2d needs the contiguous layout, re-zeroed with ``model.apply(rezero_weights)``).
* eval: one batch of a noise curve as `sparsity.noise.noise_curve` runs it: eval mode,
  ``inference_mode``, batch 1000 (the curve's batch), forward, argmax, count of correct; sparse and
  dense twin prepared for training, and the contiguous sparse net for context.
* layers: forward+backward in training mode (duty-cycle update included) of each k-winners layer
  against ReLU on the same tensors, 2-D inputs channels-last.

Reported: medians and minimums of wall time, the median of the paired ratios (repeat r of one
variant over repeat r of the other), CPU time of the thread (less sensitive to a busy machine) and
the load average before and after. Targets: step <= 1.10x the dense twin's, eval <= 1.05x, and
the sparse step <= 0.7x the reference library's. Raw per-repeat times go to
benchmarks/results/layers-<UTC time>.json with the commit and the machine.

    python -m benchmarks.bench_layers [--step-repeats 150] [--eval-repeats 40] [--repeats 300]
                                      [--threads 1] [--profile] [--no-json]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as TF
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent

import sparsity  # noqa: E402
from benchmarks.common import cpu_model  # noqa: E402
from sparsity.recipe import paper_recipe  # noqa: E402
from sparsity.sparse_weights import sparse_weight_modules  # noqa: E402
from sparsity.train import make_optimizer, prepare_model, train_step  # noqa: E402
from benchmarks import reference_nupic as ref  # noqa: E402

PRESET = "sparse-cnn2"
STEP_TARGET, EVAL_TARGET, REF_TARGET = 1.10, 1.05, 0.70

# ----------------------------------------------------------------------------- timing


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 5) -> dict[str, dict[str, list[float]]]:
    """Wall and thread-CPU seconds per call of each function, per repeat; every repeat runs all of
    them, in rotating order, so that entry r of every list was measured at nearly the same moment."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[: r % len(names)]:
            c0, t0 = time.thread_time(), time.perf_counter()
            fns[n]()
            t1, c1 = time.perf_counter(), time.thread_time()
            times[n]["wall"].append(t1 - t0)
            times[n]["cpu"].append(c1 - c0)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over repeats of a[r] / b[r]: robust to load that drifts during the run."""
    return statistics.median(x / y for x, y in zip(a, b))


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(), "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "sparsity", "benchmarks",
                                "tests/reference_nupic.py"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+uncommitted changes to the code measured" if dirty else "")
    except OSError:
        return "unknown"


# ----------------------------------------------------------------------------- networks


def dense_version(spec: sparsity.NetworkSpec) -> sparsity.NetworkSpec:
    """The same spec with every percent_on and weight_density 1: ReLU and dense weights."""
    return dataclasses.replace(
        spec,
        conv=tuple(dataclasses.replace(c, percent_on=1.0, weight_density=1.0) for c in spec.conv),
        linear=tuple(dataclasses.replace(l, percent_on=1.0, weight_density=1.0) for l in spec.linear),
        name=spec.name + "-dense",
    )


def reference_version(spec: sparsity.NetworkSpec, seed: int = 0) -> nn.Module:
    """The network with the reference library's modules in place of ours (same weights at start)."""
    model = sparsity.build_network(spec, seed=seed)
    kw = spec.kwinners
    settings = dict(k_inference_factor=kw.k_inference_factor, boost_strength=kw.boost_strength,
                    boost_strength_factor=kw.boost_strength_factor, duty_cycle_period=kw.duty_cycle_period)
    np.random.seed(seed)  # the reference draws its masks from numpy's global generator
    for block in [*model.features, *model.hidden]:
        for name, m in list(block.named_children()):
            if isinstance(m, sparsity.KWinners2d):
                new = ref.KWinners2d(m.channels, m.percent_on, local=m.local, break_ties=m.break_ties, **settings)
            elif isinstance(m, sparsity.KWinners):
                new = ref.KWinners(m.n, m.percent_on, break_ties=m.break_ties, **settings)
            elif isinstance(m, sparsity.SparseWeights):
                new = ref.SparseWeights(m.module, sparsity=1.0 - m.weight_density)
            elif isinstance(m, sparsity.SparseWeights2d):
                new = ref.SparseWeights2d(m.module, sparsity=1.0 - m.weight_density)
            else:
                continue
            setattr(block, name, new)
    return model


def ours_step(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    """`sparsity.train.train_step` with train()'s optimizer for the paper recipe."""
    opt, _ = make_optimizer(model, paper_recipe(PRESET, "mnist"))
    sparse = sparse_weight_modules(model)
    model.train()
    return lambda: train_step(model, opt, sparse, x, y)


def reference_step(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    """The reference library's training step: the same SGD, then ``model.apply(rezero_weights)``."""
    opt, _ = make_optimizer(model, paper_recipe(PRESET, "mnist"))
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        TF.cross_entropy(model(x), y).backward()
        opt.step()
        model.apply(ref.rezero_weights)
    return step


def eval_step(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    """One batch of `noise_curve`: eval mode, inference mode, forward, argmax, count of correct."""
    model.eval()

    def step() -> None:
        with torch.inference_mode():
            (model(x).argmax(dim=1) == y).sum()
    return step


def batch(spec: sparsity.NetworkSpec, n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *spec.input_shape, generator=g), torch.randint(0, spec.num_classes, (n,), generator=g)


def step_variants(batch_size: int = 64) -> dict[str, Callable[[], None]]:
    spec = sparsity.preset(PRESET, "mnist")
    dense = dense_version(spec)
    assert dense.is_dense and dense.num_params == spec.num_params
    x, y = batch(spec, batch_size, 1)
    cpu = torch.device("cpu")
    return {
        "sparse": ours_step(prepare_model(spec, 0, cpu), x, y),
        "dense": ours_step(prepare_model(dense, 0, cpu), x, y),
        "sparse_contiguous": ours_step(sparsity.build_network(spec, seed=0), x, y),
        "dense_contiguous": ours_step(sparsity.build_network(dense, seed=0), x, y),
        "reference_sparse": reference_step(reference_version(spec), x, y),
    }


def eval_variants(batch_size: int = 1000) -> dict[str, Callable[[], None]]:
    spec = sparsity.preset(PRESET, "mnist")
    dense = dense_version(spec)
    x, y = batch(spec, batch_size, 2)
    cpu = torch.device("cpu")
    return {
        "sparse": eval_step(prepare_model(spec, 0, cpu), x, y),
        "dense": eval_step(prepare_model(dense, 0, cpu), x, y),
        "sparse_contiguous": eval_step(sparsity.build_network(spec, seed=0), x, y),
    }


def layer_variants() -> dict[str, dict[str, Callable[[], None]]]:
    g = torch.Generator().manual_seed(0)
    cl = torch.channels_last
    cases = [
        ("KWinners   B=64 n=700 k=100", lambda: sparsity.KWinners(700, 100 / 700, boost_strength=1.5), (64, 700)),
        ("KWinners2d global B=64 32x12x12 k=400",
         lambda: sparsity.KWinners2d(32, 400 / 4608, boost_strength=1.5), (64, 32, 12, 12)),
        ("KWinners2d global B=64 64x4x4 k=300",
         lambda: sparsity.KWinners2d(64, 300 / 1024, boost_strength=1.5), (64, 64, 4, 4)),
        ("KWinners2d local  B=64 32x12x12 k=3/32",
         lambda: sparsity.KWinners2d(32, 0.1, boost_strength=1.5, local=True), (64, 32, 12, 12)),
    ]
    out = {}
    for label, make, shape in cases:
        fmt = cl if len(shape) == 4 else torch.contiguous_format
        x = torch.randn(shape, generator=g).contiguous(memory_format=fmt)
        grad = torch.randn(shape, generator=g).contiguous(memory_format=fmt)

        def fwd_bwd(layer: nn.Module, x: Tensor = x, grad: Tensor = grad) -> Callable[[], None]:
            return lambda: layer(x.detach().requires_grad_()).backward(grad)
        out[label] = {"relu": fwd_bwd(nn.ReLU()), "kwta": fwd_bwd(make())}
    return out


def profile_step(steps: int = 20) -> str:
    from torch.profiler import ProfilerActivity, profile

    step = step_variants()["sparse"]
    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    return prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=30)


# ----------------------------------------------------------------------------- report


def summary(times: dict[str, dict[str, list[float]]], base: str) -> dict[str, dict[str, float]]:
    out = {}
    for name, t in times.items():
        out[name] = {
            "median_ms": 1e3 * statistics.median(t["wall"]), "min_ms": 1e3 * min(t["wall"]),
            "cpu_median_ms": 1e3 * statistics.median(t["cpu"]),
            f"x_{base}": paired_ratio(t["wall"], times[base]["wall"]),
            f"cpu_x_{base}": paired_ratio(t["cpu"], times[base]["cpu"]),
        }
    return out


def print_table(title: str, s: dict[str, dict[str, float]], base: str, labels: dict[str, str]) -> None:
    print(title)
    hdr = f"{'variant':58s} {'median':>9s} {'min':>9s} {'CPU med':>9s} {'x ' + base + ' (paired)':>20s} {'CPU x':>6s}"
    print(hdr)
    print("-" * len(hdr))
    for name, row in s.items():
        print(f"{labels.get(name, name):58s} {row['median_ms']:7.2f}ms {row['min_ms']:7.2f}ms "
              f"{row['cpu_median_ms']:7.2f}ms {row['x_' + base]:19.3f}x {row['cpu_x_' + base]:5.3f}x")
    print()


STEP_LABELS = {
    "sparse": "Sparse CNN-2, as train() runs it (channels-last)",
    "dense": "dense twin, as train() runs it (channels-last)",
    "sparse_contiguous": "Sparse CNN-2, contiguous layout",
    "dense_contiguous": "dense twin, contiguous (the reference's ReLU twin)",
    "reference_sparse": "reference library's Sparse CNN-2 (contiguous)",
}
EVAL_LABELS = {
    "sparse": "Sparse CNN-2, eval, as trained (channels-last)",
    "dense": "dense twin, eval, as trained (channels-last)",
    "sparse_contiguous": "Sparse CNN-2, eval, contiguous layout",
}


def verdict(value: float, target: float) -> str:
    return f"{value:.3f}x (target <= {target:.2f}x): {'MET' if value <= target else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step-repeats", type=int, default=150, help="timed training steps per variant")
    ap.add_argument("--eval-repeats", type=int, default=40, help="timed eval batches (1000) per variant")
    ap.add_argument("--repeats", type=int, default=300, help="timed repeats per layer variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table of the sparse step")
    ap.add_argument("--no-json", action="store_true", help="do not write benchmarks/results/layers-*.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    started = dt.datetime.now(dt.timezone.utc)
    result: dict[str, object] = {
        "benchmark": "bench_layers", "utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit(),
        "machine": machine(), "load_before": load(), "args": vars(args),
    }
    print(f"machine: {platform.platform()} | {cpu_model()} | {os.cpu_count()} logical CPUs | torch {torch.__version__} "
          f"| torch threads {torch.get_num_threads()} | python {platform.python_version()}")
    print(f"commit {result['commit']}; load average before (1, 5, 15 min): {result['load_before']}")
    print()

    step = interleaved(step_variants(), args.step_repeats, warmup=10)
    s = summary(step, "dense")
    print_table(f"training step, batch 64 (forward, cross-entropy, backward, SGD, re-zero); {args.step_repeats} "
                "interleaved repeats", s, "dense", STEP_LABELS)
    ref_ratio = paired_ratio(step["sparse"]["wall"], step["reference_sparse"]["wall"])
    load_mid = load()

    ev = interleaved(eval_variants(), args.eval_repeats, warmup=3)
    e = summary(ev, "dense")
    print_table(f"noise-curve eval batch, 1000 images (eval mode, inference_mode, forward, argmax, correct); "
                f"{args.eval_repeats} interleaved repeats", e, "dense", EVAL_LABELS)

    layers = {label: interleaved(fns, args.repeats) for label, fns in layer_variants().items()}
    print(f"forward+backward in training mode (duty-cycle update included), 2-D inputs channels-last; "
          f"medians of {args.repeats} interleaved repeats")
    hdr = f"{'layer':40s} {'ReLU':>8s} {'k-WTA':>8s} {'x ReLU':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for label, t in layers.items():
        print(f"{label:40s} {1e6 * statistics.median(t['relu']['wall']):6.0f}us "
              f"{1e6 * statistics.median(t['kwta']['wall']):6.0f}us {paired_ratio(t['kwta']['wall'], t['relu']['wall']):6.1f}x")
    print()

    result.update(load_after=load(), load_between_step_and_eval=load_mid, step=step, step_summary=s,
                  eval=ev, eval_summary=e, layers=layers)
    targets = {
        "step_sparse_over_dense": (s["sparse"]["x_dense"], STEP_TARGET),
        "eval_sparse_over_dense": (e["sparse"]["x_dense"], EVAL_TARGET),
        "step_sparse_over_reference": (ref_ratio, REF_TARGET),
    }
    result["targets"] = {k: {"value": v, "target": t, "met": v <= t} for k, (v, t) in targets.items()}
    print(f"training step, sparse / dense twin (paired median):   {verdict(*targets['step_sparse_over_dense'])}")
    print(f"noise-curve eval, sparse / dense twin (paired median): {verdict(*targets['eval_sparse_over_dense'])}")
    print(f"training step, ours / reference library's:             {verdict(*targets['step_sparse_over_reference'])}")
    print(f"load average after: {result['load_after']} (before {result['load_before']})")
    if not args.no_json:
        out = ROOT / "benchmarks" / "results" / f"layers-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"raw results: {out.relative_to(ROOT)}")
    if args.profile:
        print()
        print(profile_step())
    return 0


if __name__ == "__main__":
    sys.exit(main())
