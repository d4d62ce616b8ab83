"""Is a dataset complete under a data root? `verify` checks checksums (what `sweeps data verify`
runs); `missing` only looks for the files (what a trial runs on its node before it trains, in
milliseconds); `check_on_node` turns what is missing into the one line a failed trial reports.

Import-light: hashlib and the file system only.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sweeps.data.catalog import DATASETS, MANIFEST, DatasetFiles, PinnedFile, dataset_files
from sweeps.errors import DataError

__all__ = ["Verified", "verify", "missing", "present_datasets", "data_root", "read_manifest", "sha256_of",
           "dataset_paths", "node_name", "check_on_node", "fix_hint", "DATA_ENV"]

DATA_ENV = "SPARSE_SWEEPS_DATA"
_CHUNK = 1 << 20
_SHOWN = 3  # files named in a one-line message; the rest counted


def data_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else $SPARSE_SWEEPS_DATA, else ./data (as the loaders read it, `sparsity.data.data_root`)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path("data")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(text: str) -> dict[str, str]:
    """``sha256sum`` lines (``HEX  PATH`` or ``HEX *PATH``) as {path: hex}; blank and # lines skipped."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, path = line.partition(" ")
        path = path.strip().lstrip("*")
        if len(digest) == 64 and path:
            out[path] = digest.lower()
    return out


def _manifest(root: Path) -> dict[str, str]:
    path = root / MANIFEST
    return read_manifest(path.read_text()) if path.is_file() else {}


@dataclass(frozen=True)
class Verified:
    """What `verify` found for one dataset under one root."""

    dataset: str
    root: Path
    checked: tuple[str, ...] = ()  # files whose checksum matched
    missing: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = field(default=())  # present, but no checksum known for them

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def _pinned_set(root: Path, files: tuple[PinnedFile, ...]) -> tuple[list[str], list[str], list[str]]:
    checked, missing, corrupt = [], [], []
    for f in files:
        path = root / f.path
        if not path.is_file():
            missing.append(f.path)
        elif path.stat().st_size != f.size or sha256_of(path) != f.sha256:
            corrupt.append(f.path)
        else:
            checked.append(f.path)
    return checked, missing, corrupt


def _folder_files(root: Path, entry: DatasetFiles) -> list[str]:
    """Every file under the dataset's folder, relative to the root, sorted."""
    folder = root / entry.folder
    return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())


def dataset_paths(entry: DatasetFiles, root: Path) -> list[str]:
    """The files that make up ``entry`` under ``root`` (relative paths): its complete pinned set,
    or the files of its folder."""
    if entry.pinned:
        for files in (entry.pinned, entry.alternatives):
            if files and all((root / f.path).is_file() for f in files):
                return [f.path for f in files]
        return [f.path for f in entry.pinned]
    return _folder_files(root, entry)


def verify(dataset: str, root: str | os.PathLike | None = None) -> Verified:
    """Check ``dataset`` under the data root by checksum: the pinned files (or the complete
    alternative set), else the files the root's manifest lists under the dataset's folder."""
    entry, base = dataset_files(dataset), data_root(root)
    if entry.pinned:
        result = _pinned_set(base, entry.pinned)
        if result[1] and entry.alternatives and all((base / f.path).is_file() for f in entry.alternatives):
            result = _pinned_set(base, entry.alternatives)  # the extracted copies do as well
        checked, gone, corrupt = result
        return Verified(dataset, base, tuple(checked), tuple(gone), tuple(corrupt))
    folder = base / entry.folder
    if not folder.is_dir():
        return Verified(dataset, base, missing=(entry.folder + "/",))
    gone = [f"{entry.folder}/{name}" for name in entry.required if not (folder / name).is_file()]
    sums = {p: h for p, h in _manifest(base).items() if p.startswith(entry.folder + "/")}
    checked, corrupt = [], []
    for path, digest in sorted(sums.items()):
        full = base / path
        if not full.is_file():
            gone.append(path)
        elif sha256_of(full) != digest:
            corrupt.append(path)
        else:
            checked.append(path)
    listed = set(sums)
    unchecked = [p for p in _folder_files(base, entry) if p not in listed]
    if not any(p.endswith(".wav") for p in checked + unchecked):
        gone.append(f"{entry.folder}/<word>/*.wav")
    return Verified(dataset, base, tuple(checked), tuple(gone), tuple(corrupt), tuple(unchecked))


def missing(dataset: str, root: str | os.PathLike | None = None) -> list[str]:
    """What ``dataset`` lacks under the data root, by looking only (no checksum): a trial's check."""
    entry, base = dataset_files(dataset), data_root(root)
    if entry.pinned:
        sets = [s for s in (entry.pinned, entry.alternatives) if s]
        gaps = [[f.path for f in s if not (base / f.path).is_file()] for s in sets]
        return min(gaps, key=len)
    folder = base / entry.folder
    if not folder.is_dir():
        return [entry.folder + "/"]
    return [f"{entry.folder}/{name}" for name in entry.required if not (folder / name).is_file()]


def present_datasets(root: str | os.PathLike | None = None) -> list[str]:
    """The datasets of which something is under the root (their folder exists)."""
    base = data_root(root)
    return [name for name, e in DATASETS.items() if (base / e.folder).is_dir()]


def _some(paths: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def fix_hint(dataset: str) -> str:
    return (f"fetch it there (`sweeps data fetch {dataset} --data DIR`), or copy it from a machine that has it "
            f"(`sweeps data stage {dataset} DEST`) and point ${DATA_ENV} (or --data) at that folder")


def problem(result: Verified) -> str | None:
    """The one line that says what ``result`` lacks and the fix; None when it is complete."""
    if result.ok:
        return None
    parts = []
    if result.missing:
        parts.append(f"missing {_some(result.missing)}")
    if result.corrupt:
        parts.append(f"checksum mismatch in {_some(result.corrupt)}")
    title = DATASETS[result.dataset].title
    return f"{title} under {result.root.absolute()}: {'; '.join(parts)}; {fix_hint(result.dataset)}"


def node_name(address: str | None = None) -> str:
    """This machine as a person finds it in a cluster: its host name, and ``address`` (its cluster
    address) when given."""
    import socket

    host = socket.gethostname()
    return f"{host} ({address})" if address else host


def check_on_node(dataset: str, root: str | os.PathLike | None = None, address: str | None = None) -> None:
    """Raise `DataError` (one line: this node, what is missing, the fix) when ``dataset`` is not
    under the data root on this machine. Looks for the files only, so it costs milliseconds."""
    gone = missing(dataset, root)
    if gone:
        base = data_root(root).absolute()
        raise DataError(
            f"{DATASETS[dataset].title} is not on node {node_name(address)}: {base} lacks {_some(gone)}; every node "
            f"needs the data: stage it to a folder all nodes mount (`sweeps data stage {dataset} DEST`) and set "
            f"${DATA_ENV}=DEST for the sweep, or fetch it on each node (`sweeps data fetch {dataset}`)"
        )
