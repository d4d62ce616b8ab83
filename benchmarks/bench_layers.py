"""Cost of the k-winners and sparse-weight machinery on the CPU, at one thread.

Prints a table of forward+backward times of KWinners / KWinners2d against ReLU on the same tensors,
and one full training step of Sparse CNN-2 (batch 64: forward, cross-entropy, backward, SGD step,
rezero_weights) against the same NetworkSpec made dense (every percent_on and weight_density 1.0).
The target: k-winners + sparse weights add at most 15% to the Sparse CNN-2 step.

Timing is interleaved (the variants alternate, in rotating order, inside one loop) and reported as
medians, so a noisy neighbour slows every variant alike. ``--profile`` adds a torch.profiler table of
the Sparse CNN-2 step.

The "proto" rows time a prototype of faster selection code defined in this file (not the library):
the k-th largest value per row from ``numpy.partition`` instead of ``torch.topk``, masks written as
floats directly (``torch.ge(..., out=float)``), activity counts the same way, and a cached float
weight mask for ``rezero_weights``. The script checks the prototype gives the library's outputs
before timing it.

    python benchmarks/bench_layers.py [--repeats N] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import statistics
import sys
import time
import types
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as TF
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's sparsity

import sparsity
import sparsity.functional as LF
import sparsity.kwinners as kwinners_module
import sparsity.sparse_weights as sw_module

# ----------------------------------------------------------------------------- prototype variant


def _kth_largest(scores: Tensor, k: int) -> Tensor:
    """(rows, 1): the k-th largest of each row. numpy's introselect on the CPU, topk elsewhere."""
    n = scores.shape[1]
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        a = scores.detach().contiguous().numpy()
        return torch.from_numpy(np.partition(a, n - k, axis=1)[:, n - k : n - k + 1])
    return scores.topk(k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)


def _winner_mask_float(boosted: Tensor, k: int, break_ties: bool) -> Tensor:
    """Float (1.0 / 0.0) mask of the winners of each row; same winners as the library's bool mask."""
    n = boosted.shape[1]
    if k >= n:
        return torch.ones_like(boosted)
    if break_ties:
        if boosted.device.type == "cpu" and boosted.dtype in (torch.float32, torch.float64):
            idx = torch.from_numpy(np.argpartition(boosted.contiguous().numpy(), n - k, axis=1)[:, n - k :])
        else:
            idx = boosted.topk(k, dim=1, sorted=False).indices
        return torch.zeros_like(boosted).scatter_(1, idx, 1.0)
    return torch.ge(boosted, _kth_largest(boosted, k), out=torch.empty_like(boosted))


def proto_kwinners(x: Tensor, duty_cycle: Tensor, k: int, boost_strength, break_ties: bool = False) -> Tensor:
    with torch.no_grad():
        boosted = x * LF.boost_factors(duty_cycle, k / x.shape[1], boost_strength)
        mask = _winner_mask_float(boosted, k, break_ties)
    return x * mask


def proto_kwinners2d(x: Tensor, duty_cycle: Tensor, k: int, boost_strength, local: bool = False,
                     break_ties: bool = False) -> Tensor:
    b, c, h, w = x.shape
    with torch.no_grad():
        n = c if local else c * h * w
        boosted = x * LF.boost_factors(duty_cycle, k / n, boost_strength).view(1, c, 1, 1)
        if local:
            flat = boosted.permute(0, 2, 3, 1).reshape(-1, c)
            mask = _winner_mask_float(flat, k, break_ties).view(b, h, w, c).permute(0, 3, 1, 2)
        else:
            mask = _winner_mask_float(boosted.reshape(b, -1), k, break_ties).view_as(x)
    return x * mask


def proto_active_counts(y: Tensor) -> Tensor:
    return torch.gt(y, 0, out=torch.empty_like(y)).sum(dim=0)


def proto_active_counts2d(y: Tensor) -> Tensor:
    return torch.gt(y, 0, out=torch.empty_like(y)).sum(dim=(0, 2, 3)) / float(y.shape[2] * y.shape[3])


PROTO_F = types.SimpleNamespace(**{name: getattr(LF, name) for name in LF.__all__})
PROTO_F.kwinners = proto_kwinners
PROTO_F.kwinners2d = proto_kwinners2d
PROTO_F.active_counts = proto_active_counts
PROTO_F.active_counts2d = proto_active_counts2d


@torch.no_grad()
def proto_rezero_weights(self) -> None:
    """mul_ by a cached float copy of the bool mask (a bool operand costs a conversion every call).
    A library version must refresh the cache when load_state_dict replaces weight_mask."""
    w = self.module.weight
    m = self.__dict__.get("_bench_float_mask")
    if m is None or m.dtype != w.dtype or m.device != w.device:
        m = self.weight_mask.to(w.dtype)
        self.__dict__["_bench_float_mask"] = m
    w.mul_(m)


@contextlib.contextmanager
def variant(name: str):
    """Run the library ("lib") or the prototype ("proto") inside the block."""
    if name == "lib":
        yield
        return
    saved_f, saved_rezero = kwinners_module.F, sw_module._SparseWeightsBase.rezero_weights
    kwinners_module.F = PROTO_F
    sw_module._SparseWeightsBase.rezero_weights = proto_rezero_weights
    try:
        yield
    finally:
        kwinners_module.F = saved_f
        sw_module._SparseWeightsBase.rezero_weights = saved_rezero


# ----------------------------------------------------------------------------- timing


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 5) -> dict[str, list[float]]:
    """Seconds per call of each function, per repeat; every repeat runs all of them, in rotating order,
    so that entry r of every list was measured at nearly the same moment."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median over repeats of a[r] / b[r]: robust to load that drifts during the run."""
    return statistics.median(x / y for x, y in zip(a, b))


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return (
        f"{platform.platform()} | {cpu} | {os.cpu_count()} logical CPUs visible | "
        f"torch {torch.__version__} | torch threads {torch.get_num_threads()} | python {platform.python_version()}"
    )


def fwd_bwd(layer: nn.Module, x: Tensor, grad: Tensor, var: str) -> Callable[[], None]:
    def run() -> None:
        with variant(var):
            xi = x.detach().requires_grad_()
            layer(xi).backward(grad)
    return run


def layer_rows(repeats: int) -> list[tuple[str, dict[str, float]]]:
    g = torch.Generator().manual_seed(0)
    cases = [
        ("KWinners   B=64 n=700 k=100", lambda: sparsity.KWinners(700, 100 / 700, boost_strength=1.5), (64, 700)),
        ("KWinners   B=64 n=8192 k=410", lambda: sparsity.KWinners(8192, 0.05, boost_strength=1.5), (64, 8192)),
        ("KWinners2d global B=64 32x12x12 k=400",
         lambda: sparsity.KWinners2d(32, 400 / 4608, boost_strength=1.5), (64, 32, 12, 12)),
        ("KWinners2d global B=64 64x4x4 k=300",
         lambda: sparsity.KWinners2d(64, 300 / 1024, boost_strength=1.5), (64, 64, 4, 4)),
        ("KWinners2d local  B=64 32x12x12 k=3/32",
         lambda: sparsity.KWinners2d(32, 0.1, boost_strength=1.5, local=True), (64, 32, 12, 12)),
    ]
    rows = []
    for label, make, shape in cases:
        x = torch.randn(shape, generator=g)
        grad = torch.randn(shape, generator=g)
        lib, proto, relu = make(), make(), nn.ReLU()
        # the prototype must select exactly what the library selects
        for _ in range(3):
            with variant("proto"):
                yp = proto(x)
            yl = lib(x)
            assert torch.equal(yl, yp), f"prototype differs from the library on {label}"
            assert torch.equal(lib.duty_cycle, proto.duty_cycle), label
        times = interleaved(
            {"relu": fwd_bwd(relu, x, grad, "lib"), "lib": fwd_bwd(lib, x, grad, "lib"),
             "proto": fwd_bwd(proto, x, grad, "proto")},
            repeats,
        )
        rows.append((label, times))
    return rows


def dense_version(spec: sparsity.NetworkSpec) -> sparsity.NetworkSpec:
    return dataclasses.replace(
        spec,
        conv=tuple(dataclasses.replace(c, percent_on=1.0, weight_density=1.0) for c in spec.conv),
        linear=tuple(dataclasses.replace(l, percent_on=1.0, weight_density=1.0) for l in spec.linear),
        name=spec.name + "-dense",
    )


def train_step_fn(model: nn.Module, x: Tensor, y: Tensor, var: str) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.0)
    model.train()

    def step() -> None:
        with variant(var):
            opt.zero_grad(set_to_none=True)
            loss = TF.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sparsity.rezero_weights(model)
    return step


def step_setup(batch: int = 64):
    spec = sparsity.preset("sparse-cnn2", "mnist")
    dense = dense_version(spec)
    assert dense.is_dense and dense.num_params == spec.num_params
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, *spec.input_shape, generator=g)
    y = torch.randint(0, spec.num_classes, (batch,), generator=g)
    return spec, dense, x, y


def step_rows(repeats: int) -> dict[str, list[float]]:
    spec, dense, x, y = step_setup()
    fns = {
        "dense": train_step_fn(sparsity.build_network(dense, seed=0), x, y, "lib"),
        "lib": train_step_fn(sparsity.build_network(spec, seed=0), x, y, "lib"),
        "proto": train_step_fn(sparsity.build_network(spec, seed=0), x, y, "proto"),
    }
    return interleaved(fns, repeats, warmup=10)


def profile_step(steps: int = 20) -> str:
    from torch.profiler import ProfilerActivity, profile

    spec, _, x, y = step_setup()
    step = train_step_fn(sparsity.build_network(spec, seed=0), x, y, "lib")
    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    return prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25)


MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000"}


def pin_malloc() -> None:
    """Re-run this script with glibc's malloc thresholds fixed.

    By default glibc returns large freed blocks to the OS and maps them again on the next
    allocation, so every step of a CNN pays thousands of page faults (measured here: ~2,000-2,800
    minor faults per Sparse CNN-2 step), and how many depends on the allocation pattern of whatever
    ran just before -- the interleaved variants disturb each other. With fixed thresholds the heap
    keeps its blocks (0-12 faults per step) and the comparison measures the layers, not the allocator.
    """
    if all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()):
        return
    env = {**os.environ, **MALLOC_ENV}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300, help="timed repeats per layer variant")
    ap.add_argument("--step-repeats", type=int, default=150, help="timed training steps per variant")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--default-malloc", action="store_true", help="keep glibc's default (page-faulting) malloc")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table of the sparse step")
    args = ap.parse_args(argv)
    if not args.default_malloc and argv is None:
        pin_malloc()
    torch.set_num_threads(args.threads)

    pinned = all(os.environ.get(k) == v for k, v in MALLOC_ENV.items())
    print("machine:", machine())
    print(f"malloc: {'thresholds pinned (' + ', '.join(f'{k}={v}' for k, v in MALLOC_ENV.items()) + ')' if pinned else 'glibc default'}")
    print()
    print(f"forward+backward in training mode (duty-cycle update included): medians of {args.repeats} interleaved "
          "repeats; 'x ReLU' is the median of paired ratios")
    hdr = (f"{'layer':40s} {'ReLU':>8s} {'k-WTA lib':>10s} {'x ReLU':>7s} "
           f"{'k-WTA proto':>12s} {'x ReLU':>7s} {'lib/proto':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for label, t in layer_rows(args.repeats):
        med = {k: statistics.median(v) for k, v in t.items()}
        print(
            f"{label:40s} {med['relu'] * 1e6:6.0f}us {med['lib'] * 1e6:8.0f}us {paired_ratio(t['lib'], t['relu']):6.1f}x "
            f"{med['proto'] * 1e6:10.0f}us {paired_ratio(t['proto'], t['relu']):6.1f}x "
            f"{paired_ratio(t['lib'], t['proto']):8.2f}x"
        )
    print()
    t = step_rows(args.step_repeats)
    med = {k: statistics.median(v) for k, v in t.items()}
    low = {k: min(v) for k, v in t.items()}
    print(f"Sparse CNN-2 training step, batch 64 (forward, cross-entropy, backward, SGD, rezero_weights); "
          f"{args.step_repeats} interleaved repeats")
    print(f"{'variant':40s} {'median':>9s} {'min':>9s} {'overhead: paired':>17s} {'medians':>8s} {'mins':>7s}")
    print(f"{'dense (ReLU, dense weights, same spec)':40s} {med['dense'] * 1e3:7.2f}ms {low['dense'] * 1e3:7.2f}ms "
          f"{'-':>17s} {'-':>8s} {'-':>7s}")
    for key, label in (("lib", "sparse, library"), ("proto", "sparse, prototype (this file)")):
        print(
            f"{label:40s} {med[key] * 1e3:7.2f}ms {low[key] * 1e3:7.2f}ms "
            f"{100 * (paired_ratio(t[key], t['dense']) - 1):16.1f}% "
            f"{100 * (med[key] / med['dense'] - 1):7.1f}% {100 * (low[key] / low['dense'] - 1):6.1f}%"
        )
    over = 100 * (paired_ratio(t["lib"], t["dense"]) - 1)
    verdict = "MEETS" if over <= 15 else "MISSES"
    print(f"\nlibrary overhead (median paired ratio) {over:.1f}% -> {verdict} the 15% target "
          f"at {torch.get_num_threads()} thread(s)")
    if args.profile:
        print()
        print(profile_step())
    return 0


if __name__ == "__main__":
    sys.exit(main())
