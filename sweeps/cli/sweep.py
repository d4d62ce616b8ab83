"""`sweeps run`, `resume` and `confirm`: a sweep launched, continued, or given seed replicates
(`sweeps.run.service`). The spec and the stores are checked before Ray or MLflow load."""

from __future__ import annotations

import argparse
import dataclasses

from sweeps.cli.args import ADDRESS, NAME, ROOT, SPEC, Command, arg
from sweeps.cli.show import print_outcome


def cmd_run(args: argparse.Namespace) -> int:
    from sweeps.spec import load_spec

    # The spec is read and validated before anything heavy loads: a bad one answers in a moment.
    spec = load_spec(args.spec, stores_root=args.root)  # --root, the spec's, $SPARSE_SWEEPS_ROOT (choose_root)
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import run_sweep

    print_outcome(run_sweep(spec, address=args.address, progress=StudyProgress()))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import resume_sweep

    print_outcome(resume_sweep(args.name, root=args.root, address=args.address, progress=StudyProgress()))
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import confirm_sweep

    # An unknown sweep, or bad numbers, are refused before anything heavy loads (`confirm_sweep`).
    print_outcome(confirm_sweep(args.name, top=args.top, seeds=args.seeds, root=args.root, address=args.address,
                                progress=StudyProgress(), budget=args.budget))
    return 0


COMMANDS = (
    Command("run", "launch a sweep from a spec file or a preset (mnist-quick, mnist-paper, gsc-paper)", cmd_run, (
        SPEC, arg("--name", help="override the spec's name"), ADDRESS, ROOT)),
    Command("resume", "continue a stopped sweep without repeating finished trials", cmd_resume, (NAME, ADDRESS, ROOT)),
    Command("confirm", "add seed replicates: retrain the front's best configs and the baselines with more "
            "model seeds, so the front and `best` rest on intervals", cmd_confirm, (
                NAME, arg("--top", type=int, help="configs to confirm (default: the spec's confirm.top, else 4)"),
                arg("--seeds", type=int, help="model seeds added to each (default: the spec's confirm.seeds, else 3)"),
                arg("--budget", type=int, help="replicate trials in all: beyond the first round, later rounds add "
                    "seeds where the claims need them (default: the spec's confirm.budget, else the first round)"),
                ADDRESS, ROOT)),
)
