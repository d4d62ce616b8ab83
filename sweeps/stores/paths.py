"""Where sweeps live on this machine (kept import-light for the CLI)."""

from __future__ import annotations

import os

ROOT_ENV = "SPARSE_SWEEPS_ROOT"


def default_root() -> str:
    return os.environ.get(ROOT_ENV, "sweeps-data")
