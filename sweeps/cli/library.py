"""`sweeps networks` and `sweeps train`: the library's networks, and one network trained with the paper's recipe."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from sparsity.errors import UserError
from sparsity.facts import DATASET_NAMES

from sweeps.cli.args import Command, arg
from sweeps.cli.console import console, table


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
    from sweeps.files import write_new

    out = write_new(Path(args.out), json.dumps(summary, indent=2), force=args.force)
    console.print(f"wrote {out} ({result.seconds:.1f}s)")
    return 0


COMMANDS = (
    Command("networks", "show the paper's networks: layers, k values, nonzero weights", cmd_networks, (
        arg("--dataset", default="mnist", choices=DATASET_NAMES),
        arg("--preset", help="one preset (default: all for the dataset)"))),
    Command("train", "train one network with the paper's recipe and score it under noise", cmd_train, (
        arg("--preset", required=True, help="network preset, e.g. sparse-cnn2 (see `sweeps networks`)"),
        arg("--dataset", default="mnist", choices=DATASET_NAMES),
        arg("--epochs", type=int, help="override the recipe's epochs"),
        arg("--seed", type=int, default=0),
        arg("--data-dir", help="data root (default: $SPARSE_SWEEPS_DATA, else ./data)"),
        arg("--train-limit", type=int, help="train on the first N training samples (quick runs)"),
        arg("--eval-limit", type=int, help="evaluate on the first N validation/test samples"),
        arg("--validation-size", type=int, default=None,
            help="mnist: training images held out for validation (default 5000); 0 = the paper's protocol: "
                 "train on all 60,000, no validation split, test set for reporting only"),
        arg("--noise-kind", help="noise kind (default: the paper's protocol for the dataset)"),
        arg("--noise-seed", type=int, default=0),
        arg("--device", help="cpu or cuda (default: cuda when present)"),
        arg("--threads", type=int, default=1, help="torch threads on the CPU (default 1)"),
        arg("--checkpoint", help="checkpoint file: written each epoch, resumed from if present"),
        arg("--out", help="JSON results file (default runs/train-DATASET-PRESET-seedS.json)"),
        arg("--force", action="store_true", help="overwrite --out if it exists"))),
)
