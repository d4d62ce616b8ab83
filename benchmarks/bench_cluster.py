"""The same sweep on the embedded default and on a two-node Ray cluster with PostgreSQL stores.

Runs the `mnist-quick` preset (10 searched trials + 2 baselines, 2 trials at a time) twice through
`sweeps.run.service.run_sweep`, in this process as the driver:

* embedded: a local Ray started by the sweep (2 CPUs), SQLite for MLflow and Optuna, local folders;
* cluster: PostgreSQL (Optuna, and MLflow's backend), an MLflow tracking server serving artifacts,
  and two Ray nodes started with `ray start` on this machine, 1 CPU each (the loopback cluster of
  tests/test_cluster_multinode.py); the sweep is submitted with ``address=``.

For each it prints the wall time of `run_sweep` (driver start-up, trials, reconcile, summary), the
sum over trials of ``trial_seconds`` (an MLflow metric of each trial's run: its training and
evaluation), and the overhead share = 1 - sum(trial_seconds) / (wall x concurrency), concurrency 2
in both (2 CPUs, 1 per trial). Starting the servers and nodes is timed apart, not in the wall time.

``--paper-estimate`` instead measures Sparse CNN-2's per-step and per-epoch time on this CPU and
its operator count per training step, and prints the *estimated* trials per GPU-hour of
`mnist-paper` at 1, 0.5 and 0.25 GPU per trial (no GPU here: an estimate, see cluster/README.md).

    SPARSE_SWEEPS_DATA=/path/to/data SPARSE_SWEEPS_CACHE=/tmp/sscache \\
        python -m benchmarks.bench_cluster [--preset mnist-quick] [--json out.json] [--only embedded|cluster]
    SPARSE_SWEEPS_DATA=... python -m benchmarks.bench_cluster --paper-estimate
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


CONCURRENCY = 2


def trial_seconds(spec: Any, outcome: Any) -> tuple[list[float], dict[str, int]]:
    """trial_seconds of every trial run, and how many trials each Ray node ran."""
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import runs as tracking

    client = MlflowClient(spec.stores.resolved().mlflow_tracking_uri)
    runs = tracking.find_runs(client, outcome.mlflow_experiment_id, {tracking.TAG_SWEEP: spec.name,
                                                                    tracking.TAG_KIND: "trial"})
    nodes: dict[str, int] = {}
    for r in runs:
        node = r.data.tags.get("sweeps.node_id", "?")[:8]
        nodes[node] = nodes.get(node, 0) + 1
    return [r.data.metrics["trial_seconds"] for r in runs if "trial_seconds" in r.data.metrics], nodes


def measure(label: str, spec: Any, address: str | None) -> dict[str, Any]:
    from optuna.trial import TrialState

    from sweeps.run.service import run_sweep

    t0 = time.perf_counter()
    outcome = run_sweep(spec, address=address)
    wall = time.perf_counter() - t0
    secs, nodes = trial_seconds(spec, outcome)
    complete = sum(t.state == TrialState.COMPLETE for t in outcome.trials)
    row = {
        "mode": label, "trials": len(outcome.trials), "complete": complete, "wall_s": wall,
        "fit_s": outcome.seconds, "sum_trial_s": sum(secs), "mean_trial_s": sum(secs) / max(1, len(secs)),
        "overhead_share": 1 - sum(secs) / (wall * CONCURRENCY),
        "overhead_share_fit": 1 - sum(secs) / (outcome.seconds * CONCURRENCY), "trials_per_node": nodes,
    }
    print(f"{label}: {complete}/{len(outcome.trials)} complete, wall {wall:.1f} s (Ray fit {outcome.seconds:.1f} s), "
          f"sum(trial_seconds) {sum(secs):.1f} s, overhead share {row['overhead_share']:.1%} "
          f"(on the fit alone {row['overhead_share_fit']:.1%}), trials per node {nodes}", flush=True)
    return row


def embedded(preset: str, base: Path) -> dict[str, Any]:
    from sweeps.spec import load_spec

    spec = dataclasses.replace(load_spec(preset, stores_root=str(base / "embedded")), name="bench-embedded")
    return measure("embedded (local Ray, SQLite, local folders)", spec, None)


def cluster(preset: str, base: Path) -> dict[str, Any]:
    from benchmarks.cluster_helpers import (LoopbackCluster, MlflowServer, Postgres, base_env, ensure_postgres,
                                 without_sweeps_env)
    from sweeps.spec import Stores, load_spec

    t0 = time.perf_counter()
    pg = Postgres(ensure_postgres(), fast=False)  # durable settings (fsync on), as a real server
    server = nodes = None
    try:
        pg.start()
        mlflow_db, optuna_url = pg.create_database("mlflow"), pg.create_database("optuna")
        server = MlflowServer(mlflow_db, base / "mlartifacts", base / "mlflow.log", env=pg.env).start(wait=False)
        nodes = LoopbackCluster(base, without_sweeps_env(base_env(**pg.env)))
        nodes.start()
        server.wait()
        startup = time.perf_counter() - t0
        print(f"cluster stack up in {startup:.1f} s (PostgreSQL, MLflow server, 2 Ray nodes)", flush=True)
        os.environ.update(pg.env)  # this process is the driver: it reads the study too
        spec = load_spec(preset, stores_root=str(base / "cluster-root"))
        stores = Stores(root=str(base / "cluster-root"), mlflow_tracking_uri=server.uri, optuna_storage=optuna_url,
                        ray_storage=str(base / "ray-storage"), shared_filesystem=True)
        spec = dataclasses.replace(spec, name="bench-cluster", stores=stores)
        row = measure("cluster (2 Ray nodes x 1 CPU, PostgreSQL, MLflow server)", spec, nodes.address)
        row["stack_startup_s"] = startup
        return row
    finally:
        if nodes is not None:
            nodes.stop()
        if server is not None:
            server.stop()
        pg.stop()


# -- mnist-paper on a GPU: an estimate from this CPU -------------------------------------------------------

# Published/assumed figures the estimate rests on (printed with it).
H100_FP32_TFLOPS = 67.0          # H100 SXM, FP32 without tensor cores (NVIDIA datasheet)
GPU_EFFICIENCY = 0.3             # small convolutions reach a fraction of peak
PER_OP_US = (10.0, 20.0)         # PyTorch eager dispatch + CUDA launch per operator (fast host CPU)
SHARING_PENALTY = {1.0: 0.0, 0.5: 0.05, 0.25: 0.15}  # time-slicing between processes on one GPU
TRIAL_FIXED_S = 10.0             # per trial: actor reuse, dataset to GPU, MLflow logging, model upload


def paper_estimate(out: dict[str, Any]) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from sparsity import build_network, preset
    from sparsity.data import DataConfig, load_dataset
    from sparsity.recipe import paper_recipe
    from sparsity.sparse_weights import sparse_weight_modules
    from sparsity.train import train_step

    torch.set_num_threads(1)
    spec = preset("sparse-cnn2", "mnist")
    recipe = paper_recipe("sparse-cnn2", "mnist")
    data = load_dataset(DataConfig(name="mnist", train_limit=2048, eval_limit=1000))
    xs, ys = data.train.inputs, data.train.targets
    model = build_network(spec, seed=0)
    sparse = sparse_weight_modules(model)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    acc = torch.zeros(())

    def step(bs: int, i: int) -> None:  # sparsity.train's step, plus its loss/accuracy sums
        xb, yb = xs[i * bs:(i + 1) * bs], ys[i * bs:(i + 1) * bs]
        logits, loss = train_step(model, opt, sparse, xb, yb)
        with torch.no_grad():
            acc.add_(loss.detach() * len(yb))
            acc.add_((logits.argmax(1) == yb).sum())

    model.train()
    timings = {}
    for bs, n in ((recipe.first_epoch_batch_size, 300), (recipe.batch_size, 30)):
        for i in range(3):
            step(bs, i)  # warm-up
        t = time.perf_counter()
        for i in range(n):
            step(bs, i % (len(xs) // bs))
        timings[bs] = (time.perf_counter() - t) / n
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(recipe.batch_size, 0)
    events = [e for e in prof.events() if e.name.startswith("aten::")]
    ops_all = len(events)
    ops = sum(1 for e in events if e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    model.eval()
    with torch.no_grad():
        t = time.perf_counter()
        model(data.validation.inputs[:1000])
        eval_per_1000 = time.perf_counter() - t
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(data.validation.inputs[:1000])
    eval_ops = sum(1 for e in prof.events() if e.name.startswith("aten::")
                   and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))

    n_train, n_val, n_test = 55_000, 5_000, 10_000
    first_steps = n_train // recipe.first_epoch_batch_size
    later_steps = n_train // recipe.batch_size
    epochs = recipe.epochs
    cpu_first = first_steps * timings[recipe.first_epoch_batch_size]
    cpu_later = later_steps * timings[recipe.batch_size]
    cpu_eval = (n_val * epochs + 11 * (n_val + n_test) + n_test) / 1000 * eval_per_1000
    cpu_trial = cpu_first + (epochs - 1) * cpu_later + cpu_eval

    macs = 0
    for s in spec.layer_summaries():
        if s.kind == "conv":  # MACs = outputs before pooling x kernel fan-in; pooled output x4
            macs += s.units * 4 * (s.weights // (s.out_shape[0]))
        else:
            macs += s.weights
    train_flops = 3 * 2 * macs  # forward + backward (2x forward)
    gpu_flops = H100_FP32_TFLOPS * 1e12 * GPU_EFFICIENCY
    # Evaluation batches of 1000: validation each epoch, the clean test split, 11 noise levels on
    # validation and test (noise generation ~ as many ops again).
    eval_batches = epochs * n_val // 1000 + n_test // 1000 + 11 * (n_val + n_test) // 1000
    rows = []
    for per_op in PER_OP_US:
        step_dispatch = ops * per_op * 1e-6  # top-level operators: one dispatch (and launch) each
        t_first = first_steps * max(step_dispatch, recipe.first_epoch_batch_size * train_flops / gpu_flops)
        t_later = later_steps * max(step_dispatch, recipe.batch_size * train_flops / gpu_flops)
        t_eval = eval_batches * max(2 * eval_ops * per_op * 1e-6, 1000 * train_flops / 3 / gpu_flops)
        t_trial = t_first + (epochs - 1) * t_later + t_eval + TRIAL_FIXED_S
        for frac, penalty in SHARING_PENALTY.items():
            per_hour = 3600 / (t_trial * (1 + penalty)) / frac
            rows.append({"per_op_us": per_op, "gpus_per_trial": frac, "trial_s": t_trial * (1 + penalty),
                         "trials_per_gpu_hour": per_hour})
    out["paper_estimate"] = {
        "cpu_step_s": {str(k): v for k, v in timings.items()}, "aten_ops_per_step_top": ops,
        "aten_ops_per_step_all": ops_all, "eval_ops_per_batch": eval_ops, "cpu_first_epoch_s": cpu_first, "cpu_later_epoch_s": cpu_later,
        "cpu_trial_s": cpu_trial, "train_mflops_per_sample": train_flops / 1e6, "rows": rows,
        "assumptions": {"H100_FP32_TFLOPS": H100_FP32_TFLOPS, "GPU_EFFICIENCY": GPU_EFFICIENCY,
                        "PER_OP_US": PER_OP_US, "SHARING_PENALTY": SHARING_PENALTY, "TRIAL_FIXED_S": TRIAL_FIXED_S},
    }
    print(f"Sparse CNN-2, mnist-paper recipe ({epochs} epochs, first-epoch batch {recipe.first_epoch_batch_size}, "
          f"then {recipe.batch_size}), 1 CPU thread here:")
    print(f"  per step: {1e3 * timings[recipe.first_epoch_batch_size]:.2f} ms at batch "
          f"{recipe.first_epoch_batch_size}, {1e3 * timings[recipe.batch_size]:.2f} ms at batch {recipe.batch_size}; "
          f"{ops} top-level aten ops per training step ({ops_all} with nested), {eval_ops} per eval batch")
    print(f"  full data (55,000 train): first epoch {cpu_first / 60:.1f} min, later epochs {cpu_later:.0f} s, "
          f"whole trial ~{cpu_trial / 60:.0f} min on 1 CPU thread")
    print(f"  {train_flops / 1e6:.1f} MFLOP per training sample -> compute-bound H100 epoch "
          f"{n_train * train_flops / gpu_flops:.2f} s: the GPU is bound by per-operator dispatch, not FLOPs")
    print("ESTIMATE (no GPU measured): mnist-paper trials per GPU-hour (full 10-epoch trials, no early stopping)")
    for per_op in PER_OP_US:
        cells = [f"{r['gpus_per_trial']:g} GPU/trial: {r['trials_per_gpu_hour']:.0f} ({r['trial_s']:.0f} s/trial)"
                 for r in rows if r["per_op_us"] == per_op]
        print(f"  at {per_op:.0f} us/op: " + ";  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist-quick")
    parser.add_argument("--only", choices=["embedded", "cluster"], help="run one of the two")
    parser.add_argument("--paper-estimate", action="store_true", help="the mnist-paper GPU estimate instead")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for k, v in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true",
                 "DO_NOT_TRACK": "true"}.items():
        os.environ.setdefault(k, v)
    out: dict[str, Any] = {"machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                                       "load_avg_at_start": os.getloadavg()}}
    if args.paper_estimate:
        paper_estimate(out)
    else:
        base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        print(f"stores under {base}; preset {args.preset}; concurrency {CONCURRENCY}", flush=True)
        rows = []
        try:
            if args.only in (None, "embedded"):
                rows.append(embedded(args.preset, base))
            if args.only in (None, "cluster"):
                rows.append(cluster(args.preset, base))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        out["runs"] = rows
        print()
        print(f"{'mode':<58} {'wall s':>8} {'sum trial s':>12} {'overhead':>9}")
        for r in rows:
            print(f"{r['mode']:<58} {r['wall_s']:8.1f} {r['sum_trial_s']:12.1f} {r['overhead_share']:9.1%}")
    out["load_avg_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
