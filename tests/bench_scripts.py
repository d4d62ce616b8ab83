"""Load a benchmark of `benchmarks/` for tests that check its figures: by the rule the benchmarks
follow themselves, as a module of the `benchmarks` package (``python -m benchmarks.NAME``)."""

from __future__ import annotations

import importlib
from types import ModuleType


def load(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")
