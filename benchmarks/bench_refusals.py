"""The CLI's refusals, timed as a user meets them: each a fresh `python -m sweeps.cli` process.

Every refusal must print one line, exit 2, write nothing, and answer within 1.5 s. Each case runs
``--repeats`` times in a scratch folder (also the sweeps root and the working folder); the script
checks the exit code, that stdout and stderr hold one line together, and that the scratch folder
holds exactly what it held before, and prints the median wall and CPU time (user + system of the
child) with the machine's load. Raw samples go to ``benchmarks/results/refusals-<utc>.json``.

    python -m benchmarks.bench_refusals [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.5

NASTY = "s3c/ret#pw?x@y"  # a password with /, #, ? and @ left unencoded: the URL cannot be parsed


def cases(work: Path) -> dict[str, list[str]]:
    spec = work / "bad-url.yaml"
    spec.write_text("name: bad-url\ndataset: {name: mnist}\nnetwork: sparse-mlp\n"
                    f"stores: {{optuna_storage: 'postgresql://alice:{NASTY}@127.0.0.1:1/optuna'}}\n")
    (work / "taken.yaml").write_text("already here\n")
    root = ["--root", str(work)]
    return {
        "unparseable store password (run)": ["run", str(spec), *root],
        "sweep name outside the root (status ../../x)": ["status", "../../x", *root],
        "existing --out without --force (best)": ["best", "any", "--out", str(work / "taken.yaml"), *root],
        "bad registry model name (best --register)": ["best", "any", "--register", "bad name!", *root],
        "bad spec (run)": ["run", str(work / "taken.yaml"), *root],
    }


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def run_once(args: list[str], work: Path) -> dict:
    before = snapshot(work)
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps.cli", *args], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return {"rc": proc.returncode, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "lines": len(lines),
            "first_line": lines[0][:300] if lines else "", "wrote_nothing": snapshot(work) == before,
            "password_shown": NASTY in proc.stdout + proc.stderr}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from benchmarks.common import cpu_model

    load_before = os.getloadavg()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-refusals-") as tmp:
        work = Path(tmp)
        todo = cases(work)
        for name, argv in todo.items():
            run_once(argv, work)  # untimed: bytecode and the page cache warm
            samples = [run_once(argv, work) for _ in range(args.repeats)]
            wall = statistics.median(s["wall_s"] for s in samples)
            cpu = statistics.median(s["cpu_s"] for s in samples)
            ok = all(s["rc"] == 2 and s["lines"] == 1 and s["wrote_nothing"] and not s["password_shown"]
                     for s in samples)
            rows[name] = {"argv": argv, "median_wall_s": wall, "median_cpu_s": cpu, "one_line_exit_2_nothing_written": ok,
                          "met": ok and wall <= TARGET_S, "samples": samples}
            print(f"{name:48s} wall {wall:5.2f} s  cpu {cpu:5.2f} s  {'ok' if ok else 'NOT one line/exit 2/clean'}"
                  f"  {'met' if rows[name]['met'] else 'MISSED'}   | {samples[0]['first_line'][:90]}")
    result = {"target_s": TARGET_S, "repeats": args.repeats, "rows": rows,
              "machine": {"cpu": cpu_model(), "cpus_usable": len(os.sched_getaffinity(0)), "python": sys.version.split()[0],
                          "load_before": load_before, "load_after": os.getloadavg()},
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                       text=True).stdout.strip(),
              "utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    out = args.out or REPO / "benchmarks" / "results" / f"refusals-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load {load_before[0]:.1f} -> {result['machine']['load_after'][0]:.1f}; wrote {out}")
    return 0 if all(r["met"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
