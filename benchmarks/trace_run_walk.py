"""The walks of a sweep: follow it through the code for `run`, `best` and `resume`.

Runs a tiny real sweep (local Ray, SQLite stores, a Sparse MLP on 600 MNIST images, the dense
baseline and one searched trial) with a profiler on the driver's main thread (where the service and
Tune's control loop run), then `sweeps best` on it (through the CLI's `main`, in this process), then
`resume_sweep` on the finished sweep. Every call of a function of this repository that receives the
sweep (its spec as an argument or ``self``, an object holding it as ``.spec`` such as a
`RunContext` or a `SweepReader`, or the command line's arguments naming it) is a visit to that
function's file. A *stop* is entering a file (consecutive calls within one file are one stop); a
*return* is entering a file the walk had already left. ``repeated`` lists the functions entered more
than once on a walk; ``stores_resolved_builds`` counts the times `Stores.resolved()` built resolved
stores (a call on stores already resolved returns them as they are and builds nothing). The progress
thread (which polls the study every few seconds) is not on the walk and is not traced.

    SPARSE_SWEEPS_DATA=/path/to/data python -m benchmarks.trace_run_walk [--out FILE]

Prints the stops of each walk in call order with the function names, and writes them to
``benchmarks/results/walks-<utc>.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import REPO, RESULTS, cpu_model


def _stops(calls: list[tuple[str, str]]) -> dict:
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
    entered = collections.Counter(f"{path}:{fn}" for path, fn in calls)
    return {"stops": stops, "n_stops": len(stops), "files": len(seen), "returns": returns,
            "repeated": {k: n for k, n in entered.items() if n > 1}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from sweeps.cli import commands as cli
    from sweeps.run import service
    from sweeps.spec import SweepSpec
    from sweeps.stores.config import Stores

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
    builds = [0]

    def carries_sweep(value: object) -> bool:
        if isinstance(value, argparse.Namespace):
            return getattr(value, "name", None) == spec.name
        if not isinstance(value, SweepSpec):
            try:
                value = value.__dict__.get("spec") if hasattr(value, "__dict__") else None
            except Exception:  # noqa: BLE001 - an object that refuses introspection carries nothing
                return False
        return isinstance(value, SweepSpec) and value.name == spec.name

    def profile(frame, event, arg):  # noqa: ARG001
        if event != "call":
            return
        code = frame.f_code
        path = Path(code.co_filename)
        if REPO not in path.parents or {"benchmarks", ".venv"} & set(path.relative_to(REPO).parts):
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if code.co_qualname == "Stores.resolved" and not frame.f_locals["self"].is_resolved:
            builds[0] += 1
        if any(carries_sweep(frame.f_locals.get(n)) for n in names):
            calls.append((str(path.relative_to(REPO)), code.co_qualname))

    def walk(label: str, fn) -> dict:
        calls.clear()
        builds[0] = 0
        t0 = time.perf_counter()
        sys.setprofile(profile)
        try:
            value = fn()
        finally:
            sys.setprofile(None)
        wall = time.perf_counter() - t0
        out = {**_stops(list(calls)), "stores_resolved_builds": builds[0], "wall_s": round(wall, 1)}
        print(f"\n{label}:")
        for i, stop in enumerate(out["stops"], 1):
            print(f"{i:3d}  {stop['file']:34s} {', '.join(stop['functions'])}")
        print(f"{out['n_stops']} stops through {out['files']} files, {out['returns']} returns to a file already "
              f"left; Stores.resolved() built {out['stores_resolved_builds']} time(s); functions entered more than "
              f"once: {out['repeated'] or 'none'} ({wall:.0f} s)")
        return out | {"value": value}

    assert Stores.resolved  # the class the profiler watches
    try:
        run = walk("run (service.run_sweep)", lambda: len(service.run_sweep(spec).trials))
        best = walk("best (sweeps best, the CLI's main)", lambda: cli.main(
            ["best", spec.name, "--root", str(root), "--out", str(root / "best.yaml")]))
        resume = walk("resume (service.resume_sweep)",
                      lambda: len(service.resume_sweep(spec.name, root=str(root)).trials))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert best["value"] == 0, "sweeps best failed"
    result = {"walks": {"run": run, "best": best, "resume": resume}, "trials": run.pop("value"),
              "machine": {"cpu": cpu_model(), "cpus_usable": len(os.sched_getaffinity(0)),
                          "load_average": os.getloadavg()},
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    best.pop("value"), resume.pop("value")
    out = args.out or RESULTS / f"walks-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
