"""The `sweeps` command line: thin parsing over the library and the service.

Errors a user can fix (bad spec, missing dataset, unknown preset) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import logging
import sys
from pathlib import Path
from typing import Sequence

from sparsity.errors import UserError
from sparsity.facts import DATASET_NAMES

from sweeps.cli.console import configure_logging, console, table
from sweeps.search.study import quiet_optuna
from sweeps.stores.paths import ROOT_ENV, default_root

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


def _print_outcome(outcome, root: str) -> None:
    from sweeps.results.read import saved_spec

    console.print(_front_table(f"Pareto front of {outcome.name} ({outcome.seconds:.0f}s)", outcome.front))
    _print_front_note(outcome.front, outcome.name)
    uri = saved_spec(outcome.name, root).stores.resolved().mlflow_tracking_uri
    console.print(f"browse: [bold]sweeps dashboard {outcome.name}[/]  (MLflow at {uri}, experiment {outcome.mlflow_experiment_id})")
    console.print(f"pick a config: [bold]sweeps best {outcome.name}[/]")


def cmd_run(args: argparse.Namespace) -> int:
    from sweeps.spec import load_spec

    # The spec is read and validated before anything heavy loads: a bad one answers in a moment.
    spec = load_spec(args.spec, stores_root=args.root or os.environ.get(ROOT_ENV))
    if args.name:
        spec = dataclasses.replace(spec, name=args.name)
    from sweeps.stores.config import preflight

    preflight(spec.stores)  # every store reachable and usable, before anything is written
    quiet_optuna()
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import run_sweep

    console.print(f"sweep [bold]{spec.name}[/]: {spec.budget.trials} searched trials + {len(spec.baselines)} baselines, "
                  f"{spec.epochs} epochs each, {spec.budget.max_concurrent} at a time")
    outcome = run_sweep(spec, address=args.address, progress=StudyProgress())
    _print_outcome(outcome, spec.stores.root)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    quiet_optuna()
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import resume_sweep

    outcome = resume_sweep(args.name, root=args.root, address=args.address, progress=StudyProgress())
    _print_outcome(outcome, args.root or default_root())
    return 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from sweeps.results.read import saved_spec

    spec = saved_spec(args.name, args.root)  # an unknown sweep, or bad numbers, answer before Ray loads
    from sweeps.spec import Confirm, SweepSpec

    base = spec.confirm or Confirm()
    SweepSpec.from_dict({**spec.to_dict(), "confirm": {"top": base.top if args.top is None else args.top,
                                                      "seeds": base.seeds if args.seeds is None else args.seeds}})
    quiet_optuna()
    from sweeps.cli.progress import StudyProgress
    from sweeps.run.service import confirm_sweep

    outcome = confirm_sweep(args.name, top=args.top, seeds=args.seeds, root=args.root, address=args.address,
                            progress=StudyProgress())
    _print_outcome(outcome, args.root or default_root())
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
    out = write_best(doc, args.out or f"{spec.name}-best.yaml")
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
    out = export(spec, trial.number, best_config(spec, trial, rule, configs), args.out, dense_reference(configs))
    console.print(f"exported trial #{trial.number} of {spec.name} to {out}: config.yaml, weights.pt, MODEL_CARD.md")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sweeps.results.read import report_html, sweep_status

    quiet_optuna()
    spec, trials, _ = sweep_status(args.name, args.root)
    out = Path(args.out or f"{spec.name}-report.html")
    out.write_text(report_html(spec, trials))
    console.print(f"wrote {out} ({len(trials)} trials)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import time

    from mlflow.tracking import MlflowClient

    from sweeps.tracking.ui import experiment_url, start_dashboard
    from sweeps.results.read import list_sweeps, saved_spec

    names = [args.name] if args.name else list_sweeps(args.root)
    if not names:
        raise ValueError("no sweeps yet: run one with `sweeps run mnist-quick`")
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

    spec = load_spec(args.spec)
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


# -- parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweeps", description="Sweeps over sparse networks (k-winners, sparse weights).")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    n = sub.add_parser("networks", help="show the paper's networks: layers, k values, nonzero weights")
    n.add_argument("--dataset", default="mnist", choices=DATASET_NAMES)
    n.add_argument("--preset", help="one preset (default: all for the dataset)")
    n.set_defaults(func=cmd_networks)

    t = sub.add_parser("train", help="train one network with the paper's recipe and score it under noise")
    t.add_argument("--preset", required=True, help="network preset, e.g. sparse-cnn2 (see `sweeps networks`)")
    t.add_argument("--dataset", default="mnist", choices=DATASET_NAMES)
    t.add_argument("--epochs", type=int, help="override the recipe's epochs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-dir", help="data root (default: $SPARSE_SWEEPS_DATA, else ./data)")
    t.add_argument("--train-limit", type=int, help="train on the first N training samples (quick runs)")
    t.add_argument("--eval-limit", type=int, help="evaluate on the first N validation/test samples")
    t.add_argument("--validation-size", type=int, default=None,
                   help="mnist: training images held out for validation (default 5000); 0 = the paper's protocol: "
                        "train on all 60,000, no validation split, test set for reporting only")
    t.add_argument("--noise-kind", help="noise kind (default: the paper's protocol for the dataset)")
    t.add_argument("--noise-seed", type=int, default=0)
    t.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    t.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1)")
    t.add_argument("--checkpoint", help="checkpoint file: written each epoch, resumed from if present")
    t.add_argument("--out", help="JSON results file (default runs/train-DATASET-PRESET-seedS.json)")
    t.set_defaults(func=cmd_train)

    def stores(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--root", default=None, help=f"sweeps folder (default ${ROOT_ENV} or ./sweeps-data)")

    r = sub.add_parser("run", help="launch a sweep from a spec file or a preset (mnist-quick, mnist-paper, gsc-paper)")
    r.add_argument("spec", help="spec YAML file or preset name")
    r.add_argument("--name", help="override the spec's name")
    r.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    stores(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue a stopped sweep without repeating finished trials")
    rs.add_argument("name")
    rs.add_argument("--address", help="Ray cluster address")
    stores(rs)
    rs.set_defaults(func=cmd_resume)

    cf = sub.add_parser("confirm", help="add seed replicates: retrain the front's best configs and the baselines "
                                       "with more model seeds, so the front and `best` rest on intervals")
    cf.add_argument("name")
    cf.add_argument("--top", type=int, help="configs to confirm (default: the spec's confirm.top, else 4)")
    cf.add_argument("--seeds", type=int, help="model seeds added to each (default: the spec's confirm.seeds, else 3)")
    cf.add_argument("--address", help="Ray cluster address")
    stores(cf)
    cf.set_defaults(func=cmd_confirm)

    st = sub.add_parser("status", help="trials and the current Pareto front (works while a sweep runs)")
    st.add_argument("name")
    st.add_argument("--last", type=int, default=100, help="trials listed when there are more (default 100)")
    st.add_argument("--all", action="store_true", help="list every trial")
    stores(st)
    st.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="the sweeps in the sweeps folder")
    stores(ls)
    ls.set_defaults(func=cmd_list)

    b = sub.add_parser("best", help="pick one config from the Pareto front and write it as YAML")
    b.add_argument("name")
    g = b.add_mutually_exclusive_group()
    g.add_argument("--min-accuracy", type=float, help="highest noise score among configs with val accuracy >= A")
    g.add_argument("--rule", default="knee", choices=["knee"], help="knee: the best trade-off (default)")
    b.add_argument("--out", help="output YAML (default NAME-best.yaml)")
    b.add_argument("--register", metavar="MODEL_NAME", help="register the chosen model in the MLflow Model Registry")
    b.add_argument("--alias", default="champion", help="alias for the registered version (default champion)")
    stores(b)
    b.set_defaults(func=cmd_best)

    e = sub.add_parser("export", help="write the chosen config, its weights and a model card to a folder")
    e.add_argument("name")
    e.add_argument("--out", required=True, help="output folder")
    e.add_argument("--min-accuracy", type=float, help="choose by min accuracy instead of the knee")
    stores(e)
    e.set_defaults(func=cmd_export)

    rp = sub.add_parser("report", help="write the sweep report (plots and Pareto table) as one HTML file")
    rp.add_argument("name")
    rp.add_argument("--out", help="output HTML (default NAME-report.html)")
    stores(rp)
    rp.set_defaults(func=cmd_report)

    sm = sub.add_parser("simulate", help="replay a spec's search on recorded real trials: searchers compared by hypervolume")
    sm.add_argument("spec", help="spec YAML file or preset name (its space must lie within the table's)")
    sm.add_argument("--table", help="replay table (default: benchmarks/results/replay/replay-mnist.jsonl.gz)")
    sm.add_argument("--seeds", type=int, default=30, help="simulated sweeps per searcher (default 30)")
    sm.add_argument("--searchers", help="more samplers to compare, comma-separated (random, tpe, tpe-mv, nsga2, gp)")
    sm.add_argument("--out", help="write the summary (curves included) as JSON")
    sm.set_defaults(func=cmd_simulate)

    d = sub.add_parser("dashboard", help="start the MLflow UI on the sweeps' store and print the URL")
    d.add_argument("name", nargs="?", help="sweep to open (default: the store of the first sweep)")
    d.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=5000)
    stores(d)
    d.set_defaults(func=cmd_dashboard)
    def job_address(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--address", help="the head's Ray dashboard, e.g. http://127.0.0.1:8265 "
                        "(default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS)")

    sb = sub.add_parser("submit", help="run a sweep on a Ray cluster as a Ray job (it outlives this shell)")
    sb.add_argument("spec", help="spec YAML file or preset name")
    sb.add_argument("--name", help="override the spec's name")
    sb.add_argument("--root", help="sweeps folder on the head (default: its $SPARSE_SWEEPS_ROOT or ./sweeps-data)")
    sb.add_argument("--follow", action="store_true", help="print the job's output until it ends")
    job_address(sb)
    sb.set_defaults(func=cmd_submit)

    jb = sub.add_parser("jobs", help="the sweeps submitted to a Ray cluster and their state")
    job_address(jb)
    jb.set_defaults(func=cmd_jobs)

    lg = sub.add_parser("logs", help="a submitted sweep's output")
    lg.add_argument("name")
    lg.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    job_address(lg)
    lg.set_defaults(func=cmd_logs)

    sp_ = sub.add_parser("stop", help="stop a submitted sweep cleanly (its running trials marked; resume continues)")
    sp_.add_argument("name")
    job_address(sp_)
    sp_.set_defaults(func=cmd_stop)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from sweeps.stores.config import install_log_scrubber, scrub

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    install_log_scrubber()  # no store password in any log line
    from sweeps.shutdown import stop_on_signals

    try:
        with stop_on_signals():  # SIGTERM and SIGHUP stop a command as Ctrl-C does: what it started, it stops
            return args.func(args)
    except (UserError, ValueError, FileNotFoundError) as e:
        console.print(f"[bold red]error:[/] {scrub(str(e))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
