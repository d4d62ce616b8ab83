"""The `sweeps` command line: the parser and commands, the console and the live progress line.
Each command imports only what it uses."""

from sweeps.cli.commands import build_parser, main  # noqa: F401
