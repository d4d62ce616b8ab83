"""The walk of a run: follow the spec from `sweeps.run.service.run_sweep` through the code.

Runs a tiny real sweep (local Ray, SQLite stores, a Sparse MLP on 600 MNIST images, the dense
baseline and one searched trial) with a profiler on the driver's main thread (where the service and
Tune's control loop run). Every call of a function of this repository that receives the sweep's spec
(an argument, ``self``, or a `RunContext` holding it) is a visit to that function's file. A *stop*
is entering a file (consecutive calls within one file are one stop); a *return* is entering a
file the walk had already left. The progress thread (which polls the study every few seconds) is not
on the walk and is not traced.

    SPARSE_SWEEPS_DATA=/path/to/data python benchmarks/trace_run_walk.py [--out FILE]

Prints the stops in call order with the function names, and writes them to
``benchmarks/results/run-walk-<utc>.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import os

    from machine import cpu_model
    from sweeps.run import service
    from sweeps.run.context import RunContext
    from sweeps.spec import SweepSpec

    root = Path(tempfile.mkdtemp(prefix="run-walk-"))
    spec = SweepSpec.from_dict({
        "name": "walk", "network": "sparse-mlp",
        "dataset": {"name": "mnist", "train_limit": 600, "eval_limit": 200},
        "recipe": {"epochs": 1, "first_epoch_batch_size": 32},
        "space": {"percent_on": {"low": 0.05, "high": 0.4, "log": True}},
        "baselines": [{"name": "dense"}],
        "budget": {"trials": 1, "max_concurrent": 2, "max_failures": 0},
        "searcher": {"algorithm": "tpe", "seed": 0},
        "stores": {"root": str(root)},
    })
    calls: list[tuple[str, str]] = []  # (file, function), in call order

    def carries_spec(value: object) -> bool:
        if isinstance(value, RunContext):
            value = value.spec
        return isinstance(value, SweepSpec) and value.name == spec.name

    def profile(frame, event, arg):  # noqa: ARG001
        if event != "call":
            return
        code = frame.f_code
        path = Path(code.co_filename)
        if REPO not in path.parents or {"benchmarks", ".venv"} & set(path.relative_to(REPO).parts):
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(carries_spec(frame.f_locals.get(n)) for n in names):
            calls.append((str(path.relative_to(REPO)), code.co_qualname))

    t0 = time.perf_counter()
    sys.setprofile(profile)
    try:
        outcome = service.run_sweep(spec)
    finally:
        sys.setprofile(None)
        shutil.rmtree(root, ignore_errors=True)
    wall = time.perf_counter() - t0

    stops: list[dict] = []
    for path, fn in calls:
        if stops and stops[-1]["file"] == path:
            if fn not in stops[-1]["functions"]:
                stops[-1]["functions"].append(fn)
            continue
        stops.append({"file": path, "functions": [fn]})
    seen: set[str] = set()
    returns = 0
    for stop in stops:
        returns += stop["file"] in seen
        seen.add(stop["file"])
    for i, stop in enumerate(stops, 1):
        print(f"{i:3d}  {stop['file']:34s} {', '.join(stop['functions'])}")
    print(f"{len(stops)} stops through {len(seen)} files, {returns} returns to a file already left "
          f"({len(outcome.trials)} trials, {wall:.0f} s)")
    result = {"stops": stops, "n_stops": len(stops), "files": len(seen), "returns": returns,
              "trials": len(outcome.trials), "wall_s": round(wall, 1), "machine": {"cpu": cpu_model(), "cpus_usable": len(os.sched_getaffinity(0)), "load_average": os.getloadavg()},
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out = args.out or REPO / "benchmarks" / "results" / f"run-walk-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
