"""The 2,000-trial sweep of tiny trials, run by the real service, then checked and timed.

Runs `benchmarks/specs/many-tiny-trials.yaml` (Sparse MLP, 300 MNIST images, 1 epoch, 2 at a time;
`--trials N` for a smaller sweep) through `sweeps.run.service.run_sweep` with the CLI's live progress
(`StudyProgress`), as `sweeps run` does, then checks:

* every trial is in Optuna and in MLflow, none duplicated (one Optuna trial per number, one MLflow
  trial run per Optuna trial, one Ray trial id per Optuna trial), none RUNNING in either store;
* `sweeps status`, `sweeps best` and `sweeps report` work on it (each run once as a fresh process,
  `python -m sweeps.cli`, wall and CPU time recorded);
* per-trial machinery time does not grow by more than 1.5x from the first 10 % of trials (by
  number) to the last 10 %. A trial's machinery time is its life in Optuna (``datetime_start``:
  asked by the searcher, to ``datetime_complete``: told) less its training (the trainable's
  ``trial_seconds``, the wall time of `run_experiment`, less ``report_seconds``, the time its
  per-epoch callbacks spent reporting); the trainable's own ``setup_seconds``, ``report_seconds``
  and ``logging_seconds`` (MLflow metrics of its run) are compared the same way.

Resumable: SIGINT, SIGTERM or SIGHUP stop the sweep as they stop `sweeps run` (running trials
marked, nothing left RUNNING) and the checks run on what finished; run the same command line again
(after a stop or a kill) and the sweep saved under --root is resumed (`sweeps.run.service.resume_sweep`)
before the checks; `--check-only` only checks and times.
Raw results (every trial's timings) go to benchmarks/results/many-trials-<UTC time>.json.

    SPARSE_SWEEPS_DATA=/path/to/data python -m benchmarks.bench_many_trials --root /tmp/many [--trials 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

SPEC = REPO / "benchmarks" / "specs" / "many-tiny-trials.yaml"
GROWTH_TARGET = 1.5


class LoadSampler:
    """The 1-minute load average every ``every`` seconds while a sweep runs."""

    def __init__(self, every: float = 30.0) -> None:
        self.every, self.samples = every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((round(time.time(), 1), os.getloadavg()[0]))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def run_or_resume(spec: Any, root: Path) -> dict[str, Any]:
    from sweeps.cli.progress import StudyProgress
    from sweeps.results.read import spec_path
    from sweeps.run.service import resume_sweep, run_sweep
    from sweeps.shutdown import stop_on_signals

    resumed = spec_path(root, spec.name).exists()
    print(f"{'resuming' if resumed else 'launching'} {spec.name}: {spec.num_samples} trials under {root}", flush=True)
    t0, started = time.perf_counter(), datetime.now(timezone.utc)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    stopped = None
    # As the CLI does: SIGINT, SIGTERM or SIGHUP stop the sweep cleanly (its running trials marked,
    # resumable), and the checks below still run on what it finished.
    with LoadSampler() as load, stop_on_signals():
        try:
            if resumed:
                outcome = resume_sweep(spec.name, root=str(root), progress=StudyProgress())
            else:
                outcome = run_sweep(spec, progress=StudyProgress())
        except KeyboardInterrupt as e:
            stopped, outcome = str(e) or "SIGINT", None
            print(f"stopped by {stopped}: checking what ran (run this again to resume)", flush=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "resumed": resumed, "stopped": stopped, "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - t0, 1),
        "outcome_seconds": None if outcome is None else round(outcome.seconds, 1),
        "driver_cpu_s": round(cpu1[0].ru_utime + cpu1[0].ru_stime - cpu0[0].ru_utime - cpu0[0].ru_stime, 1),
        "load_1min": load.samples,
    }


def check_stores(spec: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(checks, one row per trial joined from Optuna and MLflow)."""
    import optuna
    from mlflow.tracking import MlflowClient

    from sweeps.tracking import runs as tracking

    stores = spec.stores.resolved()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=spec.name, storage=stores.optuna_storage).get_trials(deepcopy=False)
    numbers = Counter(t.number for t in trials)
    ray_ids = Counter(t.user_attrs.get("ray_trial_id") for t in trials)
    states = Counter(t.state.name for t in trials)
    client = MlflowClient(stores.mlflow_tracking_uri)
    exp = client.get_experiment_by_name(spec.name)
    runs = tracking.find_runs(client, exp.experiment_id, {tracking.TAG_SWEEP: spec.name, tracking.TAG_KIND: "trial"})
    run_numbers = Counter(int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs)
    run_status = Counter(r.info.status for r in runs)
    by_number = {int(r.data.tags[tracking.TAG_OPTUNA]): r for r in runs}
    checks = {
        "trials_expected": spec.num_samples,
        "optuna_trials": len(trials),
        "optuna_states": dict(states),
        "optuna_numbers_duplicated": sorted(n for n, c in numbers.items() if c > 1),
        "optuna_numbers_missing": len(set(range(spec.num_samples)) - set(numbers)),
        "optuna_running_or_waiting": [t.number for t in trials if t.state.name in ("RUNNING", "WAITING")],
        "ray_trial_ids_duplicated": sorted(str(k) for k, c in ray_ids.items() if c > 1),
        "mlflow_trial_runs": len(runs),
        "mlflow_run_status": dict(run_status),
        "mlflow_numbers_duplicated": sorted(n for n, c in run_numbers.items() if c > 1),
        "optuna_trials_without_mlflow_run": sorted(set(numbers) - set(run_numbers)),
        "mlflow_runs_without_optuna_trial": sorted(set(run_numbers) - set(numbers)),
        "mlflow_running": sorted(int(r.data.tags[tracking.TAG_OPTUNA]) for r in runs if r.info.status == "RUNNING"),
    }
    checks["ran_to_the_end"] = len(trials) == spec.num_samples and not checks["optuna_numbers_missing"]
    # Every trial that exists is in both stores once and none is RUNNING (also for a stopped sweep).
    checks["passed"] = (
        not checks["optuna_numbers_duplicated"] and set(numbers) == set(range(len(trials)))
        and not checks["optuna_running_or_waiting"]
        and not checks["ray_trial_ids_duplicated"] and len(runs) == len(trials)
        and not checks["mlflow_numbers_duplicated"] and not checks["optuna_trials_without_mlflow_run"]
        and not checks["mlflow_runs_without_optuna_trial"] and not checks["mlflow_running"]
    )
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        run = by_number.get(t.number)
        m = run.data.metrics if run else {}
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name, "baseline": t.user_attrs.get("baseline", ""),
            "optuna_start": t.datetime_start.timestamp() if t.datetime_start else None,
            "optuna_end": t.datetime_complete.timestamp() if t.datetime_complete else None,
            "run_start": run.info.start_time / 1000 if run else None,
            "run_end": (run.info.end_time or 0) / 1000 or None if run else None,
            **{k: m.get(k) for k in ("trial_seconds", "setup_seconds", "report_seconds", "logging_seconds")},
            "values": list(t.values) if t.values else None,
        }
        if row["optuna_start"] and row["optuna_end"]:
            row["optuna_seconds"] = row["optuna_end"] - row["optuna_start"]
            if row["trial_seconds"] is not None:
                row["training_seconds"] = row["trial_seconds"] - (row["report_seconds"] or 0.0)
                row["machinery_seconds"] = row["optuna_seconds"] - row["training_seconds"]
        rows.append(row)
    return checks, rows


def bootstrap_ratio_ci(first: list[float], last: list[float], resamples: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile-bootstrap interval of median(last) / median(first), each side resampled with
    replacement (its own size), seeded so the same rows give the same interval."""
    import random

    rng = random.Random(seed)
    ratios = sorted(statistics.median(rng.choices(last, k=len(last))) / statistics.median(rng.choices(first, k=len(first)))
                    for _ in range(resamples))
    return [ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]]


def growth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """First 10 % of trials (by number) against the last 10 %: medians and means of each timing."""
    done = [r for r in rows if r["state"] == "COMPLETE" and "machinery_seconds" in r]
    k = max(1, len(rows) // 10)
    first = [r for r in done if r["number"] < k]
    last = [r for r in done if r["number"] >= len(rows) - k]
    out: dict[str, Any] = {"tenth": k, "first_n": len(first), "last_n": len(last)}
    for key in ("machinery_seconds", "optuna_seconds", "training_seconds", "setup_seconds", "report_seconds",
                "logging_seconds"):
        a = [r[key] for r in first if r.get(key) is not None]
        b = [r[key] for r in last if r.get(key) is not None]
        if a and b:
            out[key] = {"first_median": statistics.median(a), "last_median": statistics.median(b),
                        "first_mean": statistics.fmean(a), "last_mean": statistics.fmean(b),
                        "ratio_median": statistics.median(b) / statistics.median(a) if statistics.median(a) else None,
                        "ratio_mean": statistics.fmean(b) / statistics.fmean(a) if statistics.fmean(a) else None}
    # Throughput: trials told per minute over the first and the last 10 % of completions.
    ends = sorted(r["optuna_end"] for r in rows if r.get("optuna_end"))
    if len(ends) >= 2 * k and k > 1:
        out["trials_per_minute_first"] = 60 * (k - 1) / (ends[k - 1] - ends[0])
        out["trials_per_minute_last"] = 60 * (k - 1) / (ends[-1] - ends[-k])
        out["trials_per_minute_overall"] = 60 * (len(ends) - 1) / (ends[-1] - ends[0])
    m = out.get("machinery_seconds")
    if m:
        a = [r["machinery_seconds"] for r in first]
        b = [r["machinery_seconds"] for r in last]
        m["ratio_median_ci95"] = bootstrap_ratio_ci(a, b)
    out["target"] = GROWTH_TARGET
    out["met"] = bool(m and m["ratio_median"] is not None and m["ratio_median"] <= GROWTH_TARGET)
    return out


def time_cli(spec: Any, root: Path, work: Path) -> dict[str, Any]:
    cli = [sys.executable, "-m", "sweeps.cli"]
    cases = {
        "status": cli + ["status", spec.name, "--root", str(root)],
        "best": cli + ["best", spec.name, "--root", str(root), "--out", str(work / "best.yaml")],
        "report": cli + ["report", spec.name, "--root", str(root), "--out", str(work / "report.html")],
    }
    out = {}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, cmd in cases.items():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = os.getloadavg()[0]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        out[key] = {"rc": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1min": load,
                    "stdout_tail": proc.stdout[-600:], "stderr_tail": proc.stderr[-600:]}
        print(f"  sweeps {key}: rc {proc.returncode}, {wall:.2f} s wall, {cpu:.2f} s CPU (load {load:.1f})", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="stores root (a sweep already saved there is resumed)")
    ap.add_argument("--spec", default=str(SPEC))
    ap.add_argument("--trials", type=int, help="total trials, baselines included (default: the spec's 2,000)")
    ap.add_argument("--name", help="sweep name (default: the spec's, with the trial count)")
    ap.add_argument("--check-only", action="store_true", help="only check and time a sweep already run")
    ap.add_argument("--out", help="raw results JSON (default benchmarks/results/many-trials-<UTC time>.json)")
    args = ap.parse_args()

    from benchmarks.common import cpu_model
    from sweeps.spec import load_spec

    root = Path(args.root).resolve()
    spec = load_spec(args.spec, stores_root=str(root))
    if args.trials:
        spec = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, trials=args.trials - len(spec.baselines)))
    spec = dataclasses.replace(spec, name=args.name or f"{spec.name}-{spec.num_samples}")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    started = datetime.now(timezone.utc)
    result: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "cpus_usable": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "load_before": os.getloadavg(), "commit": head, "code": str(REPO)},
        "spec": spec.to_dict(), "name": spec.name, "root": str(root), "started_utc": started.isoformat(timespec="seconds"),
    }
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"many-trials-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.check_only:
        result["run"] = run_or_resume(spec, root)
        print(f"sweep finished: {result['run']['wall_s']} s wall", flush=True)
        out.write_text(json.dumps(result, indent=1))  # what is known so far, should a check fail
    checks, rows = check_stores(spec)
    result["checks"] = checks
    print("checks:", json.dumps({k: v for k, v in checks.items()}, default=str)[:2000], flush=True)
    result["growth"] = growth(rows)
    print("growth:", json.dumps(result["growth"], indent=1), flush=True)
    work = root / "cli-out"
    work.mkdir(exist_ok=True)
    print("CLI on the finished sweep:", flush=True)
    result["cli"] = time_cli(spec, root, work)
    result["machine"]["load_after"] = os.getloadavg()
    result["trials"] = rows
    out.write_text(json.dumps(result, indent=1))
    ok = checks["passed"] and all(v["rc"] == 0 for v in result["cli"].values())
    print(f"{'PASSED' if ok else 'FAILED'} checks ({checks['optuna_trials']} of {spec.num_samples} trials, "
          f"{'to the end' if checks['ran_to_the_end'] else 'NOT to the end'}); machinery growth {result['growth'].get('machinery_seconds', {}).get('ratio_median')} "
          f"(target <= {GROWTH_TARGET}); wrote {out}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
