"""The `sweeps` command line: thin parsing over the library and the service.

Errors a user can fix (bad spec, missing dataset, unknown preset) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from sparsity.errors import UserError
from sweeps.errors import UnknownSweepError
from sparsity.facts import DATASET_NAMES

from sweeps.cli.console import configure_logging, console, table
from sweeps.search.study import quiet_optuna
from sweeps.stores.paths import DEFAULT_ROOT, ROOT_ENV

# Commands import what they use inside their bodies: `sweeps run BAD.yaml`, `status`, `list` and
# `best` import neither Ray, MLflow nor torch (tests/test_cli_imports.py); Ray and MLflow load
# only once a sweep is launched, resumed, exported, registered or browsed.

log = logging.getLogger("sweeps")


# -- sweeps networks ------------------------------------------------------------------------------

def cmd_networks(args: argparse.Namespace) -> int:
    from sparsity import preset, preset_names

    names = [args.preset] if args.preset else preset_names(args.dataset)
    for name in names:
        spec = preset(name, args.dataset)
        rows = [
            [s.name, "x".join(map(str, s.out_shape)), s.activation, s.units, s.k, s.k_inference,
             f"{s.weight_density:g}", s.weights, s.nonzero_weights]
            for s in spec.layer_summaries()
        ]
        console.print(
            table(
                f"{args.dataset} / {name}: {spec.num_params:,} params, {spec.num_nonzero_params:,} nonzero",
                ["layer", "out shape", "activation", "units", "k", "k eval", "density", "weights", "nonzero"],
                rows,
            )
        )
    return 0


# -- sweeps train -------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sparsity.data import DataConfig
    from sparsity.experiment import NoiseConfig, paper_experiment, run_experiment

    if args.validation_size is not None and args.dataset != "mnist":
        raise UserError(f"--validation-size applies to mnist only ({args.dataset} has fixed splits); leave it out")
    sizes = {} if args.validation_size is None else {"validation_size": args.validation_size}
    data = DataConfig(
        name=args.dataset, root=args.data_dir, train_limit=args.train_limit, eval_limit=args.eval_limit, **sizes,
    )
    config = paper_experiment(args.preset, args.dataset, epochs=args.epochs, seed=args.seed, data=data)
    config = dataclasses.replace(config, noise=NoiseConfig(kind=args.noise_kind, seed=args.noise_seed))
    console.print(
        f"training [bold]{args.preset}[/] on [bold]{args.dataset}[/] for {config.recipe.epochs} epochs, seed {args.seed}"
    )
    if not data.has_validation:
        console.print("no validation split: training on all 60,000 images as the paper did; "
                      "the test set is for reporting only")
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("epochs", total=config.recipe.epochs)

        def on_epoch(r, _model) -> None:
            shown = f"val acc {r.val_accuracy:.4f}" if r.val_accuracy is not None else f"train acc {r.train_accuracy:.4f}"
            progress.update(task, completed=r.epoch, description=f"epoch {r.epoch}: {shown}")

        result = run_experiment(
            config, on_epoch=on_epoch, checkpoint_path=args.checkpoint, device=args.device, threads=args.threads,
        )
    summary = result.summary()
    curves = [(n, c) for n, c in (("validation", result.validation_curve), ("test", result.test_curve)) if c is not None]
    levels = curves[0][1].levels
    rows = [[f"{lv:g}"] + [f"{100 * c.accuracies[i]:.2f}" for _, c in curves] for i, lv in enumerate(levels)]
    console.print(table(f"noise curve ({curves[0][1].kind}), accuracy %", ["level"] + [n for n, _ in curves], rows))
    score_rows = [[n, f"{100 * (result.val_accuracy if n == 'validation' else result.test_accuracy):.2f}",
                   f"{c.noise_score:,}", f"{c.total * len(c.levels):,}"] for n, c in curves]
    console.print(table("scores", ["split", "clean accuracy %", "noise score", "max"], score_rows))
    out = Path(args.out or f"runs/train-{args.dataset}-{args.preset}-seed{args.seed}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    console.print(f"wrote {out} ({result.seconds:.1f}s)")
    return 0


# -- sweeps run / resume / status / list / best -------------------------------------------------

def _estimate_cell(row: dict, key: str, scale: float, fmt: str) -> str:
    """``mean ± half-width (n)`` of a config's estimate, or the plain value of a trial."""
    est = (row.get("estimates") or {}).get(key)
    value = row.get(key)
    if est is None or est["n"] == 1:
        return "" if value is None else format(scale * value, fmt)
    cell = format(scale * est["mean"], fmt)
    if est["low"] is not None:
        cell += " ± " + format(scale * (est["high"] - est["low"]) / 2, fmt)
    return f"{cell} (n={est['n']})"


def _front_table(title: str, trials) -> object:
    from sweeps.results.read import trial_row

    rows = []
    for t in trials:
        r = trial_row(t)
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items()
                           if k not in ("baseline", "replicate_of"))
        kind = r["baseline"] or ""
        if r.get("replicate_of") is not None:
            kind = (kind + " " if kind else "") + f"rep of #{r['replicate_of']}"
        rows.append([r["number"], r["state"], kind,
                     _estimate_cell(r, "val_accuracy", 100, ".2f"), _estimate_cell(r, "val_noise_score", 1, ",.0f"),
                     _estimate_cell(r, "test_accuracy", 100, ".2f"), params or r["fail_reason"]])
    return table(title, ["#", "state", "baseline / replicate", "val acc %", "val noise score", "test acc %", "params"],
                 rows)


FRONT_NOTE = ("front on the means of each config's seeds, ± the 95% interval; a confirmed config's figures rest on its "
              "replicate seeds only (its first seed chose it)")


def _print_outcome(outcome) -> None:
    from sweeps.stores.secrets import display

    console.print(_front_table(f"Pareto front of {outcome.name} ({outcome.seconds:.0f}s)", outcome.front))
    _print_front_note(outcome.front, outcome.name)
    console.print(f"browse: [bold]sweeps dashboard {outcome.name}[/]  (MLflow at {display(outcome.tracking_uri)}, "
                  f"experiment {outcome.mlflow_experiment_id})")
    console.print(f"pick a config: [bold]sweeps best {outcome.name}[/]")


def cmd_run(args: argparse.Namespace) -> int:
    from sweeps.spec import load_spec

    # The spec is read and validated before anything heavy loads: a bad one answers in a moment.
    spec = load_spec(args.spec, stores_root=args.root)  # --root, the spec's, $SPARSE_SWEEPS_ROOT (choose_root)
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import run_sweep

    _print_outcome(run_sweep(spec, address=args.address, progress=StudyProgress()))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import resume_sweep

    _print_outcome(resume_sweep(args.name, root=args.root, address=args.address, progress=StudyProgress()))
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import confirm_sweep

    # An unknown sweep, or bad numbers, are refused before anything heavy loads (`confirm_sweep`).
    _print_outcome(confirm_sweep(args.name, top=args.top, seeds=args.seeds, root=args.root, address=args.address,
                                 progress=StudyProgress()))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sweeps.results.read import ROW_ATTRS, sweep_status

    spec, trials, front = sweep_status(args.name, args.root, attrs=ROW_ATTRS)  # what the rows show
    shown = trials if args.all or len(trials) <= args.last else trials[-args.last:]
    title = f"trials of {spec.name} ({len(trials)}/{spec.total_trials})"
    if len(shown) < len(trials):
        title += f", the last {len(shown)} (--all for every one)"
    console.print(_front_table(title, shown))
    states = [t.state.name for t in trials]
    console.print(", ".join(f"{states.count(s)} {s.lower()}" for s in ("COMPLETE", "RUNNING", "PRUNED", "FAIL")))
    console.print(_front_table("Pareto front (validation accuracy vs noise score)", front))
    _print_front_note(front, spec.name)
    return 0


def _print_front_note(front, name: str) -> None:
    if any(getattr(c, "confirmed", False) for c in front):
        console.print(FRONT_NOTE)
    elif front:
        console.print(f"one seed per config: no intervals yet; add seed replicates with: sweeps confirm {name}")


def cmd_list(args: argparse.Namespace) -> int:
    from sweeps.results.read import list_sweeps, saved_spec, sweep_counts

    rows = []
    for name in list_sweeps(args.root):
        spec = saved_spec(name, args.root)
        done, front = sweep_counts(spec)
        rows.append([name, spec.dataset.name, spec.network.name, f"{done}/{spec.total_trials}", front])
    console.print(table("sweeps", ["name", "dataset", "network", "complete", "pareto"], rows))
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from sweeps.results.best import best_config, choose, write_best
    from sweeps.results.read import sweep_status, sweep_trials

    from sweeps.results.read import config_summaries

    spec, trials, front = sweep_status(args.name, args.root, attrs=())  # the front needs values only
    chosen = choose(front, min_accuracy=args.min_accuracy, rule=args.rule)
    full = {t.number: t for t in sweep_trials(spec, numbers=[chosen.number])}  # the chosen one in full
    configs = config_summaries([full.get(t.number, t) for t in trials])
    trial = next(c for c in configs if c.number == chosen.number)
    rule = f"min_accuracy={args.min_accuracy}" if args.min_accuracy is not None else args.rule
    doc = best_config(spec, trial, rule, configs)
    out = write_best(doc, _out(args))
    src = doc["source"]
    row = {"val_accuracy": src["val_accuracy"], "val_noise_score": src["val_noise_score"], "estimates": src["estimates"]}
    console.print(f"trial #{trial.number} ({rule}): val acc {_estimate_cell(row, 'val_accuracy', 100, '.2f')}%, "
                  f"val noise score {_estimate_cell(row, 'val_noise_score', 1, ',.0f')}; wrote {out}")
    for line in src["claims"]:
        console.print(line, soft_wrap=True)
    if args.register:
        from sweeps.results.deploy import register

        version = register(spec, trial.number, args.register, doc, alias=args.alias)
        console.print(f"registered {args.register} version {version.version} as "
                      f"[bold]models:/{args.register}@{args.alias}[/] (tracking {spec.stores.resolved().mlflow_tracking_uri})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sweeps.results.best import best_config, choose, dense_reference
    from sweeps.results.deploy import export
    from sweeps.results.read import sweep_status

    quiet_optuna()

    from sweeps.results.read import config_summaries

    spec, trials, front = sweep_status(args.name, args.root)
    trial = choose(front, min_accuracy=args.min_accuracy)
    rule = f"min_accuracy={args.min_accuracy}" if args.min_accuracy is not None else "knee"
    configs = config_summaries(trials)
    out = export(spec, trial.number, best_config(spec, trial, rule, configs), _out(args), dense_reference(configs))
    console.print(f"exported trial #{trial.number} of {spec.name} to {out}: config.yaml, weights.pt, MODEL_CARD.md")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sweeps.replay.reference import random_reference
    from sweeps.results.read import report_html, sweep_status

    quiet_optuna()
    spec, trials, _ = sweep_status(args.name, args.root)
    out = _out(args)
    out.write_text(report_html(spec, trials, expected=random_reference(spec)))
    console.print(f"wrote {out} ({len(trials)} trials)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import time

    from mlflow.tracking import MlflowClient

    from sweeps.tracking.ui import experiment_url, start_dashboard
    from sweeps.results.read import list_sweeps, saved_spec

    names = [args.name] if args.name else list_sweeps(args.root)
    if not names:
        raise UnknownSweepError("no sweeps yet: run one with `sweeps run mnist-quick`")
    uri = saved_spec(names[0], args.root).stores.resolved().mlflow_tracking_uri
    dash = start_dashboard(uri, host=args.host, port=args.port)
    exp = MlflowClient(uri).get_experiment_by_name(args.name) if args.name else None
    console.print(f"MLflow UI: [bold]{experiment_url(dash.url, exp.experiment_id if exp else None)}[/]")
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


# -- sweeps simulate -----------------------------------------------------------------------------

def cmd_simulate(args: argparse.Namespace) -> int:
    from sweeps.errors import SpecError
    from sweeps.replay.table import DEFAULT_TABLE, load_table
    from sweeps.search.samplers import SAMPLERS
    from sweeps.spec import load_spec

    spec = load_spec(args.spec)
    replay_table = load_table(args.table or DEFAULT_TABLE)
    replay_table.check_covers(spec)
    others = [s for s in (args.searchers or "").split(",") if s]
    unknown = [s for s in others if s not in SAMPLERS]
    if unknown:
        raise SpecError(f"--searchers: {', '.join(unknown)} unknown; choose from {', '.join(SAMPLERS)} (comma-separated)")
    if args.seeds < 1:
        raise SpecError(f"--seeds {args.seeds}: give at least 1")

    from sweeps.replay.compare import simulate_spec

    summary = simulate_spec(spec, replay_table, range(args.seeds), others, progress=console.print)
    console.print(summary["fidelity"])
    ref = summary["reference_point"]
    rows = []
    def quartiles(q: dict) -> str:
        fmt = lambda x: "never" if x is None else f"{x:.0f}"  # noqa: E731
        return f"{fmt(q['median'])} [{fmt(q['q1'])}, {fmt(q['q3'])}]"

    def q5(q: dict) -> str:
        fmt = lambda x: "beyond" if x is None else f"{x:.5f}"  # noqa: E731
        return f"{fmt(q['median'])} [{fmt(q['q1'])}, {fmt(q['q3'])}]"

    for name, v in summary["variants"].items():
        p = v["mannwhitney_p_true_at_epoch_budget"]
        pw = v["power"]
        rows.append([name, q5(v["true_hypervolume_at_epoch_budget"]),
                     f"{quartiles(v['trials_to_target'])} ({v['trials_to_target']['reached']}/{v['trials_to_target']['runs']})",
                     quartiles(v["epochs_to_target"]), f"{v['epochs_total']['median']:.0f}",
                     f"{pw['truly_beats']['k']}/{pw['truly_beats']['n']}",
                     f"{pw['says_better_on_noise']['k']}/{pw['says_better_on_noise']['n']}",
                     q5(v["observed_final_hypervolume"]), "" if p is None else f"{p:.2g}"])
    confirm = "no confirmation" if spec.confirm is None else f"confirm top {spec.confirm.top} x {spec.confirm.seeds} seeds"
    console.print(table(f"{spec.name}: {args.seeds} simulated sweeps each, {spec.budget.trials} trials + "
                         f"{len(spec.baselines)} baselines, {spec.budget.max_concurrent} at a time, {confirm}; true "
                         f"hypervolume (noise-free means of what is handed over) above ({ref[0]:.4f}, {ref[1]:.4f})",
                         ["searcher", "true hypervolume at equal epochs, median [IQR]",
                          "searched trials to random's median [IQR] (reached)", "epochs to it [IQR]", "epochs",
                          "chosen truly beats dense", "best says so", "observed hypervolume", "p > random"], rows))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))
        console.print(f"wrote {args.out}")
    return 0


# -- sweeps submit / jobs / logs / stop: sweeps as Ray jobs --------------------------------------

def _write(text: str) -> None:
    sys.stdout.write(text)
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
    console.print(f"job {job_name(spec.name)}: {state}")
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
        console.print(f"job state: {state}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from sweeps.run.jobs import job_name, stop

    state = stop(args.address, args.name)
    console.print(f"job {job_name(args.name)}: {state}; continue it with `sweeps resume {args.name}` on the head")
    return 0 if state in ("STOPPED", "SUCCEEDED", "FAILED") else 1


# -- arguments checked before anything runs ------------------------------------------------------

_OUT_DEFAULTS = {"best": "{name}-best.yaml", "report": "{name}-report.html", "export": None}


def _out(args: argparse.Namespace) -> Path:
    """Where `best`, `export` and `report` write."""
    return Path(args.out or _OUT_DEFAULTS[args.command].format(name=args.name))


def _check_args(args: argparse.Namespace) -> None:
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
    if args.command in _OUT_DEFAULTS:
        out = _out(args)
        full = out.is_dir() and any(out.iterdir()) if args.command == "export" else out.exists()
        if full and not args.force:
            raise UserError(f"--out {out}: already exists; choose another path, or add --force to overwrite it")


# -- the parser: one row per command --------------------------------------------------------------

Arg = tuple[tuple[str, ...], dict[str, Any]]


def _arg(*flags: str, **kw: Any) -> Arg:
    return flags, kw


NAME = _arg("name")
SPEC = _arg("spec", help="spec YAML file or preset name")
ROOT = _arg("--root", default=None, help=f"sweeps folder; wins over the spec's stores.root (default: the spec's, "
                                          f"else ${ROOT_ENV}, else ./{DEFAULT_ROOT})")
ADDRESS = _arg("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
JOB_ADDRESS = _arg("--address", help="the head's Ray dashboard, e.g. http://127.0.0.1:8265 "
                                     "(default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)")


@dataclasses.dataclass(frozen=True)
class Command:
    name: str  # runs `cmd_<name>(args) -> exit code`
    help: str
    args: tuple[Arg | tuple[Arg, ...], ...] = ()  # a tuple of Args: mutually exclusive


COMMANDS = (
    Command("networks", "show the paper's networks: layers, k values, nonzero weights", (
        _arg("--dataset", default="mnist", choices=DATASET_NAMES),
        _arg("--preset", help="one preset (default: all for the dataset)"))),
    Command("train", "train one network with the paper's recipe and score it under noise", (
        _arg("--preset", required=True, help="network preset, e.g. sparse-cnn2 (see `sweeps networks`)"),
        _arg("--dataset", default="mnist", choices=DATASET_NAMES),
        _arg("--epochs", type=int, help="override the recipe's epochs"),
        _arg("--seed", type=int, default=0),
        _arg("--data-dir", help="data root (default: $SPARSE_SWEEPS_DATA, else ./data)"),
        _arg("--train-limit", type=int, help="train on the first N training samples (quick runs)"),
        _arg("--eval-limit", type=int, help="evaluate on the first N validation/test samples"),
        _arg("--validation-size", type=int, default=None,
             help="mnist: training images held out for validation (default 5000); 0 = the paper's protocol: "
                  "train on all 60,000, no validation split, test set for reporting only"),
        _arg("--noise-kind", help="noise kind (default: the paper's protocol for the dataset)"),
        _arg("--noise-seed", type=int, default=0),
        _arg("--device", help="cpu or cuda (default: cuda when present)"),
        _arg("--threads", type=int, default=1, help="torch threads on the CPU (default 1)"),
        _arg("--checkpoint", help="checkpoint file: written each epoch, resumed from if present"),
        _arg("--out", help="JSON results file (default runs/train-DATASET-PRESET-seedS.json)"))),
    Command("run", "launch a sweep from a spec file or a preset (mnist-quick, mnist-paper, gsc-paper)", (
        SPEC, _arg("--name", help="override the spec's name"), ADDRESS, ROOT)),
    Command("resume", "continue a stopped sweep without repeating finished trials", (NAME, ADDRESS, ROOT)),
    Command("confirm", "add seed replicates: retrain the front's best configs and the baselines with more "
            "model seeds, so the front and `best` rest on intervals", (
                NAME, _arg("--top", type=int, help="configs to confirm (default: the spec's confirm.top, else 4)"),
                _arg("--seeds", type=int, help="model seeds added to each (default: the spec's confirm.seeds, else 3)"),
                ADDRESS, ROOT)),
    Command("status", "trials and the current Pareto front (works while a sweep runs)", (
        NAME, _arg("--last", type=int, default=100, help="trials listed when there are more (default 100)"),
        _arg("--all", action="store_true", help="list every trial"), ROOT)),
    Command("list", "the sweeps in the sweeps folder", (ROOT,)),
    Command("best", "pick one config from the Pareto front and write it as YAML", (
        NAME,
        (_arg("--min-accuracy", type=float, help="highest noise score among configs with val accuracy >= A"),
         _arg("--rule", default="knee", choices=["knee"], help="knee: the best trade-off (default)")),
        _arg("--out", help="output YAML (default NAME-best.yaml)"),
        _arg("--force", action="store_true", help="overwrite --out if it exists"),
        _arg("--register", metavar="MODEL_NAME", help="register the chosen model in the MLflow Model Registry"),
        _arg("--alias", default="champion", help="alias for the registered version (default champion)"),
        ROOT)),
    Command("export", "write the chosen config, its weights and a model card to a folder", (
        NAME, _arg("--out", required=True, help="output folder (new, or empty)"),
        _arg("--force", action="store_true", help="write into --out even if it holds files"),
        _arg("--min-accuracy", type=float, help="choose by min accuracy instead of the knee"), ROOT)),
    Command("report", "write the sweep report (plots and Pareto table) as one HTML file", (
        NAME, _arg("--out", help="output HTML (default NAME-report.html)"),
        _arg("--force", action="store_true", help="overwrite --out if it exists"), ROOT)),
    Command("simulate", "replay a spec's search on recorded real trials: searchers compared by hypervolume", (
        _arg("spec", help="spec YAML file or preset name (its space must lie within the table's)"),
        _arg("--table", help="replay table (default: benchmarks/results/replay/replay-mnist.jsonl.gz)"),
        _arg("--seeds", type=int, default=30, help="simulated sweeps per searcher (default 30)"),
        _arg("--searchers", help="more samplers to compare, comma-separated (random, tpe, tpe-mv, nsga2, gp)"),
        _arg("--out", help="write the summary (curves included) as JSON"))),
    Command("dashboard", "start the MLflow UI on the sweeps' store and print the URL", (
        _arg("name", nargs="?", help="sweep to open (default: the store of the first sweep)"),
        _arg("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)"),
        _arg("--port", type=int, default=5000), ROOT)),
    Command("submit", "run a sweep on a Ray cluster as a Ray job (it outlives this shell)", (
        SPEC, _arg("--name", help="override the spec's name"),
        _arg("--root", help=f"sweeps folder on the head, an absolute path (default: the spec's stores.root, else "
                            f"the head's ${ROOT_ENV}, else ~/{DEFAULT_ROOT} there)"),
        _arg("--follow", action="store_true", help="print the job's output until it ends"), JOB_ADDRESS)),
    Command("jobs", "the sweeps submitted to a Ray cluster and their state", (JOB_ADDRESS,)),
    Command("logs", "a submitted sweep's output", (
        NAME, _arg("--follow", action="store_true", help="keep printing until the job ends"), JOB_ADDRESS)),
    Command("stop", "stop a submitted sweep cleanly (its running trials marked; resume continues)",
            (NAME, JOB_ADDRESS)),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweeps", description="Sweeps over sparse networks (k-winners, sparse weights).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sp = sub.add_parser(command.name, help=command.help)
        for arg in command.args:
            if isinstance(arg[1], dict):
                sp.add_argument(*arg[0], **arg[1])
            else:  # a group of Args: mutually exclusive
                group = sp.add_mutually_exclusive_group()
                for flags, kw in arg:
                    group.add_argument(*flags, **kw)
        sp.set_defaults(func=globals()[f"cmd_{command.name}"])
    from sweeps.cli.data import add_parser as add_data_parser  # `sweeps data ...`: a group of its own

    add_data_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from sweeps.stores.secrets import install_log_scrubber, scrub

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    install_log_scrubber()  # no store password in any log line
    from sweeps.shutdown import stop_on_signals

    try:
        _check_args(args)
        with stop_on_signals():  # SIGTERM and SIGHUP stop a command as Ctrl-C does: what it started, it stops
            return args.func(args)
    except (UserError, ValueError, FileNotFoundError) as e:
        console.print(f"[bold red]error:[/] {scrub(str(e))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except Exception as e:  # not foreseen: one line (passwords blanked), the trace in a file of the user's own
        from sweeps.cli.console import save_trace

        path = save_trace(e, scrub)
        where = f"the full trace is in {path}" if path else "rerun with -v for details"
        summary = " ".join(f"{type(e).__name__}: {e}".split())
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(scrub(summary)[:300])}; {escape(where)} (a bug? report it with "
                      f"that file)", soft_wrap=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
