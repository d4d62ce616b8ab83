"""How fast the `sweeps` CLI answers: each command as a fresh process, medians of --repeats.

Targets: `sweeps run BAD.yaml` refuses <= 1.5 s; `sweeps list` <= 1 s; `sweeps status`
<= 2.5 s at 2,000 trials; `sweeps best` <= 3 s; `sweeps report` (interactive, one self-contained
page; the importances read from the study, not refitted) <= 3 s at 2,000 trials.

The sweeps are fake but complete (tests/fake_store.py): a saved spec (mnist-quick) and an Optuna
SQLite study of N trials carrying what real trials carry (values, configs, curves, test figures),
written directly, with no training. Every command reads them as it reads a real sweep's.
`--before REF` runs the same commands, on the same stores, with the code of git commit REF (a
temporary worktree), so both sides do the same work on the same machine at the same load.

    python -m benchmarks.bench_cli [--trials 150,2000] [--repeats 5] [--before REF [--before-trials 150]]

Prints the figures and writes the raw samples to benchmarks/results/cli-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from benchmarks.common import cpu_model  # noqa: E402

TARGETS = {"run-bad": 1.5, "list": 1.0, "status": 2.5, "best": 3.0, "report": 3.0}
TARGET_AT = {"status": 2000, "report": 2000}  # these targets hold at 2,000 trials; the rest at any size
BAD_SPEC = """name: bad
dataset: {name: mnist}
network: sparse-mlp
space:
  percent_on: {low: 0.5, high: 0.1}
"""


PYCACHE: Path | None = None  # bytecode cache of the timed processes (see main)


def timed(cmd: list[str], code: Path, cwd: Path, expect: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its children)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    if PYCACHE is not None:
        # An installed package has its bytecode compiled; this venv was installed without it
        # (PYTHONDONTWRITEBYTECODE=1), so each process would compile every module it imports.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for out in (Path(cwd) / "best.yaml", Path(cwd) / "report.html"):  # `best`/`report` refuse to overwrite
        out.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode} (expected {expect}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(root: Path, name: str, work: Path) -> dict[str, tuple[list[str], int]]:
    cli = [sys.executable, "-m", "sweeps.cli"]
    r = ["--root", str(root)]
    return {
        "list": (cli + ["list", *r], 0),
        "status": (cli + ["status", name, *r], 0),
        "best": (cli + ["best", name, *r, "--out", str(work / "best.yaml")], 0),
        "report": (cli + ["report", name, *r, "--out", str(work / "report.html")], 0),
    }


def measure(label: str, code: Path, cases: dict[str, tuple[list[str], int]], work: Path, repeats: int) -> dict:
    # One untimed pass first: bytecode and page cache warm, as on a machine in use.
    for cmd, rc in cases.values():
        timed(cmd, code, work, rc)
    samples: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):  # interleaved, so a load swing touches every command alike
        for key, (cmd, rc) in cases.items():
            wall, used = timed(cmd, code, work, rc)
            samples[key].append(wall)
            cpu[key].append(used)
    out = {}
    for key, s in samples.items():
        out[key] = {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "samples_s": s,
                    "cpu_median_s": statistics.median(cpu[key]), "cpu_samples_s": cpu[key]}
        print(f"  {label:<7} {key:<8} median {out[key]['median_s']:6.2f} s  (min {min(s):.2f}, max {max(s):.2f}); "
              f"CPU median {out[key]['cpu_median_s']:.2f} s", flush=True)
    return out


def worktree(ref: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), ref], cwd=REPO, check=True,
                   capture_output=True)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", default="150,2000", help="comma-separated sweep sizes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", help="also time the code of this git commit, on the same stores")
    ap.add_argument("--before-repeats", type=int, default=None, help="repeats for --before (default --repeats)")
    ap.add_argument("--before-trials", default="150",
                    help="sizes --before is timed at (default 150: the old report's fANOVA takes minutes at 2,000)")
    ap.add_argument("--out", help="raw results JSON (default benchmarks/results/cli-<UTC time>.json)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="time with no bytecode cache (every module compiled from source in every process)")
    args = ap.parse_args()
    global PYCACHE

    from benchmarks.fake_store import build_store

    sizes = [int(s) for s in args.trials.split(",") if s.strip()]
    started = datetime.now(timezone.utc)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    machine = {
        "cpu": cpu_model(), "cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(), "load_before": os.getloadavg(),
        "started_utc": started.isoformat(timespec="seconds"), "commit": head + ("+dirty" if dirty else ""),
    }
    print(f"{machine['cpu']}, {machine['cpus_usable']} usable CPUs, load {machine['load_before']}, "
          f"commit {machine['commit']}, bytecode {'off' if args.no_bytecode else 'cached'}", flush=True)
    results: dict = {"machine": machine, "targets_s": TARGETS, "repeats": args.repeats, "sizes": {}}
    machine["bytecode"] = not args.no_bytecode
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        tmp = Path(tmp)
        PYCACHE = None if args.no_bytecode else tmp / "pycache"  # filled by each command's untimed pass
        work = tmp / "work"
        work.mkdir()
        (work / "bad.yaml").write_text(BAD_SPEC)
        codes = {"after": REPO}
        if args.before:
            codes["before"] = worktree(args.before, tmp / "before")
            results["before_commit"] = args.before
        try:
            bad = {"run-bad": ([sys.executable, "-m", "sweeps.cli", "run", str(work / "bad.yaml"), "--root",
                                str(tmp / "none")], 2)}
            results["run-bad"] = {}
            print("sweeps run BAD.yaml:", flush=True)
            for label, code in codes.items():
                reps = args.before_repeats or args.repeats if label == "before" else args.repeats
                results["run-bad"][label] = measure(label, code, bad, work, reps)["run-bad"]
            for n in sizes:
                t = time.perf_counter()
                root = build_store(tmp / f"store-{n}", f"fake{n}", trials=n, replicates=3)  # confirmed: status and best compute the claims
                built = time.perf_counter() - t
                print(f"{n} trials (store built in {built:.1f} s):", flush=True)
                entry = {"store_build_s": built}
                before_sizes = {int(x) for x in args.before_trials.split(",") if x.strip()}
                for label, code in codes.items():
                    if label == "before" and n not in before_sizes:
                        continue
                    reps = args.before_repeats or args.repeats if label == "before" else args.repeats
                    entry[label] = measure(label, code, commands(root, f"fake{n}", work), work, reps)
                results["sizes"][str(n)] = entry
        finally:
            if "before" in codes:
                subprocess.run(["git", "worktree", "remove", "--force", str(codes["before"])], cwd=REPO,
                               capture_output=True)
    machine["load_after"] = os.getloadavg()
    machine["seconds"] = round((datetime.now(timezone.utc) - started).total_seconds(), 1)

    print("\ntargets (after):")
    rows = [("run-bad", None, results["run-bad"]["after"]["median_s"])]
    for n, entry in results["sizes"].items():
        rows += [(k, int(n), v["median_s"]) for k, v in entry["after"].items()]
    for key, n, median in rows:
        at = TARGET_AT.get(key)
        if at is not None and n != at:
            continue
        ok = "met" if median <= TARGETS[key] else "MISSED"
        print(f"  {key:<8} {'' if n is None else f'{n} trials':<12} {median:6.2f} s  target <= {TARGETS[key]} s: {ok}")
    print("(wall times on a loaded machine; the CPU medians above are what each command costs)")
    print(f"load average before {machine['load_before']}, after {machine['load_after']}")
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"cli-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
