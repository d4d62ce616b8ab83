"""A study's trials read straight from Optuna's RDB schema, without Optuna, SQLAlchemy's ORM or
alembic, and only the columns and user attributes asked for.

Optuna's public API loads every trial with every attribute (validation curves included) through
the ORM after an alembic schema check: at 2,000 trials about 3 s of CPU for what `sweeps list`
shows in two numbers. `read_trials` reads only a schema revision it knows
(`OPTUNA_SCHEMA_REVISION`) and raises `UnknownOptunaSchema` otherwise, so callers fall back on
Optuna's public API (`tests/test_internals.py` checks both, on SQLite and PostgreSQL, and fails
loudly on a new revision).
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from urllib.parse import quote

from sweeps.errors import StoreError
from sweeps.stores.paths import sqlite_file

__all__ = ["OPTUNA_SCHEMA_REVISION", "UnknownOptunaSchema", "StoredState", "StoredTrial", "read_trials"]


# -- Optuna's RDB schema, read directly ---------------------------------------------------------------
#
# The tables and columns below are Optuna's (optuna/storages/_rdb/models.py) at alembic revision
# `OPTUNA_SCHEMA_REVISION`, the revision of Optuna 3.2 to 5.0 at least. A store at any other revision
# raises `UnknownOptunaSchema` before anything else is read. tests/test_internals.py checks that
# the installed Optuna still creates this revision and that every read equals Optuna's own.

OPTUNA_SCHEMA_REVISION = "v3.2.0.a"


class UnknownOptunaSchema(RuntimeError):
    """The study's storage is not at the schema revision `read_trials` knows: read it with Optuna."""


class StoredState(enum.Enum):
    """`optuna.trial.TrialState`'s names and values, for trials read without importing Optuna."""

    RUNNING = 0
    COMPLETE = 1
    PRUNED = 2
    FAIL = 3
    WAITING = 4

    def is_finished(self) -> bool:
        return self not in (StoredState.RUNNING, StoredState.WAITING)


@dataclass(eq=False)
class StoredTrial:
    """A trial as `read_trials` read it: `FrozenTrial`'s ``number``, ``state``, ``values``,
    datetimes (naive local time, as Optuna gives them), ``params`` and ``distributions``, and
    ``user_attrs`` (only the keys asked for). ``params`` and ``distributions`` decode on first
    use, with Optuna's own decoder (that imports Optuna)."""

    number: int
    state: StoredState
    values: list[float] | None
    user_attrs: dict[str, Any]
    trial_id: int
    stored_datetimes: tuple[Any, Any] = (None, None)  # (start, complete) as stored: naive UTC
    stored_params: list[tuple[str, float, str]] = field(default_factory=list, repr=False)  # (name, internal value, distribution JSON)

    # Converted on first use: a local-time conversion per datetime cost the progress poll, which
    # reads every trial every 3 s and shows no datetime, about 0.1 s at 2,000 trials.
    @functools.cached_property
    def datetime_start(self) -> datetime | None:
        return _local(self.stored_datetimes[0])

    @functools.cached_property
    def datetime_complete(self) -> datetime | None:
        return _local(self.stored_datetimes[1])

    @functools.cached_property
    def distributions(self) -> dict[str, Any]:
        from optuna.distributions import json_to_distribution

        return {name: json_to_distribution(dist) for name, _, dist in self.stored_params}

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        return {name: self.distributions[name].to_external_repr(value) for name, value, _ in self.stored_params}


_VALUE_TYPES = {"FINITE": None, "INF_POS": float("inf"), "INF_NEG": float("-inf")}


def _local(value: Any) -> datetime | None:
    """A stored datetime (naive UTC; a string in SQLite) as Optuna returns it: naive local time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)


def _query_runner(url: str) -> tuple[Callable[[str, dict], list] | None, Callable[[], None]]:
    """(run(sql, params) -> rows, close) on a read-only connection in one transaction; run is None
    when the store does not exist (an SQLite file not there yet: no study, nothing created)."""
    path = sqlite_file(url)
    if path is not None:
        import sqlite3

        if not path.exists():
            return None, lambda: None
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30,
                               isolation_level=None)
        conn.execute("BEGIN")  # one snapshot for every query: a running sweep writes meanwhile
        return (lambda sql, params: conn.execute(sql, params).fetchall()), conn.close

    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    conn = engine.connect()  # SQLAlchemy 2 begins a transaction on the first query

    def close() -> None:
        conn.close()
        engine.dispose()

    return (lambda sql, params: conn.execute(sqlalchemy.text(sql), params).all()), close


def _placeholders(prefix: str, items: list) -> tuple[str, dict[str, Any]]:
    names = {f"{prefix}{i}": v for i, v in enumerate(items)}
    return ", ".join(f":{k}" for k in names), names


def read_trials(url: str, study_name: str, *, attrs: Iterable[str] | None = None,
                numbers: Iterable[int] | None = None, params: bool = True) -> list[StoredTrial] | None:
    """The trials of study ``study_name`` in the Optuna RDB storage at ``url``, by trial id (as
    ``Study.get_trials`` orders them); None when there is no such study. ``attrs``: the user
    attributes to read (None: all of them); ``numbers``: only these trials; ``params=False``
    skips the parameters. Read-only: nothing is created or written, not even a missing SQLite file.
    Raises `UnknownOptunaSchema` when the store is at another schema revision."""
    run, close = _query_runner(url)
    if run is None:
        return None
    try:
        try:
            revision = [r[0] for r in run("SELECT version_num FROM alembic_version", {})]
        except Exception as e:  # no such table: an empty database (Optuna creates its tables) or another
            text = " ".join(str(getattr(e, "orig", None) or e).split())
            if "not a database" in text or "malformed" in text:  # a damaged file: no reader can read it
                from sweeps.stores.secrets import display

                raise StoreError(f"Optuna storage {display(url)}: {text[:200]}; the file is damaged or not an "
                                 f"Optuna database: restore it from a copy") from None
            raise UnknownOptunaSchema(f"Optuna storage {url}: no schema revision ({e})") from None
        if revision != [OPTUNA_SCHEMA_REVISION]:
            raise UnknownOptunaSchema(f"Optuna storage {url}: schema revision {revision}, "
                                      f"not {OPTUNA_SCHEMA_REVISION}")
        return _read_rows(run, url, study_name, attrs, numbers, params)
    finally:
        close()


def read_study_attr(url: str, study_name: str, key: str) -> Any:
    """One user attribute of study ``study_name`` (its JSON value), None when the study, the
    attribute or the store is not there. Read-only, like `read_trials`; a value that is not JSON is
    one `StoreError` line."""
    run, close = _query_runner(url)
    if run is None:
        return None
    try:
        rows = run("SELECT a.value_json FROM study_user_attributes a JOIN studies s ON s.study_id = a.study_id "
                   "WHERE s.study_name = :name AND a.key = :key", {"name": study_name, "key": key})
    except Exception:  # no tables yet (an empty database): no study, no attribute
        return None
    finally:
        close()
    if not rows:
        return None
    try:
        return json.loads(rows[0][0])
    except (TypeError, ValueError) as e:
        raise StoreError(f"Optuna storage: study {study_name!r} attribute {key!r} is not JSON ({e}); the store was "
                         f"damaged or written by something else: restore it from a copy") from None


def _read_rows(run: Callable[[str, dict], list], url: str, study_name: str, attrs: Iterable[str] | None,
               numbers: Iterable[int] | None, params: bool) -> list[StoredTrial] | None:
    """`read_trials` past its schema check; a row no reader can make sense of (a state, value
    type or attribute that was planted or damaged) is one `StoreError` line."""
    try:
        found = run("SELECT study_id FROM studies WHERE study_name = :name", {"name": study_name})
        if not found:
            return None
        where, args = "t.study_id = :study", {"study": found[0][0]}
        if numbers is not None:
            marks, named = _placeholders("n", sorted(set(numbers)))
            if not named:
                return []
            where += f" AND t.number IN ({marks})"
            args.update(named)
        trials: dict[int, StoredTrial] = {}
        for trial_id, number, state, start, complete in run(
                f"SELECT t.trial_id, t.number, t.state, t.datetime_start, t.datetime_complete FROM trials t "
                f"WHERE {where} ORDER BY t.trial_id", args):
            trials[trial_id] = StoredTrial(number, StoredState[state], None, {}, trial_id, (start, complete))
        values: dict[int, dict[int, float]] = {}
        for trial_id, objective, value, kind in run(
                f"SELECT v.trial_id, v.objective, v.value, v.value_type FROM trial_values v "
                f"JOIN trials t ON t.trial_id = v.trial_id WHERE {where}", args):
            inf = _VALUE_TYPES[getattr(kind, "name", kind)]
            values.setdefault(trial_id, {})[objective] = float(value) if inf is None else inf
        for trial_id, by_objective in values.items():
            if trial_id in trials:
                trials[trial_id].values = [by_objective[i] for i in sorted(by_objective)]
        keys = None if attrs is None else sorted(set(attrs))
        if keys != []:
            key_filter, key_args = "", {}
            if keys is not None:
                marks, key_args = _placeholders("k", keys)
                key_filter = f" AND a.key IN ({marks})"
            for trial_id, key, value_json in run(
                    f"SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
                    f"JOIN trials t ON t.trial_id = a.trial_id WHERE {where}{key_filter} "
                    f"ORDER BY a.trial_user_attribute_id", {**args, **key_args}):
                if trial_id in trials:
                    trials[trial_id].user_attrs[key] = json.loads(value_json)
        if params:
            for trial_id, name, value, dist in run(
                    f"SELECT p.trial_id, p.param_name, p.param_value, p.distribution_json FROM trial_params p "
                    f"JOIN trials t ON t.trial_id = p.trial_id WHERE {where} ORDER BY p.param_id", args):
                if trial_id in trials:
                    trials[trial_id].stored_params.append((name, value, dist))
        return list(trials.values())
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # json.JSONDecodeError is a ValueError
        from sweeps.stores.secrets import display

        reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise StoreError(f"Optuna storage {display(url)}: study {study_name!r} holds a row this reader cannot read "
                         f"({reason}); the store was damaged or written by something else: restore it from a copy") from None

