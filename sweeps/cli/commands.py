"""The `sweeps` command line: the table of commands, the parser built from it, and `main`.

Each command group lives in its own module and lists its commands as `sweeps.cli.args.Command`
rows (name, help, arguments, the function that runs it); `GROUPS` below is the one place a group
is registered. `main` dispatches through that table: ``sweeps NAME`` runs ``RUNS[NAME]``.

Commands import what they use inside their bodies: `sweeps run BAD.yaml`, `status`, `list` and
`best` import neither Ray, MLflow nor torch (tests/test_cli_imports.py); Ray and MLflow load only
once a sweep is launched, resumed, exported, registered or browsed. Errors a user can fix (bad
spec, missing dataset, unknown preset) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from sparsity.errors import UserError

from sweeps.cli import jobs, library, results, simulate, sweep
from sweeps.cli.args import OUT_DEFAULTS, Command, out_path
from sweeps.cli.console import configure_logging, console, shown

__all__ = ["GROUPS", "COMMANDS", "RUNS", "build_parser", "main"]

log = logging.getLogger("sweeps")

# The command groups, in the order `sweeps --help` lists them: one module each.
GROUPS = (library, sweep, results, simulate, jobs)
COMMANDS: tuple[Command, ...] = tuple(c for group in GROUPS for c in group.COMMANDS)
# What runs each command (tests may swap an entry).
RUNS: dict[str, Callable[[argparse.Namespace], int]] = {c.name: c.run for c in COMMANDS}
assert len(RUNS) == len(COMMANDS), "two commands share a name"
# `sweeps data verify|stage|fetch` is a group with subcommands of its own (sweeps.cli.data): its
# parser names the function of each.
RUNS["data"] = lambda args: args.func(args)


def check_args(args: argparse.Namespace) -> None:
    """Names and output paths from the command line, refused in one line before anything loads:
    a sweep name names files (``sweeps status ../../x`` must not read outside the root), a model
    name and alias the registry, and an existing output is not overwritten without --force."""
    from sweeps.names import check_alias, check_model_name, check_sweep_name

    name = getattr(args, "name", None)
    if name is not None:
        check_sweep_name(name, "--name" if args.command in ("run", "submit") else "NAME")
    if getattr(args, "register", None):
        check_model_name(args.register)
        check_alias(args.alias)
    if args.command in OUT_DEFAULTS and (out := out_path(args)) is not None:
        from sweeps.files import check_new

        check_new(out, args.force, folder=args.command == "export")  # a link is never followed, a file never clobbered
        args.out = str(out)  # the default filled in: the command writes where this checked


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweeps", description="Sweeps over sparse networks (k-winners, sparse weights).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sp = sub.add_parser(command.name, help=command.help, description=command.help, epilog=command.epilog or None,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        for arg in command.args:
            if isinstance(arg[1], dict):
                sp.add_argument(*arg[0], **arg[1])
            else:  # a group of Args: mutually exclusive
                group = sp.add_mutually_exclusive_group()
                for flags, kw in arg:
                    group.add_argument(*flags, **kw)
    from sweeps.cli.data import add_parser as add_data_parser

    add_data_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from sweeps.stores.secrets import install_log_scrubber, scrub

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    install_log_scrubber()  # no store password in any log line
    from sweeps.shutdown import stop_on_signals

    try:
        check_args(args)
        with stop_on_signals():  # SIGTERM and SIGHUP stop a command as Ctrl-C does: what it started, it stops
            return RUNS[args.command](args)
    except (UserError, ValueError, FileNotFoundError) as e:
        console.print(f"[bold red]error:[/] {shown(scrub(str(e)), lines=True)}", soft_wrap=True)  # may quote a store
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except Exception as e:  # not foreseen: one line (passwords blanked), the trace in a file of the user's own
        from sweeps.cli.console import save_trace

        path = save_trace(e, scrub)
        where = f"the full trace is in {path}" if path else "rerun with -v for details"
        summary = " ".join(f"{type(e).__name__}: {e}".split())
        console.print(f"[bold red]error:[/] {shown(scrub(summary)[:300])}; {shown(where)} (a bug? report it with "
                      f"that file)", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
