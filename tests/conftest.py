"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data root from $SPARSE_SWEEPS_DATA; fails (not skips) when it is unset or missing."""
    value = os.environ.get("SPARSE_SWEEPS_DATA")
    if not value:
        pytest.fail("set SPARSE_SWEEPS_DATA to the data root (the folder holding MNIST/ and SpeechCommands/)")
    path = Path(value).expanduser()
    if not path.is_dir():
        pytest.fail(f"SPARSE_SWEEPS_DATA={value!r} is not a folder; point it at the data root")
    return path
