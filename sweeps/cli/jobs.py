"""`sweeps submit`, `jobs`, `logs` and `stop`: sweeps as Ray jobs on a cluster (they outlive this shell)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sweeps.cli.args import JOB_ADDRESS, NAME, SPEC, Command, arg
from sweeps.cli.console import console, shown, table, text
from sweeps.stores.paths import DEFAULT_ROOT, ROOT_ENV


def _write(output: str) -> None:
    """A job's output as text: terminal escapes and other control characters dropped."""
    from sweeps.cli.console import plain

    sys.stdout.write(plain(output, lines=True))
    sys.stdout.flush()


def cmd_submit(args: argparse.Namespace) -> int:
    from sweeps.run.jobs import job_name, logs, submit
    from sweeps.spec import load_spec

    spec = load_spec(args.spec, environ={})  # the head's $SPARSE_SWEEPS_ROOT applies there, not this machine's
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    submit(spec, args.address, root=args.root)
    console.print(f"submitted sweep [bold]{spec.name}[/] as Ray job {job_name(spec.name)}; it runs on the cluster "
                  f"whatever happens to this shell")
    if not args.follow:
        console.print(f"follow it: [bold]sweeps logs {spec.name} --follow[/]; stop it: [bold]sweeps stop {spec.name}[/]")
        return 0
    try:
        state = logs(args.address, spec.name, follow=True, write=_write)
    except KeyboardInterrupt:  # stops following only: the job goes on
        console.print(f"stopped following; the sweep goes on: sweeps logs {spec.name} --follow")
        return 130
    console.print(text(f"job {job_name(spec.name)}: {state}"))
    return 0 if state == "SUCCEEDED" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    import datetime

    from sweeps.run.jobs import jobs

    def when(ms):
        return "" if not ms else datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")

    rows = [[j["sweep"], j["status"], when(j["start"]), when(j["end"]), j["message"][:60]] for j in jobs(args.address)]
    console.print(table("sweep jobs", ["name", "state", "started", "ended", "message"], rows))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from sweeps.run.jobs import logs

    try:
        state = logs(args.address, args.name, follow=args.follow, write=_write)
    except KeyboardInterrupt:
        return 130
    if args.follow:
        console.print(text(f"job state: {state}"))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from sweeps.run.jobs import job_name, stop

    state = stop(args.address, args.name)
    console.print(f"job {job_name(args.name)}: {shown(state)}; continue it with `sweeps resume {args.name}` on the head")
    return 0 if state in ("STOPPED", "SUCCEEDED", "FAILED") else 1


COMMANDS = (
    Command("submit", "run a sweep on a Ray cluster as a Ray job (it outlives this shell)", cmd_submit, (
        SPEC, arg("--name", help="override the spec's name"),
        arg("--root", help=f"sweeps folder on the head, an absolute path (default: the spec's stores.root, else "
                           f"the head's ${ROOT_ENV}, else ~/{DEFAULT_ROOT} there)"),
        arg("--follow", action="store_true", help="print the job's output until it ends"), JOB_ADDRESS)),
    Command("jobs", "the sweeps submitted to a Ray cluster and their state", cmd_jobs, (JOB_ADDRESS,)),
    Command("logs", "a submitted sweep's output", cmd_logs, (
        NAME, arg("--follow", action="store_true", help="keep printing until the job ends"), JOB_ADDRESS)),
    Command("stop", "stop a submitted sweep cleanly (its running trials marked; resume continues)", cmd_stop,
            (NAME, JOB_ADDRESS)),
)
