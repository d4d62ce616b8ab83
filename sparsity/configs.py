"""Shared checks for the frozen config objects read from YAML or JSON at the edges."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

__all__ = ["check_known_keys", "field_names"]


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check_known_keys(where: str, data: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise ValueError naming the unknown keys of ``data`` and the known ones."""
    known = set(known)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
