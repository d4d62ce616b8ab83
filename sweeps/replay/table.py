"""The replay table: real trials of one spec's search space, recorded per epoch.

Written by ``benchmarks/build_replay_table.py`` as gzip-compressed JSON lines: a header line
``{"header": {"format", "version", "spec", "commit", "machine", "design", ...}}`` then one row a
trial, ``{"id", "kind": design|repeat|baseline, "params", "seed", "baseline"?, "of"?, "error",
"epochs": [{"epoch", "val_accuracy", "val_noise_score", "noise_max", "seconds", ...}]}``.
`load_table` checks that schema and names what is wrong; `ReplayTable.check_covers` says whether
a spec can be simulated on it.
"""

from __future__ import annotations

import gzip
import os
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweeps.errors import SpecError, TableError

__all__ = ["ReplayTable", "TableError", "load_table", "default_table", "TABLE_ENV"]

# Where `sweeps simulate` finds its table without --table. The package ships none (a table is a
# benchmark's output, tens of megabytes of recorded trials): this repository's is
# benchmarks/results/replay/replay-mnist-quick.jsonl.gz.
TABLE_ENV = "SPARSE_SWEEPS_REPLAY_TABLE"
FORMAT = "sparse-sweeps replay table"
EPOCH_KEYS = ("epoch", "val_accuracy", "val_noise_score", "noise_max", "seconds")


@dataclass(frozen=True)
class ReplayTable:
    path: str
    header: dict[str, Any]
    spec: Any  # the SweepSpec the table was recorded for
    rows: tuple[dict[str, Any], ...]

    @property
    def epochs(self) -> int:
        return self.spec.epochs

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.spec.space)

    def searched(self) -> list[dict[str, Any]]:
        """Rows of searched configs (the design and its repeats) that trained every epoch."""
        return [r for r in self.rows if r["kind"] in ("design", "repeat") and len(r["epochs"]) == self.epochs]

    def baseline_rows(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["kind"] == "baseline" and r.get("baseline") == name]

    def features(self, params_list: list[dict[str, Any]]) -> np.ndarray:
        """Configs as model inputs: each searched parameter, log-scaled where its range is."""
        cols = []
        for p in self.spec.space:
            values = np.array([float(params[p.name]) for params in params_list])
            cols.append(np.log(values) if p.log else values)
        return np.stack(cols, axis=1) if cols else np.zeros((len(params_list), 0))

    @staticmethod
    def curves(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(accuracy, noise score / its maximum, seconds), each (rows, epochs)."""
        acc = np.array([[e["val_accuracy"] for e in r["epochs"]] for r in rows], dtype=float)
        noise = np.array([[e["val_noise_score"] / e["noise_max"] for e in r["epochs"]] for r in rows], dtype=float)
        secs = np.array([[e["seconds"] for e in r["epochs"]] for r in rows], dtype=float)
        return acc, noise, secs

    def check_covers(self, spec: Any) -> None:
        """Raise `SpecError` naming the key when ``spec`` asks for what the table did not record."""
        table = self.spec

        def refuse(key: str, why: str) -> None:
            raise SpecError(f"{key}: {why}; the replay table {self.path} cannot simulate it (simulate a spec "
                            f"within the table's space, or record a table for this one with "
                            f"benchmarks/build_replay_table.py --spec)")

        if spec.dataset.name != table.dataset.name:
            refuse("dataset.name", f"{spec.dataset.name!r} but the table holds {table.dataset.name!r} trials")
        if spec.network.to_dict() != table.network.to_dict():
            refuse("network", f"{spec.network.name!r} differs from the table's {table.network.name!r}")
        if spec.noise.kind_for(spec.dataset.name) != table.noise.kind_for(table.dataset.name):
            refuse("objectives.noise.kind", f"{spec.noise.kind_for(spec.dataset.name)!r} but the table scored "
                   f"{table.noise.kind_for(table.dataset.name)!r}")
        if spec.epochs != table.epochs:
            refuse("recipe.epochs", f"{spec.epochs} epochs but the table recorded {table.epochs} (values after "
                   f"{spec.epochs} of {table.epochs} epochs are not what a {spec.epochs}-epoch schedule trains)")
        for key in ("train_limit", "eval_limit", "validation_size", "split_seed"):
            mine, theirs = getattr(spec.dataset, key), getattr(table.dataset, key)
            if mine != theirs:
                refuse(f"dataset.{key}", f"{mine!r} but the table was trained with {theirs!r} (the levels of both "
                       f"objectives depend on it)")
        recorded = {p.name: p for p in table.space}
        for p in spec.space:
            if p.name not in recorded:
                refuse(f"space.{p.name}", f"not searched in the table (it searched {sorted(recorded)})")
            t = recorded[p.name]
            if p.choices is not None or t.choices is not None:
                if set(p.values()) - set(t.values()):
                    refuse(f"space.{p.name}", f"choices {list(p.values())} are not all in the table's {list(t.values())}")
            elif p.low < t.low - 1e-12 or p.high > t.high + 1e-12:
                refuse(f"space.{p.name}", f"range [{p.low:g}, {p.high:g}] is outside the table's [{t.low:g}, {t.high:g}]")
        missing = sorted(set(recorded) - {p.name for p in spec.space})
        if missing:
            refuse("space", f"does not search {missing}, which the table varied (it cannot hold them fixed)")
        names = {r.get("baseline") for r in self.rows if r["kind"] == "baseline"}
        for i, b in enumerate(spec.baselines):
            if b.name not in names:
                refuse(f"baselines[{i}]", f"{b.name!r} is not recorded (the table has {sorted(names)})")


def _fail(path: Path, where: str, why: str) -> None:
    raise TableError(f"replay table {path}: {where}: {why}")


def default_table() -> Path:
    """The table named by $SPARSE_SWEEPS_REPLAY_TABLE (`TABLE_ENV`); a `TableError` when unset."""
    value = os.environ.get(TABLE_ENV, "").strip()
    if not value:
        raise TableError(f"no replay table: pass --table FILE or set ${TABLE_ENV} (this repository's is "
                         f"benchmarks/results/replay/replay-mnist-quick.jsonl.gz)")
    return Path(value).expanduser()


def load_table(path: str | Path | None = None) -> ReplayTable:
    """Read and check a replay table (.jsonl.gz or .jsonl); None: `default_table`."""
    from sweeps.spec import SweepSpec

    path = default_table() if path is None else Path(path)
    if not path.exists():
        raise TableError(f"replay table {path} does not exist; build one with benchmarks/build_replay_table.py "
                         f"or pass --table")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            lines = [line for line in f if line.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as e:
        _fail(path, "file", f"cannot be read ({e})")
    if not lines:
        _fail(path, "line 1", "the file is empty")
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError as e:
        _fail(path, "line 1", f"not JSON ({e})")
    header = first.get("header") if isinstance(first, dict) else None
    if not isinstance(header, dict):
        _fail(path, "line 1", "expected {\"header\": {...}}")
    if header.get("format") != FORMAT or header.get("version") != 1:
        _fail(path, "header", f"format {header.get('format')!r} version {header.get('version')!r}; expected {FORMAT!r} version 1")
    for key in ("spec", "commit", "machine"):
        if key not in header:
            _fail(path, "header", f"missing {key!r}")
    try:
        spec = SweepSpec.from_dict(header["spec"])
    except ValueError as e:
        _fail(path, "header.spec", str(e))
    names = {p.name for p in spec.space}
    baselines = {b.name for b in spec.baselines}
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            _fail(path, f"line {n}", f"not JSON ({e})")
        where = f"line {n} ({row.get('id', '?') if isinstance(row, dict) else '?'})"
        if not isinstance(row, dict):
            _fail(path, where, "a row must be an object")
        for key in ("id", "kind", "params", "seed", "epochs"):
            if key not in row:
                _fail(path, where, f"missing {key!r}")
        if row["kind"] not in ("design", "repeat", "baseline"):
            _fail(path, where, f"kind {row['kind']!r} is not design, repeat or baseline")
        if row["kind"] == "baseline":
            if row.get("baseline") not in baselines:
                _fail(path, where, f"baseline {row.get('baseline')!r} is not one of the spec's {sorted(baselines)}")
        elif set(row["params"]) != names:
            _fail(path, where, f"params {sorted(row['params'])} differ from the spec's space {sorted(names)}")
        if not isinstance(row["epochs"], list) or (not row.get("error") and len(row["epochs"]) != spec.epochs):
            _fail(path, where, f"expected {spec.epochs} epochs, got {len(row['epochs']) if isinstance(row['epochs'], list) else row['epochs']!r}")
        for i, e in enumerate(row["epochs"]):
            missing = [k for k in EPOCH_KEYS if k not in e]
            if missing:
                _fail(path, f"{where} epochs[{i}]", f"missing {missing}")
            if e["epoch"] != i + 1:
                _fail(path, f"{where} epochs[{i}]", f"epoch {e['epoch']!r}, expected {i + 1}")
            if not all(isinstance(e[k], (int, float)) and math.isfinite(e[k]) for k in EPOCH_KEYS):
                _fail(path, f"{where} epochs[{i}]", "values must be finite numbers")
        rows.append(row)
    if not any(r["kind"] == "design" for r in rows):
        _fail(path, "rows", "no design rows")
    return ReplayTable(path=str(path), header=header, spec=spec, rows=tuple(rows))
