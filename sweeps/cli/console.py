"""Terminal output for the CLI: one rich console, logging through rich, tables of results."""

from __future__ import annotations

import logging
import sys

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
