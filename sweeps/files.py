"""Files a command writes at a path it was given (``--out``): created, never clobbered, never followed.

A new file is opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing file is refused unless
``force``, and a symbolic link (a dangling one included) is never followed, with or without
``force``: writing through a planted link would create or replace whatever it points at. A folder
(`sweeps export`) is made with ``mkdir``, which never follows a link either; with ``force`` an
existing folder is written into. Every refusal is one line (`UserError`, exit 2), and `check_new`
says it before any work starts.

Import-light: the CLI checks its paths before anything heavy loads.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from sparsity.errors import UserError

__all__ = ["check_new", "write_new", "new_folder"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def _refuse(what: str, path: Path, why: str) -> UserError:
    return UserError(f"{what} {path}: {why}")


def check_new(path: str | Path, force: bool = False, what: str = "--out", folder: bool = False) -> Path:
    """Refuse (one line) a path the command would not write: a symbolic link (never followed); an
    existing file unless ``force``; for a ``folder``, an existing file, or a folder that holds
    files unless ``force``. Nothing is created."""
    path = Path(path)
    if _is_link(path):
        raise _refuse(what, path, "is a symbolic link, which is never followed; give the path of a new file "
                                  "(or of the link's target)")
    if folder:
        if path.exists() and not path.is_dir():
            raise _refuse(what, path, "already exists and is not a folder; choose a new folder path")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise _refuse(what, path, "already exists and holds files; choose another path, or add --force to "
                                      "write into it")
        return path
    if path.is_dir():
        raise _refuse(what, path, "is a folder; give a file path")
    if path.exists() and not force:
        raise _refuse(what, path, "already exists; choose another path, or add --force to overwrite it")
    return path


def write_new(path: str | Path, data: str | bytes, force: bool = False, what: str = "--out",
              mode: int = 0o644) -> Path:
    """Write ``data`` to a new file at ``path`` (its parent folders made), refusing what `check_new`
    refuses; with ``force`` an existing regular file is replaced. Never follows a symbolic link."""
    path = check_new(path, force, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:  # made between the check and the open
        raise _refuse(what, path, "already exists; choose another path, or add --force to overwrite it") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refuse(what, path, "is a symbolic link, which is never followed; give the path of a new file") from None
        raise _refuse(what, path, f"cannot be written ({e.strerror}); choose a writable path") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def new_folder(path: str | Path, force: bool = False, what: str = "--out") -> Path:
    """A folder to write into: made new (``mkdir`` never follows a link), or, with ``force``, an
    existing folder (not a link). Refuses what `check_new` refuses for a folder."""
    path = check_new(path, force, what, folder=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        if _is_link(path) or not path.is_dir():
            raise _refuse(what, path, "appeared as a file or a link while writing; choose a new folder path") from None
        if any(path.iterdir()) and not force:
            raise _refuse(what, path, "already exists and holds files; choose another path, or add --force to "
                                      "write into it") from None
    except OSError as e:
        raise _refuse(what, path, f"cannot be made ({e.strerror}); choose a writable path") from None
    return path
