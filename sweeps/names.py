"""Names taken from a spec or the command line, checked before they name a file, a run or a model.

A sweep's name becomes a file name (ROOT/specs/NAME.yaml), an MLflow experiment and a Ray job, so
it is held to one safe shape wherever it comes from: ``sweeps status ../../x`` is refused, never
read. Registered model names and aliases are checked against what the MLflow registry accepts.
Import-light: the CLI checks its arguments before anything heavy loads.
"""

from __future__ import annotations

import re

from sweeps.errors import SpecError

__all__ = ["check_sweep_name", "check_model_name", "check_alias"]

_SWEEP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def check_sweep_name(name: object, where: str = "name") -> str:
    if not isinstance(name, str) or not _SWEEP.fullmatch(name):
        raise SpecError(f"{where}: {name!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                        f"digit (it names runs and folders)")
    return name


def check_model_name(name: str, where: str = "--register") -> str:
    if not _MODEL.fullmatch(name):
        raise SpecError(f"{where}: {name!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
                        f"digit (a registered model's name)")
    return name


def check_alias(alias: str, where: str = "--alias") -> str:
    if not _ALIAS.fullmatch(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise SpecError(f"{where}: {alias!r} must be 1-64 letters, digits, '_' or '-', not 'latest' nor a version "
                        f"like 'v3' (MLflow reserves those), e.g. champion")
    return alias
