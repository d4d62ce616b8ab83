"""Saved specs: the spec a sweep was launched with, kept at ROOT/specs/NAME.yaml.

The service writes it when a sweep starts (and when `confirm` adds a section); every later
command (`resume`, `status`, `best`, `export`, `report`, `dashboard`) finds the sweep's stores
through it. Import-light: no Ray, MLflow, Optuna or torch.
"""

from __future__ import annotations

from pathlib import Path

from sweeps.errors import UnknownSweepError
from sweeps.names import check_sweep_name
from sweeps.spec import SweepSpec, load_spec
from sweeps.stores.paths import ROOT_ENV, default_root

__all__ = ["spec_path", "save_spec", "saved_spec", "list_sweeps"]


def spec_path(root: str | Path, name: str) -> Path:
    """Where sweep ``name``'s spec is saved under ``root`` (the name checked first)."""
    return Path(root).expanduser() / "specs" / f"{check_sweep_name(name, 'sweep name')}.yaml"


def save_spec(spec: SweepSpec, root: str | Path) -> Path:
    """Write ``spec`` as sweep ``spec.name``'s saved spec under ``root``."""
    path = spec_path(root, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_yaml())
    return path


def saved_spec(name: str, root: str | None = None) -> SweepSpec:
    """The spec a sweep was launched with (its stores included)."""
    root = root or default_root()
    path = spec_path(root, name)
    if not path.exists():
        known = list_sweeps(root)
        raise UnknownSweepError(f"no sweep named {name!r} under {Path(root).resolve()}; known sweeps: {known or 'none'} "
                                f"(use --root or ${ROOT_ENV} for another folder)")
    return load_spec(path)


def list_sweeps(root: str | None = None) -> list[str]:
    folder = Path(root or default_root()).expanduser() / "specs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []
