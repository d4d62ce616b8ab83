"""Random search's expected hypervolume curve, from the replay benchmark, for a sweep's report.

`benchmarks/bench_replay.py` writes ``random-reference.json`` beside this module: random search's
median and interquartile hypervolume after each trial ended, over its simulated sweeps, with the
reference point and the search set-up (dataset and its limits, network, epochs, space) of the
table it replayed. A sweep's report draws it under the sweep's own curve only where the sweep's
set-up is that one: elsewhere the hypervolumes would not measure the same thing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RandomReference", "REFERENCE_FILE", "REFERENCE_ENV", "reference_file", "search_setup", "random_reference", "write_reference"]

# Random search's recorded curve, shipped as package data; $SPARSE_SWEEPS_RANDOM_REFERENCE names
# another. The replay benchmark records a new one under benchmarks/results/replay/ (never into the
# package); shipping it is a deliberate copy (docs/benchmarks.md).
REFERENCE_ENV = "SPARSE_SWEEPS_RANDOM_REFERENCE"
REFERENCE_FILE = Path(__file__).with_name("random-reference.json")


def reference_file() -> Path:
    """$SPARSE_SWEEPS_RANDOM_REFERENCE when set, else the shipped `REFERENCE_FILE`."""
    value = os.environ.get(REFERENCE_ENV, "").strip()
    return Path(value).expanduser() if value else REFERENCE_FILE


@dataclass(frozen=True)
class RandomReference:
    """Random search's anytime hypervolume on a replay table: quartiles after each trial ended."""

    reference_point: tuple[float, float]  # (accuracy, noise score / max)
    trials: tuple[int, ...]
    median: tuple[float, ...]
    q1: tuple[float, ...]
    q3: tuple[float, ...]
    seeds: int
    source: str  # the benchmark result it came from


def search_setup(spec: Any) -> dict[str, Any]:
    """What must be equal for two sweeps' hypervolumes to be comparable."""
    data = spec.dataset
    return {
        "dataset": {"name": data.name, "validation_size": data.validation_size, "split_seed": data.split_seed,
                    "train_limit": data.train_limit, "eval_limit": data.eval_limit},
        "network": spec.network.name,
        "epochs": spec.epochs,
        "noise": spec.noise.kind_for(data.name),
        "space": [{"name": p.name, "low": p.low, "high": p.high, "log": p.log, "integer": p.integer,
                   "choices": None if p.choices is None else list(p.choices)} for p in spec.space],
    }


def write_reference(spec: Any, reference_point: tuple[float, float], curve: dict[str, list[float]], seeds: int,
                    source: str, path: Path) -> Path:
    """Record random search's curve (`compare.summarize`'s ``curve_by_trials``) for ``spec``'s set-up."""
    record = {"setup": search_setup(spec), "reference_point": list(reference_point), "seeds": seeds,
              "source": source, "trials": list(range(1, len(curve["median"]) + 1)),
              "median": curve["median"], "q1": curve["q1"], "q3": curve["q3"]}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def random_reference(spec: Any, path: Path | None = None) -> RandomReference | None:
    """The recorded curve if ``spec``'s search set-up is the one it was recorded for, else None."""
    path = path or reference_file()
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    if record.get("setup") != search_setup(spec):
        return None
    return RandomReference(
        reference_point=tuple(record["reference_point"]), trials=tuple(record["trials"]),
        median=tuple(record["median"]), q1=tuple(record["q1"]), q3=tuple(record["q3"]),
        seeds=int(record["seeds"]), source=str(record["source"]),
    )
