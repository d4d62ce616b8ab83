"""Sweep-machinery overhead of the `mnist-quick` preset: how much of the wall time is training.

Runs the shipped `mnist-quick` sweep (10 searched trials + 2 baselines, 2 epochs of Sparse CNN-2 on
10,000 MNIST images, 2 trials at a time, 1 CPU / 1 torch thread each) through
`sweeps.run.service.run_sweep`, into a fresh stores root, and measures:

* wall time: the whole `run_sweep` call (data check, Ray start, MLflow/Optuna setup, trials,
  reconcile), and the part `run_sweep` itself reports (`SweepOutcome.seconds`, Ray fit only);
* the trials' training time: per trial, `trial_seconds` (the wall time of its `run_experiment`:
  training + validation/test evaluation + noise curves) less `report_seconds` (the time its per-epoch
  callbacks spent reporting to Tune, writing checkpoints and logging to MLflow, which is sweep
  machinery, not training); both are MLflow metrics of the trial's run;
* overhead share = 1 - sum(training) / (wall x concurrency), where concurrency is what the
  machine can really give: min(budget.max_concurrent, cores // resources.cpus);
* per-trial overhead = (wall x concurrency - sum(training)) / trials;
* where the rest goes, per trial, from MLflow timestamps (ms): before training (Ray trial start to
  the start of `run_experiment`: run lookup/creation, params, tempdir, dataset load on a fresh actor)
  and after it (noise-curve metrics, table, summary and `mlflow.pytorch.log_model`), plus the
  serial phases of the driver (start-up before the first trial, tail after the last) and idle slots;
* in-process micro-timings of the suspects (Ray init+shutdown, a cold dataset load,
  `mlflow.pytorch.log_model` of the trial's network, a checkpoint write) unless --no-micro.

It also prints the Pareto front and checks the preset's claim that a sparse config beats every
dense baseline on validation noise score. Targets: overhead share < 5%; total wall < 10 min on
2 cores.

    SPARSE_SWEEPS_DATA=/path/to/data SPARSE_SWEEPS_CACHE=/tmp/sscache RAY_AUTH_MODE=disabled \\
        python -m benchmarks.bench_sweep_overhead [--name bench-overhead] [--root DIR] [--json out.json]

Without --root the stores go to a fresh temporary folder (kept, and printed, for inspection).
With --address the sweep runs on a Ray cluster that is already up (start it first; the figures in
docs/benchmarks/sweeps.md had one node, started with the workers' preload, given time to import):

    RAY_AUTH_MODE=disabled RAY_preload_python_modules=sweeps.run.worker \
        ray start --head --num-cpus 2 --include-dashboard false --disable-usage-stats
    ... bench_sweep_overhead.py --address 127.0.0.1:6379
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_OVERHEAD = 0.05
TARGET_WALL_S = 600.0


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def trial_records(spec: Any, outcome: Any) -> list[dict[str, Any]]:
    """One row per trial, joined from MLflow (times, trial_seconds, epoch seconds) and Optuna."""
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import runs as tracking

    client = MlflowClient(spec.stores.resolved().mlflow_tracking_uri)
    by_number = {t.number: t for t in outcome.trials}
    rows = []
    for run in tracking.find_runs(client, outcome.mlflow_experiment_id, {tracking.TAG_SWEEP: spec.name,
                                                                         tracking.TAG_KIND: "trial"}):
        number = int(run.data.tags[tracking.TAG_OPTUNA])
        hist = client.get_metric_history(run.info.run_id, "trial_seconds")
        epochs = client.get_metric_history(run.info.run_id, "seconds")
        t = by_number.get(number)
        row = {
            "number": number,
            "baseline": run.data.tags.get(tracking.TAG_BASELINE, ""),
            "state": t.state.name if t else "?",
            "run_start": run.info.start_time / 1000,
            "run_end": (run.info.end_time or 0) / 1000 or None,
            "trial_seconds": run.data.metrics.get("trial_seconds"),
            # the trainable's own account of its non-training time (absent in runs of older code)
            **{k: run.data.metrics.get(k) for k in ("setup_seconds", "report_seconds", "logging_seconds")},
            # one value per epoch (the final metrics log the last epoch's `seconds` again)
            "epoch_seconds": sum({m.step: m.value for m in epochs}.values()),
            "final_ts": hist[-1].timestamp / 1000 if hist else None,
            "values": list(t.values) if t and t.values else None,
            "params": t.user_attrs.get("config", {}) if t else {},
        }
        rows.append(row)
    return sorted(rows, key=lambda r: r["number"])


def ray_trial_times(spec: Any) -> dict[int, dict[str, float]]:
    """Per Optuna trial number: Ray's time_total_s and the wall-clock start of the trainable (from
    the trial's result.json: first report's timestamp minus its time_this_iter_s)."""
    out: dict[int, dict[str, float]] = {}
    base = Path(spec.stores.resolved().ray_storage) / spec.name
    for path in base.glob("*/result.json"):
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        if not lines:
            continue
        first, last = lines[0], lines[-1]
        number = int(last.get("config", {}).get("optuna_trial_number", last.get("optuna_trial_number", -1)))
        out[number] = {
            "ray_time_total_s": float(last.get("time_total_s", math.nan)),
            "ray_start": float(first.get("timestamp", math.nan)) - float(first.get("time_this_iter_s", 0.0)),
            "ray_end": float(last.get("timestamp", math.nan)),
        }
    return out


def busy_union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, end = 0.0, -math.inf
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


class Phases:
    """Wall time of the driver's phases, by wrapping the functions `run_sweep` calls (benchmark-only
    instrumentation: the wrappers time and forward, nothing else)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.first_start: dict[str, float] = {}

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            self.first_start.setdefault(label, time.time())
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, attr, timed)

    def install(self) -> None:
        import ray
        from ray import tune

        from sweeps.run import context, ray_start, service
        from sweeps.run import tune as search

        self.wrap(service, "_check_data", "data check (load_dataset in driver)")
        self.wrap(ray_start, "start_ray", "ray.init")
        self.wrap(context, "open_context", "MLflow experiment + parent run, Optuna study")
        self.wrap(search.SweepSearch, "__init__", "SweepSearch init")
        self.wrap(tune.Tuner, "fit", "Tuner.fit (all trials)")
        self.wrap(ray, "shutdown", "ray.shutdown")
        self.wrap(service, "reconcile", "reconcile")
        self.wrap(service, "_log_sweep_summary", "sweep summary to MLflow")


def micro_timings(spec: Any, root: Path) -> dict[str, float]:
    """Time the suspected overheads one at a time, in this process (after the sweep, so imports
    are warm; a fresh Ray worker also pays its imports: see `import_seconds`)."""
    import dataclasses as dc

    import ray
    import torch
    from mlflow.tracking import MlflowClient

    from sparsity.data import load_dataset
    from sparsity.experiment import run_experiment
    from sweeps.tracking import runs as tracking
    from sweeps.run import trainable

    out: dict[str, float] = {}
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    out["ray_init_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ray.shutdown()
    out["ray_shutdown_s"] = time.perf_counter() - t

    t = time.perf_counter()
    load_dataset(dc.replace(spec.dataset))  # the trainable caches it per process: paid once per actor
    out["dataset_load_s"] = time.perf_counter() - t

    # A real (tiny) result of the sweep's network, to log exactly as a trial does.
    exp = spec.experiment({p.name: p.values()[0] for p in spec.space})
    tiny = dc.replace(exp, data=dc.replace(exp.data, train_limit=256, eval_limit=200),
                      recipe=exp.recipe.replace(epochs=1))
    result = run_experiment(tiny, threads=1)
    uri = spec.stores.resolved().mlflow_tracking_uri
    t = time.perf_counter()
    client = MlflowClient(uri)
    exp_id = tracking.experiment_id(client, spec.name + "-micro", spec.stores.resolved().mlflow_artifact_location)
    run = client.create_run(exp_id, run_name="micro")
    tracking.log_params(client, run.info.run_id, tracking.flatten("", tiny.to_dict()))
    out["mlflow_create_run_and_params_s"] = time.perf_counter() - t
    rid = run.info.run_id
    t = time.perf_counter()
    # the trainable logs both 11-level noise curves in one call
    tracking.log_series(client, rid, [("val_noise_accuracy", 0.5, step) for step in range(22)])
    out["mlflow_22_curve_log_batch_s"] = time.perf_counter() - t
    if hasattr(trainable, "curve_figure"):
        t = time.perf_counter()
        fig = trainable.curve_figure(result)
        out["curve_figure_render_s"] = time.perf_counter() - t
        t = time.perf_counter()
        client.log_figure(rid, fig, "noise_curve.png")
        out["mlflow_log_figure_s"] = time.perf_counter() - t
    t = time.perf_counter()
    trainable.log_model(client, rid, result, uri)
    out["mlflow_pytorch_log_model_s"] = time.perf_counter() - t
    run2 = client.create_run(exp_id, run_name="micro-log-result")
    t = time.perf_counter()
    trainable.log_result(client, run2.info.run_id, result, uri)
    out["whole_log_result_s"] = time.perf_counter() - t
    for r in (rid, run2.info.run_id):
        client.set_terminated(r, "FINISHED")
    t = time.perf_counter()
    torch.save({"model": result.model.state_dict()}, root / "micro-ckpt.pt")
    out["checkpoint_save_s"] = time.perf_counter() - t
    out["checkpoint_bytes"] = (root / "micro-ckpt.pt").stat().st_size
    return out


def import_seconds() -> float:
    """Wall time of a fresh interpreter importing what a trial worker imports."""
    import subprocess
    import sys

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sweeps.run.trainable, mlflow.pytorch"], check=True)
    return time.perf_counter() - t


def code_under_test() -> str:
    """Where `sweeps` is imported from, and its git commit (+dirty) when it is a checkout."""
    import subprocess

    import sweeps

    where = Path(sweeps.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "sweeps", "sparsity"],
                               capture_output=True, text=True).stdout.strip()
        return f"{where} @ {head}{' (+uncommitted changes in sweeps/ or sparsity/)' if dirty else ''}"
    except (subprocess.CalledProcessError, FileNotFoundError):
        return f"{where} (not a git checkout)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="bench-overhead", help="sweep name (must be new under --root)")
    parser.add_argument("--root", default=None, help="stores root (default: a fresh temporary folder)")
    parser.add_argument("--preset", default="mnist-quick")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--no-micro", action="store_true", help="skip the component micro-timings")
    parser.add_argument("--address", default=None,
                        help="run on this running Ray cluster (e.g. 127.0.0.1:6379) instead of starting Ray: "
                             "the sweep's overhead without the cluster's own start-up")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from sweeps.run.service import run_sweep
    from sweeps.spec import load_spec

    root = Path(args.root or tempfile.mkdtemp(prefix="bench-sweep-overhead-")).resolve()
    spec = load_spec(args.preset, stores_root=str(root))
    spec = dataclasses.replace(spec, name=args.name)
    n_cores = cores()
    slots = int(n_cores // spec.resources.cpus) or 1
    concurrency = max(1, min(spec.budget.concurrency(slots), slots))  # max_concurrent: auto -> the cores
    print(f"stores root: {root}")
    print(f"code under test: {code_under_test()}")
    print(f"ray: {'running cluster at ' + args.address if args.address else 'started by the sweep (ray.init)'}")
    print(f"sweep {spec.name} from preset {args.preset}: {spec.num_samples} trials "
          f"({spec.budget.trials} searched + {len(spec.baselines)} baselines), {spec.epochs} epochs, "
          f"max_concurrent {spec.budget.max_concurrent}, {spec.resources.cpus:g} cpu/trial, {n_cores} cores "
          f"-> concurrency {concurrency}")

    phases = Phases()
    phases.install()
    t0 = time.time()
    p0 = time.perf_counter()
    outcome = run_sweep(spec, address=args.address)
    wall = time.perf_counter() - p0
    t_end = time.time()

    rows = trial_records(spec, outcome)
    ray_times = ray_trial_times(spec)
    for r in rows:
        r.update(ray_times.get(r["number"], {}))
    done = [r for r in rows if r["trial_seconds"] is not None]
    for r in done:
        r["training_seconds"] = r["trial_seconds"] - (r.get("report_seconds") or 0.0)
    n = len(rows)
    sum_trial = sum(r["training_seconds"] for r in done)
    sum_report = sum(r.get("report_seconds") or 0.0 for r in done)
    sum_setup = sum(r.get("setup_seconds") or 0.0 for r in done)
    sum_logging = sum(r.get("logging_seconds") or 0.0 for r in done)
    sum_epoch = sum(r["epoch_seconds"] for r in done)
    slot_seconds = wall * concurrency
    overhead = 1 - sum_trial / slot_seconds
    per_trial_overhead = (slot_seconds - sum_trial) / max(n, 1)
    overhead_fit = 1 - sum_trial / (outcome.seconds * concurrency)

    print()
    print(f"{'trial':>5} {'baseline':<14} {'state':<9} {'trial_s':>8} {'report_s':>8} {'epochs_s':>8} {'setup_s':>7} "
          f"{'pre_s':>6} {'post_s':>6} {'ray_s':>6} {'val_acc':>8} {'val_noise':>9}")
    pre, post, ray_extra = [], [], []
    for r in rows:
        p = q = e = math.nan
        if r["final_ts"] is not None and r["trial_seconds"] is not None:
            train_start = r["final_ts"] - r["trial_seconds"]
            if "ray_start" in r:
                p = train_start - r["ray_start"]
            if r["run_end"]:
                q = r["run_end"] - r["final_ts"]
            if "ray_time_total_s" in r:
                e = r["ray_time_total_s"]
        pre.append(p), post.append(q), ray_extra.append(e)
        v = r["values"] or [math.nan, math.nan]
        print(f"{r['number']:>5} {r['baseline'] or '-':<14} {r['state']:<9} {r['trial_seconds'] or math.nan:>8.1f} "
              f"{r.get('report_seconds') or math.nan:>8.2f} {r['epoch_seconds']:>8.1f} "
              f"{r.get('setup_seconds') or math.nan:>7.2f} {p:>6.1f} {q:>6.1f} {e:>6.1f} {v[0]:>8.4f} {v[1]:>9.0f}")

    run_spans = [(r["ray_start"] if "ray_start" in r else r["run_start"], r["run_end"] or r["run_start"]) for r in rows]
    first_start = min(a for a, _ in run_spans) if run_spans else t0
    last_end = max(b for _, b in run_spans) if run_spans else t_end
    startup = first_start - t0
    tail = t_end - last_end
    busy = busy_union(run_spans)
    occupied = sum(b - a for a, b in run_spans)  # slot-seconds in which a trainable existed
    idle_slots = slot_seconds - occupied
    fit_start = phases.first_start.get("Tuner.fit (all trials)", t0)
    fin = lambda xs: [x for x in xs if math.isfinite(x)]  # noqa: E731

    figures: dict[str, Any] = {
        "code": code_under_test(),
        "preset": args.preset,
        "ray": f"running cluster at {args.address}" if args.address else "started by the sweep (ray.init)",
        "trials": n,
        "trials_complete": sum(1 for r in rows if r["state"] == "COMPLETE"),
        "cores": n_cores,
        "concurrency": concurrency,
        "wall_s": wall,
        "fit_s": outcome.seconds,
        "sum_training_seconds": sum_trial,
        "sum_trial_seconds": sum_trial + sum_report,
        "sum_report_seconds": sum_report,
        "sum_setup_seconds": sum_setup,
        "sum_logging_seconds": sum_logging,
        "sum_epoch_seconds": sum_epoch,
        "overhead_share": overhead,
        "overhead_share_fit_only": overhead_fit,
        "per_trial_overhead_s": per_trial_overhead,
        "startup_before_first_trial_s": startup,
        "tail_after_last_trial_s": tail,
        "no_trial_running_s": wall - busy,
        "idle_slot_seconds": idle_slots,
        "pre_training_s_median": statistics.median(fin(pre)) if fin(pre) else None,
        "pre_training_s_sum": sum(fin(pre)),
        "post_training_s_median": statistics.median(fin(post)) if fin(post) else None,
        "post_training_s_sum": sum(fin(post)),
        "eval_in_training_s_sum": sum_trial - sum_epoch,
        "steady_overhead_share": 1 - sum_trial / ((last_end - first_start) * concurrency),
    }
    print()
    print(f"wall time (run_sweep)            {wall:8.1f} s   (target < {TARGET_WALL_S:.0f} s: "
          f"{'met' if wall < TARGET_WALL_S else 'MISSED'})")
    print(f"  of which Ray fit (outcome)     {outcome.seconds:8.1f} s")
    print(f"sum of training                  {sum_trial:8.1f} s   (trial_seconds {sum_trial + sum_report:.1f} s less "
          f"per-epoch reporting {sum_report:.1f} s; epochs {sum_epoch:.1f} s, evaluation and noise curves "
          f"{sum_trial - sum_epoch:.1f} s)")
    print(f"slot-seconds (wall x {concurrency})          {slot_seconds:8.1f} s")
    print(f"overhead share                   {overhead:8.1%}   (target < {TARGET_OVERHEAD:.0%}: "
          f"{'met' if overhead < TARGET_OVERHEAD else 'MISSED'}); on Ray fit time only: {overhead_fit:.1%}")
    print(f"per-trial overhead               {per_trial_overhead:8.1f} s")
    print(f"between first trial start and last trial end: overhead share {figures['steady_overhead_share']:.1%} "
          f"(per-trial machinery, scheduling, uneven ends; no start-up or tail)")
    print("where the overhead goes (slot-seconds):")
    print(f"  driver start-up before first trial   {startup:7.1f} s wall x {concurrency} = {startup * concurrency:7.1f}")
    print(f"  driver tail after last trial         {tail:7.1f} s wall x {concurrency} = {tail * concurrency:7.1f}")
    print(f"  idle slots in between (scheduling, uneven ends) "
          f"{idle_slots - (startup + tail) * concurrency:7.1f}")
    print("driver phases (wall s):")
    for k, v in phases.seconds.items():
        print(f"  {k:<40} {v:7.1f}")
    print(f"  Tuner.fit start -> first trainable start  {first_start - fit_start:7.1f}  (Ray actor spawn, worker imports)")
    figures["driver_phases_s"] = dict(phases.seconds)
    figures["fit_to_first_trial_s"] = first_start - fit_start
    print(f"  Ray trial start -> training start    {sum(fin(pre)):7.1f} (median {figures['pre_training_s_median'] or math.nan:.1f} s/trial; "
          f"of which the trainable's set-up {sum_setup:.1f})")
    print(f"  per-epoch reporting (Tune, checkpoints, MLflow) {sum_report:7.1f}")
    print(f"  after training (MLflow: curves, figure, model)  {sum(fin(post)):7.1f} (median "
          f"{figures['post_training_s_median'] or math.nan:.1f} s/trial; the trainable's own count {sum_logging:.1f})")

    # Pareto front and the preset's claim.
    from sweeps.results.read import trial_row

    print()
    print("Pareto front (val_accuracy, val_noise_score):")
    for t in outcome.front:
        row = trial_row(t)
        params = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row["params"].items()}
        print(f"  #{row['number']:<3} {row['baseline'] or 'sparse':<14} acc {row['val_accuracy']:.4f}  "
              f"noise {row['val_noise_score']:.0f}  {params}")
    complete = [t for t in outcome.trials if t.values]
    # single-seed comparison of the first seeds (replicates left out; the confirmed means are the front's)
    from sweeps.search.study import is_replicate, is_searched

    dense = [t for t in complete if t.user_attrs.get("baseline") and not is_replicate(t)]
    sparse = [t for t in complete if is_searched(t)]
    best_dense = max((t.values[1] for t in dense), default=math.nan)
    best_sparse = max(sparse, key=lambda t: t.values[1], default=None)
    winners = [t.number for t in sparse if t.values[1] > best_dense]
    claim = bool(winners)
    print(f"best dense baseline noise score {best_dense:.0f}; best sparse {best_sparse.values[1] if best_sparse else math.nan:.0f} "
          f"(trial #{best_sparse.number if best_sparse else '-'}); sparse trials beating every dense baseline: "
          f"{winners or 'none'} -> claim {'holds' if claim else 'NOT shown'}")
    figures.update({"best_dense_noise": best_dense,
                    "best_sparse_noise": best_sparse.values[1] if best_sparse else None,
                    "sparse_beating_dense": winners, "claim_holds": claim,
                    "front": [trial_row(t) for t in outcome.front], "rows": rows})

    if not args.no_micro:
        micro = micro_timings(spec, root)
        micro["fresh_import_sweeps_trainable_s"] = import_seconds()
        figures["micro"] = micro
        print()
        print("component micro-timings (this process, after the sweep):")
        for k, v in micro.items():
            print(f"  {k:<34} {v:10.3f}" if isinstance(v, float) else f"  {k:<34} {v:10d}")

    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
