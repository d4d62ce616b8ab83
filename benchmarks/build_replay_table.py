"""Build the replay table: real trials of a sweep spec's search space, trained and scored per epoch.

Every row is one config trained through the project's training path (`sparsity.train.train`, the
spec's recipe and data) with the validation noise curve taken after every epoch (the same
`noise_curve` a trial scores itself with). Rows:

* ``design``: configs of the spec's space drawn by Optuna's `QMCSampler` (scrambled Sobol, seeded);
* ``baseline``: the spec's baselines (the dense point, dense with dropout), several model seeds;
* ``repeat``: a few design configs again with other model seeds, to measure trial-to-trial noise.

Resumable: rows are appended to ``--work`` (JSON lines) as they finish, and a rerun skips the rows
already there. ``--finalize`` writes the compressed table (header + rows) that
`sweeps.replay.table.load_table` reads::

    python -m benchmarks.build_replay_table --workers 2            # hours; rerun to resume
    python -m benchmarks.build_replay_table --finalize             # -> benchmarks/results/replay/...

The defaults build the committed table of the `mnist-quick` preset (200 design configs, 8 of them
with 8 model seeds, 20 seeds of each baseline); the first table was built with ``--spec
benchmarks/specs/replay-mnist.yaml --configs 300 --repeat-configs 5 --repeat-seeds 5
--baseline-seeds 5``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import warnings
import zlib
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
from benchmarks.common import REPLAY_TABLE, cpu_model  # noqa: E402

DEFAULT_SPEC = "mnist-quick"
DEFAULT_WORK = HERE / "out" / "replay-table.jsonl"
DEFAULT_TABLE = REPLAY_TABLE


def _jobs(spec, n_design: int, repeat_configs: int, repeat_seeds: int, baseline_seeds: int) -> list[dict]:
    import optuna

    from sweeps.search.study import suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(sampler=optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=spec.seed))
    design = []
    for _ in range(n_design):
        t = study.ask()
        design.append({p.name: suggest(t, p) for p in spec.space})
        study.tell(t, 0.0)
    jobs = [{"id": f"design-{i}", "kind": "design", "params": p, "seed": spec.seed} for i, p in enumerate(design)]
    for b in spec.baselines:
        for s in range(baseline_seeds):
            jobs.append({"id": f"baseline-{b.name}-seed{s}", "kind": "baseline", "baseline": b.name,
                         "params": dict(b.params), "seed": spec.seed + s})
    # Repeats: evenly spaced design configs, each with further model seeds.
    step = max(1, n_design // max(1, repeat_configs))
    for i in range(0, step * repeat_configs, step):
        for s in range(1, repeat_seeds):
            jobs.append({"id": f"design-{i}-seed{spec.seed + s}", "kind": "repeat", "of": f"design-{i}",
                         "params": design[i], "seed": spec.seed + s})
    # Interleave so that a partial table already spans the design and the repeats.
    return sorted(jobs, key=lambda j: (j["kind"] != "baseline", zlib.crc32(j["id"].encode()) % 7, j["id"]))


_WORKER: dict = {}


def _init_worker(spec_path: str) -> None:
    import torch

    from sparsity.data import load_dataset
    from sweeps.spec import load_spec

    torch.set_num_threads(1)
    spec = load_spec(spec_path)
    _WORKER.update(spec=spec, data=load_dataset(spec.dataset))


def _run(job: dict) -> dict:
    from sparsity.noise import noise_curve
    from sparsity.train import train

    spec, data = _WORKER["spec"], _WORKER["data"]
    baseline = next((b for b in spec.baselines if b.name == job.get("baseline")), None)
    exp = spec.experiment(job["params"], baseline=baseline, seed=job["seed"])
    kind = exp.noise.kind_for(exp.data.name)
    epochs: list[dict] = []
    last = [time.perf_counter()]

    def on_epoch(r, model) -> None:
        t = time.perf_counter()
        curve = noise_curve(model, data.validation, data.featurize, kind=kind, levels=exp.noise.levels,
                            seed=exp.noise.seed, batch_size=exp.recipe.eval_batch_size)
        done = time.perf_counter()
        epochs.append({"epoch": r.epoch, "val_accuracy": r.val_accuracy, "val_noise_score": curve.noise_score,
                       "noise_max": curve.total * len(curve.levels), "train_loss": r.train_loss,
                       "train_seconds": r.seconds, "noise_seconds": done - t, "seconds": done - last[0]})
        last[0] = time.perf_counter()

    t0 = time.perf_counter()
    error = None
    try:
        train(exp.network, exp.recipe, data, seed=exp.seed, device="cpu", threads=1, on_epoch=on_epoch)
    except Exception as e:  # a NaN loss is a real outcome of a config: recorded, not retried
        error = f"{type(e).__name__}: {e}"
    return {**job, "epochs": epochs, "error": error, "seconds": time.perf_counter() - t0}


def _done_ids(work: Path) -> set[str]:
    if not work.exists():
        return set()
    ids = set()
    for line in work.read_text().splitlines():
        try:
            ids.add(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError):
            continue  # a line cut by a kill: that row reruns
    return ids


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(spec, args) -> dict:
    return {
        "format": "sparse-sweeps replay table",
        "version": 1,
        "spec": spec.to_dict(),
        "commit": _git_commit(),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "torch_threads_per_trial": 1, "workers": args.workers, "loadavg_at_start": os.getloadavg()},
        "design": {"sampler": "optuna QMCSampler(sobol, scramble=True, seed=spec.seed)", "configs": args.configs,
                   "repeat_configs": args.repeat_configs, "repeat_seeds": args.repeat_seeds,
                   "baseline_seeds": args.baseline_seeds},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", default=str(DEFAULT_SPEC))
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="rows as they finish (resumable)")
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="the compressed table --finalize writes")
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--repeat-configs", type=int, default=8)
    ap.add_argument("--repeat-seeds", type=int, default=8, help="seeds per repeated config, the first included")
    ap.add_argument("--baseline-seeds", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="run at most this many rows (timing probes)")
    ap.add_argument("--finalize", action="store_true", help="write the compressed table from the finished rows")
    args = ap.parse_args(argv)

    from sweeps.spec import load_spec

    spec = load_spec(args.spec)
    jobs = _jobs(spec, args.configs, args.repeat_configs, args.repeat_seeds, args.baseline_seeds)
    head_file = args.work.with_suffix(".header.json")
    if args.finalize:
        rows = {json.loads(l)["id"]: json.loads(l) for l in args.work.read_text().splitlines() if l.strip()}
        missing = [j["id"] for j in jobs if j["id"] not in rows]
        if missing:
            print(f"{len(missing)} of {len(jobs)} rows still to run (first: {missing[0]}); rerun without --finalize")
            return 1
        head = json.loads(head_file.read_text())
        head["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        head["rows"] = len(jobs)
        args.table.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(args.table, "wt") as f:
            f.write(json.dumps({"header": head}) + "\n")
            for j in jobs:
                f.write(json.dumps(rows[j["id"]]) + "\n")
        print(f"wrote {args.table} ({len(jobs)} rows, {args.table.stat().st_size / 1024:.0f} KiB)")
        return 0

    args.work.parent.mkdir(parents=True, exist_ok=True)
    if not head_file.exists():
        head_file.write_text(json.dumps(header(spec, args), indent=1))
    done = _done_ids(args.work)
    todo = [j for j in jobs if j["id"] not in done][: args.limit]
    print(f"{len(done)} rows done, {len(todo)} to run with {args.workers} workers", flush=True)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, initializer=_init_worker, initargs=(args.spec,)) as pool, args.work.open("a") as out:
        for n, row in enumerate(pool.imap_unordered(_run, todo), 1):
            out.write(json.dumps(row) + "\n")
            out.flush()
            last = row["epochs"][-1] if row["epochs"] else {}
            rate = (time.perf_counter() - t0) / n
            print(f"[{n}/{len(todo)}] {row['id']}: acc {last.get('val_accuracy', float('nan')):.4f} "
                  f"noise {last.get('val_noise_score', -1)} {row['seconds']:.1f}s"
                  f"{' ERROR ' + row['error'] if row['error'] else ''}; eta {rate * (len(todo) - n) / 60:.0f} min",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
