"""Getting a dataset where a cluster reads it: `stage` copies a checked dataset to a shared folder
or an object store (through fsspec: ``s3://`` needs s3fs, ``gs://`` gcsfs, neither installed by
default), `fetch` downloads it from its public sources, resuming a cut download (HTTP Range), and
checks every file against its pinned checksum before it is put in place.

Both write the ``SHA256SUMS`` manifest of what they put in the destination, so `verify` checks the
copy there (and a trial's node finds every file it needs).
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping

from sweeps.data.catalog import MANIFEST, DatasetFiles, dataset_files
from sweeps.data.check import (Verified, data_root, dataset_paths, problem, read_manifest, sha256_of, verify)
from sweeps.errors import DataError

__all__ = ["stage", "fetch", "open_destination", "EXTRAS"]

log = logging.getLogger(__name__)

# fsspec protocol -> the package that implements it (not installed with the project).
EXTRAS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
TIMEOUT_S = 60
_CHUNK = 1 << 20


# -- stage ----------------------------------------------------------------------------------------

def open_destination(dest: str):
    """(fsspec file system, root path in it) for a folder or a URI; a missing optional file-system
    package is one line naming it."""
    import fsspec

    protocol = dest.split("://", 1)[0] if "://" in dest else "file"
    try:
        fs, path = fsspec.core.url_to_fs(dest)
    except ImportError:
        package = EXTRAS.get(protocol, f"the fsspec implementation of {protocol}://")
        raise DataError(f"{dest}: staging to {protocol}:// needs the {package} package, which is not installed; "
                        f"install it (pip install {package}) or stage to a folder every node mounts") from None
    except ValueError as e:  # an unknown protocol
        raise DataError(f"{dest}: {e}; give a folder or a URI fsspec knows (s3://, gs://, ...)") from None
    return fs, path.rstrip("/") or "/"


def _checked(dataset: str, root: Path) -> Verified:
    result = verify(dataset, root)
    if (line := problem(result)) is not None:
        raise DataError(f"cannot stage: {line}")
    return result


def stage(dataset: str, dest: str, root: str | os.PathLike | None = None,
          say: Callable[[str], None] = log.info) -> list[str]:
    """Copy ``dataset`` (checked first) from the data root to ``dest``, a folder or an fsspec URI,
    in the data root's layout, with a ``SHA256SUMS`` manifest; files already there with the same
    checksum in its manifest and the same size are left. Returns the paths copied."""
    base = data_root(root)
    entry = dataset_files(dataset)
    _checked(dataset, base)
    fs, target = open_destination(dest)
    manifest_path = f"{target}/{MANIFEST}"
    existing = read_manifest(fs.cat_file(manifest_path).decode()) if fs.exists(manifest_path) else {}
    paths = dataset_paths(entry, base)
    sums, copied = {}, []
    for rel in paths:
        src = base / rel
        digest = sha256_of(src)
        sums[rel] = digest
        remote = f"{target}/{rel}"
        if existing.get(rel) == digest and fs.exists(remote) and fs.size(remote) == src.stat().st_size:
            continue
        fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(src), remote)
        copied.append(rel)
    merged = {**existing, **sums}
    fs.pipe_file(manifest_path, "".join(f"{h}  {p}\n" for p, h in sorted(merged.items())).encode())
    say(f"staged {entry.title} to {dest}: {len(copied)} files copied, {len(paths) - len(copied)} already there")
    return copied


# -- fetch ----------------------------------------------------------------------------------------

def _download(url: str, target: Path, say: Callable[[str], None]) -> None:
    """Download ``url`` to ``target``, resuming ``target``.part where a cut download left it (HTTP
    Range; a server that ignores the range sends the whole file again, which replaces the part)."""
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (the catalog's or the user's URL)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is whole already
            part.replace(target)
            return
        raise
    with response:
        resumed = response.status == 206
        if have and resumed:
            say(f"resuming {target.name} at {have:,} bytes")
        with open(part, "ab" if resumed else "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    part.replace(target)


def _fetch_checked(urls: list[str], target: Path, sha256: str | None, say: Callable[[str], None]) -> None:
    """Download ``target`` from the first of ``urls`` that answers, then check it; a file that
    fails its checksum is removed (the next try starts afresh)."""
    errors = []
    for url in urls:
        try:
            _download(url, target, say)
        except (urllib.error.URLError, OSError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        if sha256 is not None and (got := sha256_of(target)) != sha256:
            target.unlink()
            errors.append(f"{url}: sha256 {got[:12]}... is not the pinned {sha256[:12]}...")
            continue
        return
    raise DataError(f"could not fetch {target.name} ({'; '.join(errors)}); check the network (or give --mirror) "
                    f"and run the command again: a cut download resumes")


def _write_manifest(base: Path, sums: Mapping[str, str]) -> None:
    path = base / MANIFEST
    merged = {**(read_manifest(path.read_text()) if path.is_file() else {}), **sums}
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text("".join(f"{h}  {p}\n" for p, h in sorted(merged.items())))
    tmp.replace(path)


def _urls(entry: DatasetFiles, name: str, mirror: str | None) -> list[str]:
    bases = [mirror] if mirror else list(entry.sources)
    return [b.rstrip("/") + "/" + name for b in bases]


def fetch(dataset: str, root: str | os.PathLike | None = None, mirror: str | None = None,
          checksums: Mapping[str, str] | None = None, say: Callable[[str], None] = log.info) -> Verified:
    """Download ``dataset`` into the data root from its public sources (or ``mirror``, a base URL
    holding the same file names) and check it. ``checksums`` ({file name: sha256}) replace the
    pinned ones (a mirror's own files) and give the checksum a source lacks (GSC's archive).
    Files already there and whole are not downloaded again."""
    entry, base = dataset_files(dataset), data_root(root)
    sums = dict(checksums or {})
    if entry.pinned:
        for f in entry.pinned:
            name = f.path.rsplit("/", 1)[1]
            want = sums.get(name, f.sha256)
            target = base / f.path
            if target.is_file() and sha256_of(target) == want:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            say(f"fetching {name}")
            _fetch_checked(_urls(entry, name, mirror), target, want, say)
        _write_manifest(base, {f.path: sums.get(f.path.rsplit("/", 1)[1], f.sha256) for f in entry.pinned})
        return Verified(dataset, base, checked=tuple(f.path for f in entry.pinned))  # each one checked above
    return _fetch_archive(entry, base, mirror, sums, say)


def _fetch_archive(entry: DatasetFiles, base: Path, mirror: str | None, sums: Mapping[str, str],
                   say: Callable[[str], None]) -> Verified:
    assert entry.archive is not None
    name = entry.archive.rsplit("/", 1)[1]
    folder = base / entry.folder
    want = sums.get(name, entry.archive_sha256)
    if want is None:
        say(f"{name}: no checksum is pinned for it (none is published with it); it is checked only if you give "
            f"one with --checksums")
    downloads = base / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / name
    if not archive.is_file():
        urls = [mirror.rstrip("/") + "/" + name] if mirror else [entry.archive]
        say(f"fetching {name}")
        _fetch_checked(urls, archive, want, say)
    elif want is not None and sha256_of(archive) != want:
        archive.unlink()
        raise DataError(f"{archive}: sha256 does not match the one given; it was removed, run the command again")
    tmp = folder.with_name(folder.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")  # no links out, no absolute paths
    if folder.exists():  # files of an earlier copy that the archive also holds are replaced
        shutil.copytree(tmp, folder, dirs_exist_ok=True)
        shutil.rmtree(tmp)
    else:
        tmp.replace(folder)
    files = [p for p in folder.rglob("*") if p.is_file()]
    _write_manifest(base, {str(p.relative_to(base)): sha256_of(p) for p in files})
    archive.unlink()
    if not any(downloads.iterdir()):
        downloads.rmdir()
    say(f"extracted {len(files)} files into {folder}")
    return verify(entry.name, base)
