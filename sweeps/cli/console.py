"""Terminal output for the CLI: one rich console, logging through rich, tables of results.

Text read from a store (trial attributes, parameter names, job messages and logs, error messages
quoting a file) is printed as text: `plain` drops control characters (terminal escapes such as
``ESC]0;`` or ``ESC[2J``, bidirectional overrides), and `text` and `table` hand rich a `Text`, so
no ``[markup]`` in it is interpreted. The CLI's own wording keeps its markup.
"""

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
from rich.text import Text

# Piped output (CI logs, files) gets a wide fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)


class _PlainFilter(logging.Filter):
    """Log lines as text: a message quoting a store loses its control characters (`plain`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = plain(message, lines=True)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def configure_logging(verbose: bool = False) -> None:
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(_PlainFilter())
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[handler],
        force=True,
    )
    for noisy in ("urllib3", "alembic", "matplotlib", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# C0 and C1 control characters (ESC, BEL, CSI, OSC ...) and the bidirectional controls that can
# make a line read otherwise than it is; newline and tab are kept where text may span lines.
_CONTROLS = {c: None for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x200E, 0x200F,
                                *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
_CONTROLS_KEEP_LINES = {c: v for c, v in _CONTROLS.items() if c not in (0x09, 0x0A)}


def plain(value: object, lines: bool = False) -> str:
    """``value`` as printable text: control characters dropped (``lines``: newlines and tabs kept)."""
    return str(value).translate(_CONTROLS_KEEP_LINES if lines else _CONTROLS)


def text(value: object, style: str = "", lines: bool = False) -> Text:
    """``value`` as rich `Text`: control characters dropped (`plain`), no markup interpreted."""
    return Text(plain(value, lines), style=style)


def shown(value: object, lines: bool = False) -> str:
    """``value`` to put inside the CLI's own markup: control characters dropped, its brackets escaped."""
    from rich.markup import escape

    return escape(plain(value, lines))


def table(title: str, columns: list[str], rows: list[list[object]]) -> Table:
    """A table whose title and cells are printed as text (`text`): what a store holds is never markup."""
    t = Table(title=text(title), title_justify="left")
    for c in columns:
        t.add_column(text(c), justify="right" if c not in ("network", "layer", "name", "kind", "state") else "left")
    for r in rows:
        t.add_row(*(text("" if v is None else v) for v in r))
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
            f.write(scrub(f"sweeps {' '.join(sys.argv[1:])}") + "\n")  # --address http://user:PASSWORD@... too
            f.write(scrub("".join(traceback.format_exception(exc))))
        for old in sorted(folder.glob("error-*.log"))[:-TRACE_KEEP]:
            old.unlink(missing_ok=True)
        return path
    except OSError:
        return None
