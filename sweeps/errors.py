"""User-fixable errors of the service, all under `sparsity.errors.UserError`.

The CLI catches ``UserError`` and prints its one line with exit code 2 before anything is written.
"""

from __future__ import annotations

from typing import NoReturn

from sparsity.errors import UserError

__all__ = ["UserError", "SpecError", "SweepExistsError", "UnknownSweepError", "StoreError",
           "TrackingUnreachableError", "NoFinishedTrialsError", "TableError", "DataError", "spec_fail"]


class SpecError(UserError):
    """A sweep spec (YAML or preset) is invalid; the message names the key and the fix."""


def spec_fail(key: str, msg: str) -> NoReturn:
    """Refuse a spec: ``key`` is the setting at fault, ``msg`` what is wrong and the fix."""
    raise SpecError(f"{key}: {msg}")


class SweepExistsError(UserError):
    """A sweep of that name already exists: resume it or pick another name."""


class UnknownSweepError(UserError):
    """No sweep of that name in the stores."""


class StoreError(UserError):
    """A store (Optuna RDB, MLflow tracking, Ray storage) is unreachable or misconfigured, or does
    not hold what the sweep's saved spec says it should."""


class TrackingUnreachableError(StoreError, ConnectionError):
    """The MLflow tracking server does not answer; the message names the URI and the fix."""


class NoFinishedTrialsError(UserError):
    """A sweep has no finished trial yet, so there is no front to choose from."""


class TableError(UserError):
    """A replay table file is missing or does not follow the schema; the message says where."""


class DataError(UserError):
    """A dataset is missing, incomplete or corrupt where it is read (the data root of this machine or
    of a trial's node), or cannot be staged or fetched; the message names what and the fix."""
