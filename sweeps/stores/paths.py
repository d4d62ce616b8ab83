"""Where sweeps live on this machine, and the file of an SQLite URL (kept import-light for the CLI)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "SPARSE_SWEEPS_ROOT"
DEFAULT_ROOT = "sweeps-data"  # relative to the working folder


def default_root() -> str:
    return os.environ.get(ROOT_ENV, DEFAULT_ROOT)


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE`` URL (relative or absolute), None for anything else (an
    in-memory database included)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)
