"""What every command group shares: one `Command` row per command (its name, help, arguments and
the function that runs it), the arguments several commands take, and where `best`, `export` and
`report` write. Import-light: the parser is built before anything heavy loads."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

from sweeps.stores.paths import DEFAULT_ROOT, ROOT_ENV

__all__ = ["Arg", "arg", "Command", "NAME", "SPEC", "ROOT", "ADDRESS", "JOB_ADDRESS", "RULE", "OUT_DEFAULTS", "out_path"]

Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*flags: str, **kw: Any) -> Arg:
    return flags, kw


@dataclasses.dataclass(frozen=True)
class Command:
    """One command: ``run(args) -> exit code``; ``args``: its arguments (a tuple of Args: mutually exclusive)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    args: tuple[Arg | tuple[Arg, ...], ...] = ()
    epilog: str = ""  # said under the options (`sweeps best --help`: what a claim means)


NAME = arg("name")
SPEC = arg("spec", help="spec YAML file or preset name")
ROOT = arg("--root", default=None, help=f"sweeps folder; wins over the spec's stores.root (default: the spec's, "
                                         f"else ${ROOT_ENV}, else ./{DEFAULT_ROOT})")
ADDRESS = arg("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
JOB_ADDRESS = arg("--address", help="the head's Ray dashboard, e.g. http://127.0.0.1:8265 "
                                    "(default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)")
# How `best` and `export` choose a config from the front (`sweeps.results.best.choose`): the same options.
RULE = (arg("--min-accuracy", type=float, help="highest noise score among configs with val accuracy >= A"),
        arg("--rule", default="knee", choices=["knee"], help="knee: the best trade-off (default)"))

# Where `best`, `export`, `report`, `train` and `simulate` write without --out (None: no default:
# `export` requires --out, `simulate` then writes no file).
OUT_DEFAULTS: dict[str, str | None] = {"best": "{name}-best.yaml", "report": "{name}-report.html", "export": None,
                                       "train": "runs/train-{dataset}-{preset}-seed{seed}.json", "simulate": None}


def out_path(args: argparse.Namespace) -> Path | None:
    """Where `best`, `export`, `report`, `train` and `simulate` write (None: `simulate` writes no file)."""
    default = OUT_DEFAULTS[args.command]
    if args.out or default is None:
        return Path(args.out) if args.out else None
    return Path(default.format(**vars(args)))
