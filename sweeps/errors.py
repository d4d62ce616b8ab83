"""User-fixable errors of the service, all under `sparsity.errors.UserError`.

The CLI catches ``UserError`` and prints its one line with exit code 2 before anything is written.
"""

from __future__ import annotations

from sparsity.errors import UserError

__all__ = ["UserError", "SpecError", "SweepExistsError", "UnknownSweepError", "StoreError"]


class SpecError(UserError):
    """A sweep spec (YAML or preset) is invalid; the message names the key and the fix."""


class SweepExistsError(UserError):
    """A sweep of that name already exists: resume it or pick another name."""


class UnknownSweepError(UserError):
    """No sweep of that name in the stores."""


class StoreError(UserError):
    """A store (Optuna RDB, MLflow tracking, Ray storage) is unreachable or misconfigured."""
