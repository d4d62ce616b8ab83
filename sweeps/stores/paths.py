"""Where sweeps live on this machine, and the file of an SQLite URL (kept import-light for the CLI)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

ROOT_ENV = "SPARSE_SWEEPS_ROOT"
DEFAULT_ROOT = "sweeps-data"  # relative to the working folder


def choose_root(command_line: str | None = None, spec: str | None = None,
                environ: Mapping[str, str] | None = None) -> str:
    """Where a sweep's stores live: the one rule of every command (`run`, `submit`, `resume`,
    `confirm` and the commands that read a sweep). The first that is set wins:

    1. the command line's ``--root``;
    2. the spec's own ``stores.root`` (a saved spec holds the root its sweep ran with);
    3. ``$SPARSE_SWEEPS_ROOT`` of the machine the sweep runs on (``environ``; for `sweeps submit`
       that is the head's, never the submitting machine's);
    4. ``./sweeps-data`` in the working folder (a submitted sweep's is the head's home folder).
    """
    env = os.environ if environ is None else environ
    return command_line or spec or env.get(ROOT_ENV) or DEFAULT_ROOT


def default_root() -> str:
    """The root when neither a command line nor a spec names one (`choose_root`)."""
    return choose_root()


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///FILE`` URL (relative or absolute), None for anything else (an
    in-memory database included)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)
