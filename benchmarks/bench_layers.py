"""Cost of the library's k-winners and sparse-weight machinery on the CPU, at one thread by default.

Prints a table of forward+backward times (training mode, duty-cycle update included) of
KWinners and KWinners2d (global and local) against ReLU on the same tensors, with the median of
the paired k-WTA/ReLU ratios; then one full training step of Sparse CNN-2 (batch 64: forward,
cross-entropy, backward, SGD step, rezero_weights) against the same NetworkSpec made dense (every
percent_on and weight_density 1.0, so ReLU and dense weights), with the sparse step's overhead and
whether it meets the target: k-winners + sparse weights add at most 15% to the Sparse CNN-2 step.

Timing is interleaved (the variants alternate, in rotating order, inside one loop) and reported as
medians, so a noisy neighbour slows every variant alike. The script re-executes itself with glibc's
malloc thresholds pinned (see ``pin_malloc``; ``--default-malloc`` keeps the default).
``--profile`` adds a torch.profiler table of the Sparse CNN-2 step.

    python benchmarks/bench_layers.py [--repeats N] [--step-repeats N] [--threads N] [--profile]
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
from typing import Callable

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's sparsity

import sparsity

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


def fwd_bwd(layer: nn.Module, x: Tensor, grad: Tensor) -> Callable[[], None]:
    def run() -> None:
        xi = x.detach().requires_grad_()
        layer(xi).backward(grad)
    return run


def layer_rows(repeats: int) -> list[tuple[str, dict[str, list[float]]]]:
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
        kwta, relu = make(), nn.ReLU()
        times = interleaved({"relu": fwd_bwd(relu, x, grad), "kwta": fwd_bwd(kwta, x, grad)}, repeats)
        rows.append((label, times))
    return rows


def dense_version(spec: sparsity.NetworkSpec) -> sparsity.NetworkSpec:
    return dataclasses.replace(
        spec,
        conv=tuple(dataclasses.replace(c, percent_on=1.0, weight_density=1.0) for c in spec.conv),
        linear=tuple(dataclasses.replace(l, percent_on=1.0, weight_density=1.0) for l in spec.linear),
        name=spec.name + "-dense",
    )


def train_step_fn(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.0)
    model.train()

    def step() -> None:
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
        "dense": train_step_fn(sparsity.build_network(dense, seed=0), x, y),
        "sparse": train_step_fn(sparsity.build_network(spec, seed=0), x, y),
    }
    return interleaved(fns, repeats, warmup=10)


def profile_step(steps: int = 20) -> str:
    from torch.profiler import ProfilerActivity, profile

    spec, _, x, y = step_setup()
    step = train_step_fn(sparsity.build_network(spec, seed=0), x, y)
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
    hdr = f"{'layer':40s} {'ReLU':>8s} {'k-WTA':>8s} {'x ReLU':>7s}"
    print(hdr)
    print("-" * len(hdr))
    for label, t in layer_rows(args.repeats):
        med = {k: statistics.median(v) for k, v in t.items()}
        print(f"{label:40s} {med['relu'] * 1e6:6.0f}us {med['kwta'] * 1e6:6.0f}us "
              f"{paired_ratio(t['kwta'], t['relu']):6.1f}x")
    print()
    t = step_rows(args.step_repeats)
    med = {k: statistics.median(v) for k, v in t.items()}
    low = {k: min(v) for k, v in t.items()}
    over = 100 * (paired_ratio(t["sparse"], t["dense"]) - 1)
    print(f"Sparse CNN-2 training step, batch 64 (forward, cross-entropy, backward, SGD, rezero_weights); "
          f"{args.step_repeats} interleaved repeats")
    print(f"{'variant':40s} {'median':>9s} {'min':>9s} {'overhead: paired':>17s} {'medians':>8s} {'mins':>7s}")
    print(f"{'dense (ReLU, dense weights, same spec)':40s} {med['dense'] * 1e3:7.2f}ms {low['dense'] * 1e3:7.2f}ms "
          f"{'-':>17s} {'-':>8s} {'-':>7s}")
    print(
        f"{'sparse (k-winners, sparse weights)':40s} {med['sparse'] * 1e3:7.2f}ms {low['sparse'] * 1e3:7.2f}ms "
        f"{over:16.1f}% {100 * (med['sparse'] / med['dense'] - 1):7.1f}% "
        f"{100 * (low['sparse'] / low['dense'] - 1):6.1f}%"
    )
    verdict = "MEETS" if over <= 15 else "MISSES"
    print(f"\nlibrary overhead (median paired ratio) {over:.1f}% -> {verdict} the 15% target "
          f"at {torch.get_num_threads()} thread(s)")
    if args.profile:
        print()
        print(profile_step())
    return 0


if __name__ == "__main__":
    sys.exit(main())
