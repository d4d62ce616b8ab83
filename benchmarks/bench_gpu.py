"""GPU readiness in one command: parity, step times, concurrency, GSC memory, determinism.

    python -m benchmarks.bench_gpu                 # from the repository root; ~6 min on a GPU
    python -m benchmarks.bench_gpu --device cpu    # the CPU half only

Made for a lent GPU machine whose image has torch but not Ray, MLflow or Optuna: it imports only
``sparsity`` and the standard library, runs every section in its own child process under a time
box (a hung or crashed section is recorded as such, the others still run), runs concurrent trials
as plain processes, and writes ``benchmarks/results/gpu-<UTC>.json`` with the machine and commit.

Sections (each ``{"result": ...}`` or ``{"error": ...}`` / ``{"timed_out": ...}`` in the JSON):

``env``          torch, CUDA and driver versions, the device; says when a GPU is present but torch
                 cannot use it.
``parity``       one Sparse CNN-2 training step (MNIST and GSC shapes) from the same weights, masks
                 and duty cycles: on the CPU, the ``torch.topk`` selection of k-winners against the
                 numpy one (bit for bit); with CUDA, CPU against CUDA with TF32 off (logits, loss,
                 gradients, updated weights and duty cycles within tolerance, winners agreeing).
``steps``        step time at batch 4 and 64 (MNIST Sparse CNN-2, the paper's two batch sizes) and
                 16 (GSC), operators dispatched per step, and the noise curve's time.
``cuda_graph``   (CUDA) when batch 4 is dispatch-bound, the step captured in a CUDA graph: time per
                 replay against eager, and the graph's weights against eager's after 20 steps.
``concurrency``  (CUDA) 1, 2, 4 and 8 trials as processes on the one GPU: step times, MNIST paper
                 trials per GPU-hour (13,750 steps at batch 4 + 7,740 at 64; training steps only),
                 peak memory of each.
``gsc_memory``   one epoch's augmentation and featurization of GSC's full training split (93,327
                 int16 clips) on the device (a 2 % slice on the CPU): peak memory and time.
``determinism``  (CUDA) two runs and a run killed after epoch 1 then resumed, compared bit for bit,
                 with deterministic algorithms off and on, and the cost of on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GSC_TRAIN_CLIPS = 93_327
# The mnist-paper trial of Sparse CNN-2: 55,000 training images (5,000 held out for validation),
# one epoch at batch 4, nine at batch 64.
PAPER_STEPS = {4: 55_000 // 4, 64: 9 * -(-55_000 // 64)}
# Seconds each section may take, start-up included, and the whole run's (about 6 minutes on a GPU:
# a lent device gives 15 minutes in all, its own start-up included, and 10 per command).
BUDGETS = {"env": 30, "parity": 45, "steps": 60, "cuda_graph": 40, "concurrency": 120, "gsc_memory": 50,
           "determinism": 90}
TOTAL_SECONDS = 420
CUDA_ONLY = {"cuda_graph", "concurrency", "determinism"}


# ---------------------------------------------------------------- helpers (child side)


def _torch(threads: int = 1):
    import torch

    torch.set_num_threads(threads)
    return torch


def _sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _batch(spec, n: int, seed: int, device="cpu"):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *spec.input_shape, generator=g)
    y = torch.randint(0, spec.num_classes, (n,), generator=g)
    return x.to(device), y.to(device)


def _synthetic_gsc(n_train: int, n_eval: int, seed: int, device="cpu"):
    """A GSC-shaped dataset as ``load_gsc`` returns it: int16 waveforms, inputs, labels, noise."""
    import torch

    from sparsity.data.base import DataSplit, Dataset
    from sparsity.data.gsc import PCM_SCALE, GSCAugment, GSCFeaturizer

    g = torch.Generator().manual_seed(seed)
    g_device = torch.Generator(device=device).manual_seed(seed)  # waveforms drawn where they live: fast on a GPU

    def split(n: int) -> DataSplit:
        raw = torch.empty(n, 16_000, dtype=torch.int16, device=device)
        for lo in range(0, n, 4096):
            hi = min(lo + 4096, n)
            raw[lo:hi] = torch.randint(-8000, 8001, (hi - lo, 16_000), generator=g_device, dtype=torch.int16,
                                       device=device)
        inputs = torch.randn(n, 1, 32, 32, generator=g).to(device)
        return DataSplit(raw, inputs, torch.randint(0, 12, (n,), generator=g).to(device), raw_scale=PCM_SCALE)

    noise = [torch.rand(60 * 16_000, generator=g) * 0.2 - 0.1 for _ in range(6)]
    return Dataset(name="gsc", classes=tuple(f"c{i}" for i in range(12)), input_shape=(1, 32, 32),
                   train=split(n_train), validation=split(n_eval), test=split(1),
                   featurize=GSCFeaturizer(0.0, 1.0), augment=GSCAugment(noise))


def _one_step(model, x, y, lr: float = 0.02) -> dict:
    """One SGD step; everything it produced, on the CPU: logits, loss, grads, weights, buffers, winners."""
    import torch

    from sparsity.kwinners import KWinners, KWinners2d
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import train_step

    winners, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, (KWinners, KWinners2d)):
            hooks.append(m.register_forward_hook(lambda _m, _i, out, name=name: winners.__setitem__(name, out != 0)))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    logits, loss = train_step(model, opt, sparse_weight_modules(model), x, y)
    for h in hooks:
        h.remove()
    cpu = lambda t: t.detach().to("cpu", memory_format=torch.contiguous_format)  # noqa: E731
    return {
        "logits": cpu(logits), "loss": cpu(loss),
        **{f"grad/{k}": cpu(p.grad) for k, p in model.named_parameters() if p.grad is not None},
        **{f"weight/{k}": cpu(v) for k, v in model.state_dict().items() if v.is_floating_point()},
        **{f"winners/{k}": cpu(v) for k, v in winners.items()},
    }


def _compare(a: dict, b: dict) -> dict:
    """Per kind of tensor: the largest difference relative to the reference's largest magnitude."""
    worst: dict[str, float] = {}
    agree_num = agree_den = 0
    for key, ref in a.items():
        other = b[key]
        kind = key.split("/")[0]
        if kind == "winners":
            agree_num += int((ref == other).sum())
            agree_den += ref.numel()
            continue
        scale = float(ref.abs().max()) or 1.0
        worst[kind] = max(worst.get(kind, 0.0), float((ref.double() - other.double()).abs().max()) / scale)
    return {"max_relative_difference": worst, "winner_agreement": agree_num / max(agree_den, 1)}


def _bit_identical(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _count_ops(fn) -> int | None:
    """Operators dispatched by ``fn()`` (forward, backward and optimizer: aten calls after autograd)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:
        return None

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    try:
        with Count():
            fn()
    except Exception:  # noqa: BLE001 (a counting failure must not fail the timing)
        return None
    return Count.n


def _time_steps(model, opt, sparse, x, y, device, seconds: float) -> dict:
    """Median milliseconds per step over blocks of steps within ``seconds`` (after a warm-up)."""
    from sparsity.train import train_step

    for _ in range(5):
        train_step(model, opt, sparse, x, y)
    _sync(device)
    blocks, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(blocks) < 3:
        t0 = time.perf_counter()
        for _ in range(10):
            train_step(model, opt, sparse, x, y)
        _sync(device)
        blocks.append((time.perf_counter() - t0) / 10 * 1000)
    blocks.sort()
    return {"ms_per_step": round(blocks[len(blocks) // 2], 4), "blocks": len(blocks), "steps": 10 * len(blocks)}


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------- sections (child side)


def section_env(device: str) -> dict:
    torch = _torch()
    out = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
           "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        out["nvidia_smi"] = smi.stdout.strip().splitlines() if smi.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        out["nvidia_smi"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        out.update(device_count=torch.cuda.device_count(), device_name=props.name,
                   capability=f"{props.major}.{props.minor}", memory_bytes=props.total_memory)
    elif out["nvidia_smi"]:
        out["warning"] = ("nvidia-smi sees a GPU but torch cannot use it (driver too old for this torch's CUDA "
                          f"{torch.version.cuda}?): a GPU trial would run on the CPU")
    return out


def section_parity(device: str) -> dict:
    torch = _torch()
    import copy

    from sparsity.functional import torch_selection
    from sparsity.network import build_network
    from sparsity.presets import preset

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = {"tf32": False}
    for dataset in ("mnist", "gsc"):
        spec = preset("sparse-cnn2", dataset)
        reference = build_network(spec, seed=0)
        x, y = _batch(spec, 64, seed=1)
        numpy_path = _one_step(copy.deepcopy(reference), x, y)
        with torch_selection():
            topk_path = _one_step(copy.deepcopy(reference), x, y)
        row = {"cpu_topk_equals_numpy_bit_for_bit": _bit_identical(numpy_path, topk_path)}
        if device == "cuda":
            on_cuda = _one_step(copy.deepcopy(reference).to("cuda"), x.to("cuda"), y.to("cuda"))
            diff = _compare(numpy_path, on_cuda)
            worst = diff["max_relative_difference"]
            row["cpu_vs_cuda"] = diff
            row["cpu_vs_cuda_holds"] = bool(
                max(worst.get("logits", 0), worst.get("loss", 0)) <= 1e-4 and worst.get("grad", 0) <= 1e-3
                and worst.get("weight", 0) <= 1e-4 and diff["winner_agreement"] >= 0.999)
        out[f"sparse-cnn2/{dataset}"] = row
    out["tolerance"] = "relative to the CPU's largest magnitude: logits, loss, weights 1e-4; grads 1e-3; winners 99.9 %"
    return out


def section_steps(device: str) -> dict:
    torch = _torch()
    from sparsity.data.base import DataSplit
    from sparsity.data.mnist import mnist_featurize
    from sparsity.noise import noise_curve
    from sparsity.presets import preset
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import prepare_model, train_step

    out: dict = {"device": device, "threads": torch.get_num_threads()}
    for dataset, batch in (("mnist", 4), ("mnist", 64), ("gsc", 16)):
        spec = preset("sparse-cnn2", dataset)
        model = prepare_model(spec, 0, torch.device(device))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        sparse = sparse_weight_modules(model)
        x, y = _batch(spec, batch, seed=2, device=device)
        if device == "cpu" and spec.conv:
            x = x.contiguous(memory_format=torch.channels_last)
        row = _time_steps(model, opt, sparse, x, y, device, seconds=8 if device == "cuda" else 3)
        row["operators_per_step"] = _count_ops(lambda: train_step(model, opt, sparse, x, y))
        out[f"{dataset}/batch{batch}"] = row
    t4, t64 = out["mnist/batch4"]["ms_per_step"], out["mnist/batch64"]["ms_per_step"]
    out["batch64_over_batch4_time"] = round(t64 / t4, 3)
    out["dispatch_bound_at_batch4"] = t64 / t4 < 2.0  # 16x the work in under 2x the time: launch overhead rules
    out["paper_mnist_trial_training_seconds"] = round((PAPER_STEPS[4] * t4 + PAPER_STEPS[64] * t64) / 1000, 1)

    spec = preset("sparse-cnn2", "mnist")
    model = prepare_model(spec, 0, torch.device(device))
    g = torch.Generator().manual_seed(3)
    images = 2000 if device == "cuda" else 300
    raw = torch.rand(images, 1, 28, 28, generator=g)
    split = DataSplit(raw, mnist_featurize(raw), torch.randint(0, 10, (images,), generator=g)).to(device)
    t0 = time.perf_counter()
    curve = noise_curve(model, split, mnist_featurize, "mnist-pixels")
    _sync(device)
    out["noise_curve"] = {"images": images, "levels": len(curve.levels), "seconds": round(time.perf_counter() - t0, 3)}
    return out


def section_cuda_graph(device: str) -> dict:
    torch = _torch()
    import copy

    from sparsity.presets import preset
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import prepare_model, train_step

    spec = preset("sparse-cnn2", "mnist")
    eager = prepare_model(spec, 0, torch.device("cuda"))
    graphed = copy.deepcopy(eager)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.02)
    opt_g = torch.optim.SGD(graphed.parameters(), lr=0.02)
    sparse_e, sparse_g = sparse_weight_modules(eager), sparse_weight_modules(graphed)
    batches = [_batch(spec, 4, seed=100 + i, device="cuda") for i in range(23)]
    static_x, static_y = batches[0][0].clone(), batches[0][1].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up (same 3 steps on both) on a side stream, as capture requires
        for x, y in batches[:3]:
            train_step(eager, opt_e, sparse_e, x, y)
            static_x.copy_(x)
            static_y.copy_(y)
            train_step(graphed, opt_g, sparse_g, static_x, static_y)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        train_step(graphed, opt_g, sparse_g, static_x, static_y)
    for x, y in batches[3:]:
        train_step(eager, opt_e, sparse_e, x, y)
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    torch.cuda.synchronize()
    diff = max(float((a - b).abs().max()) for a, b in zip(eager.state_dict().values(), graphed.state_dict().values())
               if a.is_floating_point())

    def timed(fn, seconds: float = 6.0) -> float:
        for _ in range(10):
            fn()
        torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(20):
                fn()
            torch.cuda.synchronize()
            n += 20
        return (time.perf_counter() - t0) / n * 1000

    x, y = batches[0]
    eager_ms = timed(lambda: train_step(eager, opt_e, sparse_e, x, y))
    graph_ms = timed(graph.replay)
    return {"batch": 4, "eager_ms_per_step": round(eager_ms, 4), "graph_ms_per_step": round(graph_ms, 4),
            "speedup": round(eager_ms / graph_ms, 2), "weights_max_abs_difference_after_20_steps": diff}


def section_worker(device: str, seconds: float, ready: Path, go: Path) -> dict:
    """One concurrent 'trial': MNIST Sparse CNN-2 steps at batch 4 then 64, timed after a barrier."""
    torch = _torch()
    from sparsity.presets import preset
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import prepare_model, train_step

    spec = preset("sparse-cnn2", "mnist")
    model = prepare_model(spec, os.getpid() % 1000, torch.device(device))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sparse = sparse_weight_modules(model)
    data = {b: _batch(spec, b, seed=b, device=device) for b in (4, 64)}
    for b in (4, 64):
        train_step(model, opt, sparse, *data[b])
    _sync(device)
    ready.touch()
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = {b: _time_steps(model, opt, sparse, *data[b], device, seconds / 2)["ms_per_step"] for b in (4, 64)}
    row = {"ms_batch4": out[4], "ms_batch64": out[64], "host_peak_rss_bytes": _peak_rss_bytes(),
           "peak_reserved_bytes": torch.cuda.max_memory_reserved() if device == "cuda" else None}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
        for line in smi.stdout.splitlines():
            pid, mib = (s.strip() for s in line.split(","))
            if int(pid) == os.getpid():
                row["nvidia_smi_used_bytes"] = int(mib) * 2**20
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return row


def section_concurrency(device: str, budget: float, levels: tuple[int, ...] = (1, 2, 4, 8)) -> dict:
    out: dict = {"trial": "MNIST sparse-cnn2 paper recipe, training steps only",
                 "paper_steps": {f"batch{b}": n for b, n in PAPER_STEPS.items()}}
    end = time.monotonic() + budget - 5
    for n in levels:
        left = end - time.monotonic()
        if left < 25:
            out[f"{n}_per_gpu"] = {"skipped": f"{left:.0f}s of the section's budget left"}
            continue
        seconds = min(10.0, max(4.0, (left - 20) / (len(levels) - levels.index(n)) - 15))
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
            go = Path(tmp) / "go"
            procs = [_spawn("worker", device, ["--seconds", str(seconds), "--ready", str(Path(tmp) / f"ready{i}"),
                                               "--go", str(go)]) for i in range(n)]
            t0 = time.monotonic()
            while not all((Path(tmp) / f"ready{i}").exists() for i in range(n)) and time.monotonic() - t0 < 90:
                if any(p.poll() not in (None, 0) for p in procs):
                    break
                time.sleep(0.1)
            go.touch()
            rows = [_collect(p, timeout=max(10.0, end - time.monotonic())) for p in procs]
        ok = [r["result"] for r in rows if "result" in r]
        if len(ok) < n:
            out[f"{n}_per_gpu"] = {"errors": [r for r in rows if "result" not in r]}
            continue
        trial_s = [(PAPER_STEPS[4] * r["ms_batch4"] + PAPER_STEPS[64] * r["ms_batch64"]) / 1000 for r in ok]
        out[f"{n}_per_gpu"] = {
            "trials": ok,
            "trial_training_seconds_mean": round(sum(trial_s) / n, 1),
            "trials_per_gpu_hour": round(sum(3600 / s for s in trial_s), 2),
            "peak_memory_each_bytes": [r.get("nvidia_smi_used_bytes") or r["peak_reserved_bytes"]
                                       or r["host_peak_rss_bytes"] for r in ok],
        }
    return out


def section_gsc_memory(device: str) -> dict:
    torch = _torch()
    from sparsity.seeding import generator

    clips = GSC_TRAIN_CLIPS if device == "cuda" else round(0.02 * GSC_TRAIN_CLIPS)
    data = _synthetic_gsc(clips, 16, seed=0, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    resident = torch.cuda.memory_allocated() if device == "cuda" else _peak_rss_bytes()
    t0 = time.perf_counter()
    inputs = data.augmented_inputs(generator(0, "augment", 0))
    _sync(device)
    seconds = time.perf_counter() - t0
    out = {"device": device, "train_clips": clips, "waveform_bytes": data.train.raw.numel() * 2,
           "inputs_shape": list(inputs.shape), "augment_and_featurize_seconds": round(seconds, 2),
           "clips_per_second": round(clips / seconds, 1), "host_peak_rss_bytes": _peak_rss_bytes()}
    if device == "cuda":
        out.update(device_resident_before_bytes=resident, device_peak_allocated_bytes=torch.cuda.max_memory_allocated(),
                   device_peak_reserved_bytes=torch.cuda.max_memory_reserved())
    else:
        out["note"] = "a 2 % slice on the CPU; benchmarks/bench_gsc_memory.py measures a whole epoch at full size"
    return out


def section_det_run(device: str, out_file: Path, ckpt: Path | None, kill_after: int | None, clips: int = 1024) -> dict:
    """One training run for the determinism section (the environment says deterministic or not)."""
    torch = _torch()
    from sparsity.presets import preset
    from sparsity.recipe import Recipe
    from sparsity.train import train

    data = _synthetic_gsc(clips, max(clips // 8, 1), seed=5)

    def on_epoch(result, _model) -> None:
        if kill_after is not None and result.epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)  # a killed node: no clean-up, the checkpoint is what is left

    t0 = time.perf_counter()
    result = train(preset("sparse-cnn2", "gsc"), Recipe(epochs=2, lr=0.01, batch_size=16), data, seed=0,
                   device=device, checkpoint_path=ckpt, on_epoch=on_epoch)
    seconds = time.perf_counter() - t0
    torch.save({k: v.cpu() for k, v in result.model.state_dict().items()}, out_file)
    return {"seconds": round(seconds, 2), "resumed_from_epoch": result.resumed_from_epoch,
            "deterministic_env": os.environ.get("SPARSE_SWEEPS_DETERMINISTIC")}


def section_determinism(device: str, budget: float, clips: int = 1024) -> dict:
    import torch

    out: dict = {"run": f"GSC sparse-cnn2, {clips:,} synthetic clips with augmentation, 2 epochs at batch 16"}
    end = time.monotonic() + budget - 5
    with tempfile.TemporaryDirectory(prefix="bench-gpu-det-") as tmp:
        for mode in ("off", "on"):
            env = {"SPARSE_SWEEPS_DETERMINISTIC": "1" if mode == "on" else "0"}
            if mode == "on":
                env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
            files = {name: Path(tmp) / f"{mode}-{name}.pt" for name in ("a", "b", "resumed")}
            ckpt = Path(tmp) / f"{mode}-ckpt.pt"
            runs = {}
            for name, extra in (("a", []), ("b", []), ("killed", ["--ckpt", str(ckpt), "--kill-after", "1"]),
                                ("resumed", ["--ckpt", str(ckpt)])):
                left = end - time.monotonic()
                if left < 5:
                    runs[name] = {"timed_out": "no time left in the section"}
                    continue
                target = files.get(name, Path(tmp) / "unused.pt")
                proc = _spawn("det_run", device, ["--out", str(target), "--clips", str(clips), *extra], env)
                runs[name] = _collect(proc, timeout=left)
            row: dict = {"runs": runs}
            if all(f.exists() for f in files.values()):
                states = {k: torch.load(f, weights_only=True) for k, f in files.items()}
                same = lambda p, q: all(torch.equal(p[k], q[k]) for k in p)  # noqa: E731
                row.update(two_runs_bit_identical=same(states["a"], states["b"]),
                           resume_bit_identical=same(states["a"], states["resumed"]),
                           resumed_from_epoch=runs["resumed"].get("result", {}).get("resumed_from_epoch"),
                           killed_run_was_killed=runs["killed"].get("returncode") == -signal.SIGKILL)
            out[f"deterministic_{mode}"] = row
    secs = {m: [r["result"]["seconds"] for k, r in out[f"deterministic_{m}"]["runs"].items()
                if k in ("a", "b") and "result" in r] for m in ("off", "on")}
    if secs["off"] and secs["on"]:
        out["cost_on_over_off"] = round((sum(secs["on"]) / len(secs["on"])) / (sum(secs["off"]) / len(secs["off"])), 3)
    return out


# ---------------------------------------------------------------- process plumbing


def _spawn(section: str, device: str, extra: list[str], env: dict | None = None, group: bool = False) -> subprocess.Popen:
    """A child running one section; ``group``: in a process group of its own, so that stopping it
    at its time box also stops the processes it started (concurrent trials, determinism runs)."""
    cmd = [sys.executable, "-m", "benchmarks.bench_gpu", "--section", section, "--device", device, *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, start_new_session=group)


def _collect(proc: subprocess.Popen, timeout: float) -> dict:
    t0 = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        try:
            if os.getpgid(proc.pid) == proc.pid:  # its own group: the section and what it started
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        proc.communicate()
        return {"timed_out": f"stopped after {timeout:.0f}s", "seconds": round(time.monotonic() - t0, 1)}
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode == 0 and lines:
        return {"result": json.loads(lines[-1])["result"], "seconds": round(time.monotonic() - t0, 1)}
    tail = (stderr.strip().splitlines() or ["no output"])[-1][:500]
    return {"error": tail, "returncode": proc.returncode, "seconds": round(time.monotonic() - t0, 1)}


def _child(args: argparse.Namespace) -> dict:
    name, device = args.section, args.device
    if name == "worker":
        return section_worker(device, args.seconds, Path(args.ready), Path(args.go))
    if name == "det_run":
        return section_det_run(device, Path(args.out), Path(args.ckpt) if args.ckpt else None, args.kill_after,
                               args.clips)
    if name == "determinism":
        return section_determinism(device, args.budget, args.clips)
    if name == "concurrency":
        return section_concurrency(device, args.budget, tuple(args.levels))
    return globals()[f"section_{name}"](device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--sections", nargs="*", default=list(BUDGETS), choices=list(BUDGETS))
    ap.add_argument("--budget-scale", type=float, default=1.0, help="multiply every section's time box and the total")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--section", default=None, help=argparse.SUPPRESS)
    for hidden in ("--ready", "--go", "--ckpt"):
        ap.add_argument(hidden, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=8.0, help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, default=60.0, help=argparse.SUPPRESS)
    ap.add_argument("--kill-after", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--clips", type=int, default=1024, help=argparse.SUPPRESS)  # the determinism runs' data
    ap.add_argument("--levels", type=int, nargs="*", default=[1, 2, 4, 8], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.section is not None:  # a child: one section, its result as the last line
        print(json.dumps({"result": _child(args)}, default=str), flush=True)
        return 0

    from benchmarks.common import machine_record

    started = time.monotonic()
    record: dict = {"benchmark": "gpu", "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine_record(REPO, threads=1), "sections": {}}
    env = _collect(_spawn("env", "cpu", [], group=True), timeout=BUDGETS["env"] * args.budget_scale)
    record["sections"]["env"] = env
    cuda = bool(env.get("result", {}).get("cuda_available"))
    device = {"auto": "cuda" if cuda else "cpu", "cpu": "cpu", "cuda": "cuda"}[args.device]
    record["device"] = device
    if device == "cpu":
        record["cuda"] = "absent: the CPU half ran (CPU step times, topk against numpy parity, GSC memory)"
    print(f"device: {device}" + (f" ({env['result'].get('device_name')})" if cuda else ""), flush=True)
    total = TOTAL_SECONDS * args.budget_scale
    for name in args.sections:
        if name == "env":
            continue
        left = total - (time.monotonic() - started)
        if left < 10:
            record["sections"][name] = {"skipped": f"the run's {total:.0f}s were spent"}
            continue
        if name in CUDA_ONLY and device != "cuda":
            record["sections"][name] = {"skipped": "CUDA absent"}
            continue
        if name == "cuda_graph" and not record["sections"].get("steps", {}).get("result", {}).get(
                "dispatch_bound_at_batch4", True):
            record["sections"][name] = {"skipped": "the batch-4 step was not dispatch-bound"}
            continue
        budget = min(BUDGETS[name] * args.budget_scale, left)
        print(f"{name} (up to {budget:.0f}s) ...", flush=True)
        extra = ["--budget", str(budget)] if name in ("concurrency", "determinism") else []
        record["sections"][name] = _collect(_spawn(name, device, extra, group=True), timeout=budget)
        print(f"  {json.dumps(record['sections'][name], default=str)[:300]}", flush=True)
    record["seconds"] = round(time.monotonic() - started, 1)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO / "benchmarks" / "results" / f"gpu-{device}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"wrote {out} in {record['seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
