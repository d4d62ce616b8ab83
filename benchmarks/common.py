"""What the benchmarks share: where this repository keeps their inputs and results, and what
machine a benchmark ran on, for the figures it prints.

The benchmarks are a package of this repository, run from its root as ``python -m benchmarks.NAME``;
they import the installed `sparsity`, `sweeps` and `dashboards` by their public names, and their
shared helpers from here only.
"""

from __future__ import annotations

import platform
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
RESULTS = BENCHMARKS / "results"
SPECS = BENCHMARKS / "specs"
# The recorded replay table (`sweeps simulate --table`, $SPARSE_SWEEPS_REPLAY_TABLE): real trials of
# mnist-quick's spec (12,000 images x 2 epochs); and random search's curve on it, as the replay
# benchmark writes it. FIRST_REPLAY_TABLE is the first table (2,500 images x 4 epochs, where
# sparse configs were truly barely better than dense), kept with its results as the record.
REPLAY_TABLE = RESULTS / "replay" / "replay-mnist-quick.jsonl.gz"
FIRST_REPLAY_TABLE = RESULTS / "replay" / "replay-mnist.jsonl.gz"
RANDOM_REFERENCE = RESULTS / "replay" / "random-reference.json"


CONFIRM = (4, 3)  # the paper presets' confirm, {top: 4, seeds: 3}: what a benchmark runs where a spec has none


def bench_spec(spec, trials: int | None = None, concurrent: int | None = None,
               confirm: tuple[int, int] | None = None):
    """``spec`` with a benchmark's budget (``trials`` searched, ``concurrent`` at a time: the
    spec's where None), and the confirmation to run: ``confirm``, else the spec's (top, seeds),
    else `CONFIRM`."""
    import dataclasses

    budget = dataclasses.replace(spec.budget, trials=trials or spec.budget.trials,
                                 max_concurrent=concurrent or spec.budget.max_concurrent)
    own = None if spec.confirm is None else (spec.confirm.top, spec.confirm.seeds)
    return dataclasses.replace(spec, budget=budget), tuple(confirm or own or CONFIRM)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_record(repo: Path | str, threads: int | None = None) -> dict:
    """The machine, the load, and the exact code a result came from: the commit checked out and
    whether tracked files differed from it (a result from a dirty tree names no commit's code)."""
    import os
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "threads_per_process": threads if threads is not None else int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
            "commit": git("rev-parse", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "load_before": list(os.getloadavg())}


def parse_seeds(text: str) -> list[int]:
    """Seeds written as ``0-9`` or ``0,3,5-7``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def write_json(path: Path, data: dict) -> None:
    """``data`` as JSON at ``path``, atomically (a stopped campaign never leaves half a file)."""
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def kill_pool(pool) -> None:
    """Stop a campaign's `ProcessPoolExecutor` now: its workers killed (runs in flight start or
    resume again next time), nothing new started. The executor keeps no public handle on them."""
    for p in list(getattr(pool, "_processes", {}).values()):
        p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
