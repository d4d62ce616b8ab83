"""`sweeps status`, `list`, `best`, `export`, `report` and `dashboard`: a sweep read back.

Each opens one `sweeps.results.read.SweepReader` (the stores resolved once, the trials read once)
and shows what it holds. `best` and `export` choose through the same path
(`sweeps.results.best.pick`): the same rule options, the same attributes read, the same intervals.
`status`, `list` and `best` import neither Ray, MLflow, torch nor Optuna."""

from __future__ import annotations

import argparse

from pathlib import Path

from sweeps.cli.args import NAME, ROOT, RULE, Command, arg
from sweeps.cli.console import console, shown, table, text
from sweeps.cli.show import estimate_cell, front_table, print_front_note
from sweeps.errors import UnknownSweepError


def cmd_status(args: argparse.Namespace) -> int:
    from sweeps.results.read import ROW_ATTRS, SweepReader

    reader = SweepReader.open(args.name, args.root, attrs=ROW_ATTRS)  # what the rows show
    spec, trials, front = reader.spec, reader.trials, reader.front
    shown = trials if args.all or len(trials) <= args.last else trials[-args.last:]
    title = f"trials of {spec.name} ({len(trials)}/{spec.total_trials})"
    if len(shown) < len(trials):
        title += f", the last {len(shown)} (--all for every one)"
    console.print(front_table(title, shown))
    counts = reader.counts
    console.print(", ".join(f"{n} {s.lower()}" for s, n in counts.items()))
    console.print(front_table("Pareto front (validation accuracy vs noise score)", front))
    print_front_note(front, spec.name)
    if reader.claims is not None:
        console.print(f"claims of the knee, trial #{reader.knee} (as `sweeps best` makes them):")
        for line in reader.claims.lines:
            console.print(text("  " + line), soft_wrap=True)  # built from what the store holds: text, not markup
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from sweeps.results.read import sweep_counts
    from sweeps.spec_store import list_sweeps, saved_spec

    rows = []
    for name in list_sweeps(args.root):
        spec = saved_spec(name, args.root)
        done, front = sweep_counts(spec)
        rows.append([name, spec.dataset.name, spec.network.name, f"{done}/{spec.total_trials}", front])
    console.print(table("sweeps", ["name", "dataset", "network", "complete", "pareto"], rows))
    return 0


def _comparison(choice, doc: dict) -> None:
    """The chosen config's figures and its claims against the baselines: what `best` and `export` print."""
    src = doc["source"]
    row = {"val_accuracy": src["val_accuracy"], "val_noise_score": src["val_noise_score"], "estimates": src["estimates"]}
    console.print(f"trial #{choice.number} ({choice.rule}): val acc {estimate_cell(row, 'val_accuracy', 100, '.2f')}%, "
                  f"val noise score {estimate_cell(row, 'val_noise_score', 1, ',.0f')}")
    for line in src["claims"]:
        console.print(text(line), soft_wrap=True)  # built from what the store holds: text, not markup


def cmd_best(args: argparse.Namespace) -> int:
    from sweeps.results.best import pick, write_best
    from sweeps.results.read import SweepReader

    reader = SweepReader.open(args.name, args.root)  # values and the record's attributes; the chosen one in full
    choice, doc = pick(reader, min_accuracy=args.min_accuracy, rule=args.rule)
    version, spec = None, reader.spec
    if args.register:  # first: a model the safe loader refuses leaves nothing written, and one line
        from sweeps.results.deploy import register

        version = register(spec, choice.number, args.register, doc, alias=args.alias)
    _comparison(choice, doc)
    console.print(f"wrote {write_best(doc, Path(args.out), force=args.force)}")
    if version is not None:
        console.print(f"registered {args.register} version {version.version} as "
                      f"[bold]models:/{args.register}@{args.alias}[/] (tracking {shown(spec.stores.mlflow_tracking_uri)})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sweeps.results.best import dense_reference, pick
    from sweeps.results.read import SweepReader

    reader = SweepReader.open(args.name, args.root)
    choice, doc = pick(reader, min_accuracy=args.min_accuracy, rule=args.rule)
    from sweeps.results.deploy import export
    from sweeps.search.study import quiet_optuna

    import os

    from sweeps.files import new_folder

    quiet_optuna()
    made = not os.path.lexists(args.out)
    folder = new_folder(Path(args.out), force=args.force)  # new (never a link), or --force into an existing one
    formats = ("safetensors", *(args.format or ()))
    try:
        out = export(reader.spec, choice.number, doc, folder, dense_reference(choice.configs), formats=formats)
    except BaseException:  # refused (a planted model) or stopped: the folder made here goes with it
        if made:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
        raise
    _comparison(choice, doc)  # once the model is out: a refusal stays one line
    console.print(f"exported trial #{choice.number} of {reader.spec.name} to {out}: "
                  f"{', '.join(sorted(p.name for p in out.iterdir()))}", markup=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sweeps.replay.reference import random_reference
    from sweeps.results.read import SweepReader, report_html
    from sweeps.search.study import quiet_optuna

    quiet_optuna()
    reader = SweepReader.open(args.name, args.root, attrs=None)  # every attribute: the curves are drawn
    from sweeps.files import write_new

    out = write_new(Path(args.out), report_html(reader, expected=random_reference(reader.spec)), force=args.force)
    console.print(f"wrote {out} ({len(reader.trials)} trials)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import time

    from mlflow.tracking import MlflowClient

    from sweeps.spec_store import list_sweeps, saved_spec
    from sweeps.tracking.auth import use_store_credentials
    from sweeps.tracking.ui import experiment_url, start_dashboard, sweep_view_url

    names = [args.name] if args.name else list_sweeps(args.root)
    if not names:
        raise UnknownSweepError("no sweeps yet: run one with `sweeps run mnist-quick`")
    spec = saved_spec(names[0], args.root).resolved()
    uri = spec.stores.mlflow_tracking_uri
    use_store_credentials(uri)  # an http server's password: a header on MLflow's requests
    dash = start_dashboard(uri, host=args.host, port=args.port)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(args.name) if args.name else None
    if exp is not None:  # opened on the sweep's trials, objectives and parameters as columns
        url = sweep_view_url(client, dash.url, exp.experiment_id, args.name, [p.name for p in spec.space])
    else:
        url = experiment_url(dash.url, None)
    console.print(f"MLflow UI: [bold]{shown(url)}[/]")
    if dash.process is None:
        return 0
    console.print("Ctrl-C stops it")
    try:
        while dash.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        dash.stop()
    console.print("dashboard stopped")
    return 0


def _claims_help() -> str:
    import textwrap

    from sweeps.search.claims import MARGINS_HELP

    return "what the claims against the baselines mean:\n" + textwrap.fill(MARGINS_HELP, 88, initial_indent="  ",
                                                                          subsequent_indent="  ")


COMMANDS = (
    Command("status", "trials and the current Pareto front (works while a sweep runs)", cmd_status, (
        NAME, arg("--last", type=int, default=100, help="trials listed when there are more (default 100)"),
        arg("--all", action="store_true", help="list every trial"), ROOT)),
    Command("list", "the sweeps in the sweeps folder", cmd_list, (ROOT,)),
    Command("best", "pick one config from the Pareto front and write it as YAML", cmd_best, (
        NAME, RULE,
        arg("--out", help="output YAML (default NAME-best.yaml)"),
        arg("--force", action="store_true", help="overwrite --out if it exists"),
        arg("--register", metavar="MODEL_NAME", help="register the chosen model in the MLflow Model Registry"),
        arg("--alias", default="champion", help="alias for the registered version (default champion)"),
        ROOT), epilog=_claims_help()),
    Command("export", "write the chosen config, its weights and a model card to a folder", cmd_export, (
        NAME, arg("--out", required=True, help="output folder (new, or empty)"),
        arg("--force", action="store_true", help="write into --out even if it holds files"),
        arg("--format", action="append", choices=["onnx"],
            help="also write model.onnx (onnxruntime, dynamic batch; weights.safetensors is always written)"),
        RULE, ROOT)),
    Command("report", "write the sweep report (plots and Pareto table) as one HTML file", cmd_report, (
        NAME, arg("--out", help="output HTML (default NAME-report.html)"),
        arg("--force", action="store_true", help="overwrite --out if it exists"), ROOT)),
    Command("dashboard", "start the MLflow UI on the sweeps' store and print the URL", cmd_dashboard, (
        arg("name", nargs="?", help="sweep to open (default: the store of the first sweep)"),
        arg("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)"),
        arg("--port", type=int, default=5000), ROOT)),
)
