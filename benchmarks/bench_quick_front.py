"""What the quick sweep shows a newcomer, over sweep seeds: is the most robust config of its
confirmed front a sparse one, what does `sweeps best` claim against dense, and how long it takes.

For each sweep seed s (default 0-9) the shipped `mnist-quick` preset runs as a user runs it
(`sweeps run SPEC --root ROOT`, the spec's `seed` and `searcher.seed` set to s, nothing else
changed), then `sweeps best NAME --root ROOT --out FILE` hands over its config. Recorded per seed:
the sweep's wall time (the command's, start-up and confirmation included), the confirmed front
(each config's mean noise score and accuracy over its seeds), whether the front's highest mean
noise score is a sparse (searched) config, and what `best` says against each baseline. The
summary: the sparse-on-top rate with its exact (Clopper-Pearson) 95 % interval, how often the
claim against dense resolved, the wall times.

One JSON line per finished seed in ``--work`` (a rerun skips them); ``--finalize`` writes
``benchmarks/results/quick-front-<UTC>.json`` with machine, load and commit.

    SPARSE_SWEEPS_DATA=<data root> python -m benchmarks.bench_quick_front [--seeds 0-9] [--finalize]
        [--preset mnist-tradeoff]

``--searcher random`` runs the preset with another searcher (work file and results named
``quick-front-random``), to measure a preset's searcher before it changes. ``--preset`` runs
another shipped preset the same way (work file ``benchmarks/out/<preset>-front.jsonl``,
results ``benchmarks/results/<preset>-front-<UTC>.json``): `mnist-tradeoff`, the preset whose claim
against dense resolves, is measured so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import parse_seeds

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "out" / "quick-front.jsonl"
PRESET = "mnist-quick"


def front_facts(name: str, root: Path) -> dict[str, Any]:
    """The confirmed front as `sweeps status` and `best` see it: each config's means over its seeds."""
    from sweeps.results.read import config_front, config_summaries, sweep_status

    _, trials, _ = sweep_status(name, str(root))
    front = config_front(config_summaries(trials))
    rows = [{"number": c.number, "baseline": c.baseline or "", "seeds": len(c.accuracy),
             "val_accuracy": c.values[0], "val_noise_score": c.values[1]} for c in front]
    top = max(rows, key=lambda r: r["val_noise_score"])
    return {"front": rows, "top_noise": top, "top_noise_is_sparse": not top["baseline"]}


def run_seed(seed: int, root: Path, env: dict[str, str], preset: str = PRESET, searcher: str | None = None) -> dict[str, Any]:
    import yaml

    from sweeps.spec import load_spec

    spec = load_spec(preset).to_dict()
    name = f"quick-front-s{seed}" if preset == PRESET else f"{preset}-s{seed}"
    spec.update(name=name, seed=seed)
    spec["searcher"]["seed"] = seed
    if searcher:  # the preset with another searcher, nothing else changed
        spec["searcher"]["algorithm"] = searcher
    spec.pop("stores", None)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    sweeps = [sys.executable, "-m", "sweeps.cli"]
    t0 = time.perf_counter()
    run = subprocess.run([*sweeps, "run", str(path), "--root", str(root)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise RuntimeError(f"seed {seed}: sweeps run exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    best_file = root / f"{name}-best.yaml"
    best = subprocess.run([*sweeps, "best", name, "--root", str(root), "--out", str(best_file)], env=env,
                          capture_output=True, text=True)
    doc = yaml.safe_load(best_file.read_text()) if best_file.exists() else {}
    source = doc.get("source", {})
    return {"seed": seed, "preset": preset, "searcher": spec["searcher"]["algorithm"], "wall_seconds": round(wall, 1), **front_facts(name, root),
            "best": {"trial": source.get("optuna_trial_number"), "claims": source.get("claims", []),
                     "verdicts": source.get("verdicts", []), "claims_basis": source.get("claims_basis", ""),
                     "stdout": best.stdout[-4000:]},
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def dense_noise_verdict(row: dict[str, Any]) -> str:
    """What `best` claimed of its chosen config's noise score against dense: the verdict of its
    claims (a row recorded before they were: its one-sided test's verdict, marked as such); "no
    claim tested" where the chosen config rests on one seed or is a baseline."""
    best = row["best"]
    for v in best.get("verdicts", []):
        if v["baseline"] == "dense" and v["objective"] == "val_noise_score":
            return v["verdict"]
    for a in best.get("against", []):  # recorded before claims had margins
        if a.get("baseline") == "dense":
            return f"{a['val_noise_score']['verdict']} (test without margin)"
    for line in best.get("claims", []):  # recorded with the claims' lines but not their verdicts
        head = "val_noise_score vs dense: "
        if line.startswith(head):
            rest = line[len(head):]
            return next(v for v in ("better", "worse", "equivalent", "not resolved") if rest.startswith(v))
    return "no claim tested"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from scipy.stats import binomtest

    k, n = sum(r["top_noise_is_sparse"] for r in rows), len(rows)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact") if n else None
    verdicts = [dense_noise_verdict(r) for r in rows]
    walls = [r["wall_seconds"] for r in rows]
    return {"sweeps": n, "top_noise_sparse": k, "rate": k / n if n else None,
            "rate_ci95": None if ci is None else [ci.low, ci.high],
            "noise_verdicts_against_dense": {v: verdicts.count(v) for v in sorted(set(verdicts), key=str)},
            "wall_seconds": {"median": statistics.median(walls), "max": max(walls), "min": min(walls)} if walls else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--preset", default=PRESET, help=f"a shipped preset (default {PRESET})")
    parser.add_argument("--work", type=Path, default=None, help=f"work file (default {WORK.relative_to(ROOT)}, "
                        "or benchmarks/out/<preset>-front.jsonl)")
    parser.add_argument("--searcher", default=None, help="run the preset with this searcher instead of its own")
    parser.add_argument("--finalize", action="store_true", help="write the summary JSON from the finished seeds")
    args = parser.parse_args(argv)
    stem = ("quick-front" if args.preset == PRESET else f"{args.preset}-front") + (f"-{args.searcher}" if args.searcher else "")
    if args.work is None:
        args.work = ROOT / "benchmarks" / "out" / f"{stem}.jsonl"
    if not os.environ.get("SPARSE_SWEEPS_DATA"):
        print("error: SPARSE_SWEEPS_DATA is not set: point it at the data root", file=sys.stderr)
        return 2
    done = {}
    if args.work.exists():
        done = {r["seed"]: r for r in map(json.loads, args.work.read_text().splitlines()) if r}
    seeds = parse_seeds(args.seeds)
    if args.finalize:
        from benchmarks.common import machine_record

        rows = [done[s] for s in seeds if s in done]
        out = ROOT / "benchmarks" / "results" / f"{stem}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}.json"
        summary = summarize(rows)
        out.write_text(json.dumps({"preset": args.preset, "searcher": args.searcher, "summary": summary, "machine": machine_record(ROOT),
                                   "rows": rows}, indent=1) + "\n")
        print(json.dumps(summary, indent=1))
        print(f"wrote {out.relative_to(ROOT)}")
        return 0
    args.work.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for seed in seeds:
        if seed in done:
            continue
        root = Path(tempfile.mkdtemp(prefix=f"{stem}-{seed}-"))
        try:
            row = run_seed(seed, root, env, args.preset, args.searcher)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        with args.work.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"seed {seed}: {row['wall_seconds']:.0f} s; top of the front by noise: "
              f"{row['top_noise']['baseline'] or 'sparse #' + str(row['top_noise']['number'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
