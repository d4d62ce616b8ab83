"""`sweeps simulate`: a spec's search replayed on recorded real trials, searchers compared."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sweeps.cli.args import Command, arg
from sweeps.cli.console import console, table, text


def cmd_simulate(args: argparse.Namespace) -> int:
    from sweeps.errors import SpecError
    from sweeps.replay.table import load_table
    from sweeps.search.samplers import SAMPLERS
    from sweeps.spec import load_spec

    spec = load_spec(args.spec)
    replay_table = load_table(args.table)  # None: $SPARSE_SWEEPS_REPLAY_TABLE
    replay_table.check_covers(spec)
    others = [s for s in (args.searchers or "").split(",") if s]
    unknown = [s for s in others if s not in SAMPLERS]
    if unknown:
        raise SpecError(f"--searchers: {', '.join(unknown)} unknown; choose from {', '.join(SAMPLERS)} (comma-separated)")
    if args.seeds < 1:
        raise SpecError(f"--seeds {args.seeds}: give at least 1")

    from sweeps.replay.compare import simulate_spec

    summary = simulate_spec(spec, replay_table, range(args.seeds), others, progress=lambda line: console.print(text(line)))
    console.print(text(summary["fidelity"]))
    ref = summary["reference_point"]
    rows = []
    def quartiles(q: dict) -> str:
        fmt = lambda x: "never" if x is None else f"{x:.0f}"  # noqa: E731
        return f"{fmt(q['median'])} [{fmt(q['q1'])}, {fmt(q['q3'])}]"

    def q5(q: dict) -> str:
        fmt = lambda x: "beyond" if x is None else f"{x:.5f}"  # noqa: E731
        return f"{fmt(q['median'])} [{fmt(q['q1'])}, {fmt(q['q3'])}]"

    for name, v in summary["variants"].items():
        p, pt = v["mannwhitney_p_true_at_epoch_budget"], v["mannwhitney_p_fewer_trials_to_target"]
        pw = v["power"]
        rows.append([name, q5(v["true_hypervolume_at_epoch_budget"]),
                     f"{quartiles(v['trials_to_target'])} ({v['trials_to_target']['reached']}/{v['trials_to_target']['runs']})",
                     quartiles(v["epochs_to_target"]), f"{v['epochs_total']['median']:.0f}",
                     f"{pw['truly_beats']['k']}/{pw['truly_beats']['n']}",
                     f"{pw['says_better_on_noise']['k']}/{pw['says_better_on_noise']['n']}",
                     q5(v["observed_final_hypervolume"]), "" if p is None else f"{p:.2g} / {pt:.2g}"])
    confirm = "no confirmation" if spec.confirm is None else (
        f"confirm top {spec.confirm.top} x {spec.confirm.seeds} seeds"
        + (f", {spec.replicate_trials} replicates over {spec.confirm.looks} looks" if spec.confirm.budget else ""))
    console.print(table(f"{spec.name}: {args.seeds} simulated sweeps each, {spec.budget.trials} trials + "
                         f"{len(spec.baselines)} baselines, {spec.budget.max_concurrent} at a time, {confirm}; true "
                         f"hypervolume (noise-free means of what is handed over) above ({ref[0]:.4f}, {ref[1]:.4f})",
                         ["searcher", "true hypervolume at equal epochs, median [IQR]",
                          "searched trials to random's median [IQR] (reached)", "epochs to it [IQR]", "epochs",
                          "chosen truly beats dense", "best says so", "observed hypervolume",
                          "p: more hypervolume / fewer trials than random"], rows))
    if args.out:
        from sweeps.files import write_new

        write_new(Path(args.out), json.dumps(summary, indent=1), force=args.force)
        console.print(f"wrote {args.out}")
    return 0


COMMANDS = (
    Command("simulate", "replay a spec's search on recorded real trials: searchers compared by hypervolume",
            cmd_simulate, (
                arg("spec", help="spec YAML file or preset name (its space must lie within the table's)"),
                arg("--table", help="replay table (default: $SPARSE_SWEEPS_REPLAY_TABLE; this repository's is "
                                    "benchmarks/results/replay/replay-mnist-quick.jsonl.gz)"),
                arg("--seeds", type=int, default=30, help="simulated sweeps per searcher (default 30)"),
                arg("--searchers", help="more samplers to compare, comma-separated (random, tpe, tpe-mv, nsga2, gp, "
                                        "qmc, qnehvi)"),
                arg("--out", help="write the summary (curves included) as JSON"),
                arg("--force", action="store_true", help="overwrite --out if it exists"))),
)
