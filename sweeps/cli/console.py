"""Terminal output for the CLI: one rich console, logging through rich, tables of results."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

# Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("urllib3", "alembic", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def table(title: str, columns: list[str], rows: list[list[object]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="right" if c not in ("network", "layer", "name", "kind", "state") else "left")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t


TRACE_KEEP = 20  # trace files kept; older ones are removed


def trace_folder() -> Path:
    """Where the CLI writes the full trace of an unexpected error: $XDG_STATE_HOME/sparse-sweeps
    (default ~/.local/state/sparse-sweeps), readable by this user only."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "sparse-sweeps"


def save_trace(exc: BaseException, scrub) -> Path | None:
    """Write ``exc``'s traceback, passwords blanked by ``scrub``, to a new file only this user can
    read (mode 0600 in a 0700 folder); None when it cannot be written."""
    folder = trace_folder()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"sweeps {' '.join(sys.argv[1:])}\n")
            f.write(scrub("".join(traceback.format_exception(exc))))
        for old in sorted(folder.glob("error-*.log"))[:-TRACE_KEEP]:
            old.unlink(missing_ok=True)
        return path
    except OSError:
        return None
