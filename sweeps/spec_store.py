"""Saved specs: the spec a sweep was launched with, kept at ROOT/specs/NAME.yaml.

The service writes it when a sweep starts (and when `confirm` adds a section); every later
command (`resume`, `status`, `best`, `export`, `report`, `dashboard`) finds the sweep's stores
through it. Import-light: no Ray, MLflow, Optuna or torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sweeps.errors import StoreError, UnknownSweepError, UserError
from sweeps.names import check_sweep_name
from sweeps.spec import SweepSpec, load_spec
from sweeps.stores.paths import ROOT_ENV, default_root

__all__ = ["spec_path", "save_spec", "saved_spec", "list_sweeps"]


def spec_path(root: str | Path, name: str) -> Path:
    """Where sweep ``name``'s spec is saved under ``root`` (the name checked first)."""
    return Path(root).expanduser() / "specs" / f"{check_sweep_name(name, 'sweep name')}.yaml"


def save_spec(spec: SweepSpec, root: str | Path) -> Path:
    """Write ``spec`` as sweep ``spec.name``'s saved spec under ``root``, its root written as ``..``:
    relative to the spec file, so the store can be copied or mounted elsewhere and still read right
    (`saved_spec`)."""
    path = spec_path(root, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    portable = dataclasses.replace(spec, stores=dataclasses.replace(spec.stores, root=".."))
    path.write_text(portable.to_yaml())
    return path


def saved_spec(name: str, root: str | None = None) -> SweepSpec:
    """The spec a sweep was launched with (its stores included). Its ``stores.root`` is the folder
    that holds its ``specs`` folder, where the sweep saved it: `save_spec` writes ``..``, read
    against the spec file's own folder; an older spec's root (relative to the folder it was
    launched from, or absolute) is read the same way. So a copied or mounted store reads its own
    files from any working folder, never the original's or an empty one."""
    root = root or default_root()
    path = spec_path(root, name)
    if not path.exists():
        known = list_sweeps(root)
        raise UnknownSweepError(f"no sweep named {name!r} under {Path(root).resolve()}; known sweeps: {known or 'none'} "
                                f"(use --root or ${ROOT_ENV} for another folder)")
    try:
        spec = load_spec(path)
    except StoreError:
        raise
    except (UserError, TypeError, ValueError, AttributeError, KeyError) as e:  # planted or damaged: one line
        reason = " ".join(str(e).split()).removeprefix(f"spec {path}: ")[:300]
        raise StoreError(f"saved spec {path}: {reason}; the sweep's store was damaged or written by something else: "
                         f"restore the file from a copy") from None
    own = path.resolve().parent.parent  # the store root this spec file lives in
    return dataclasses.replace(spec, stores=dataclasses.replace(spec.stores, root=str(own)))


def list_sweeps(root: str | None = None) -> list[str]:
    folder = Path(root or default_root()).expanduser() / "specs"
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []
