"""The budget map: where, in training budget, sparse networks buy noise robustness over dense ones.

Five networks of the quick sweep's world, each trained at several budgets (training images x
epochs) with many model seeds, every epoch scored on the full 5,000-image MNIST validation split
under the paper's noise (mnist-pixels, 11 levels, noise seed 0: identical noisy images for every
network):

  dense            Dense CNN-2, the paper's preset and recipe (the baseline every claim is against)
  dense-dropout    the same with dropout 0.5 on its hidden layer
  sparse           Sparse CNN-2, the paper's preset and recipe
  sparse-k25-w50   Sparse CNN-2's architecture at percent_on 0.25 and hidden weight density 0.5
  sparse-k8-w15    ... at percent_on 0.08 and hidden weight density 0.15 (both points of the
                   quick sweep's space: every k-winners layer, the hidden layer's weights)

A budget's runs train for its largest epoch count and are scored after every epoch: the training
loop's every random stream is a function of (seed, purpose, epoch) and the learning-rate schedule
steps per epoch, so the model after epoch e of a 3-epoch run *is* the model of a run of e epochs
(tests/test_budget_map.py checks it), and one run maps a budget's every epoch count. The training
subsets are nested (the first n of one seeded shuffle of the 55,000 training images).

Budgets (``images x epochs``, the epochs scored): 12k x 1-3, 6k x 1-3, 3k x 1-3 (added once the
first budget showed the effect at 12k x 1 already: where does it begin?), 12k x 1-3 with a
first-epoch batch of 16 instead of the paper's 4 (sparse networks only: dense ones train at 64
throughout, so their runs are the 12k ones), 55k x 1, 24k x 1-4. Seeds: 12 per dense network (they cost half as
much and spread 3-10 times more), 6 per sparse one. Runs go in that order, seeds interleaved across
networks, so that a partial map covers every network of the cheap budgets first.

One JSON per run, written atomically, to ``benchmarks/results/budget-map/<budget>/<network>-seed<S>.json``
with the commit, machine, threads, niceness and load; a run whose file exists is skipped (a stopped
run starts again: runs take 1-3 minutes). ``benchmarks/budget_map_report.py`` builds the table and
figure from those files alone.

    SPARSE_SWEEPS_DATA=<data root> python -m benchmarks.budget_map [--jobs 2] [--nice 19] [--dry-run]
        [--budget NAME[,NAME]] [--network NAME[,NAME]]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "budget-map"

from benchmarks.common import kill_pool, write_json  # noqa: E402

log = logging.getLogger("budget_map")

VALIDATION_SIZE = 5000  # the whole validation split, held out of training
NOISE_SEED = 0


@dataclass(frozen=True)
class Network:
    name: str
    preset: str
    params: tuple[tuple[str, float], ...] = ()  # searched-space values applied to the preset (sweeps' grammar)
    seeds: int = 6

    @property
    def sparse(self) -> bool:
        return self.preset.startswith("sparse")


NETWORKS = (
    Network("dense", "dense-cnn2", seeds=12),
    Network("dense-dropout", "dense-cnn2", (("dropout", 0.5),), seeds=12),
    Network("sparse", "sparse-cnn2"),
    Network("sparse-k25-w50", "sparse-cnn2", (("percent_on", 0.25), ("weight_density", 0.5))),
    Network("sparse-k8-w15", "sparse-cnn2", (("percent_on", 0.08), ("weight_density", 0.15))),
)
NETWORK_NAMES = tuple(n.name for n in NETWORKS)


@dataclass(frozen=True)
class Budget:
    name: str
    train_images: int
    epochs: int  # the largest; every epoch up to it is scored
    first_epoch_batch: int | None = None  # None: the recipe's own
    sparse_only: bool = False  # a change that touches only sparse recipes (dense ones have no small first batch)


BUDGETS = (
    Budget("12k", 12_000, 3),
    Budget("6k", 6_000, 3),
    Budget("3k", 3_000, 3),
    Budget("12k-b16", 12_000, 3, first_epoch_batch=16, sparse_only=True),
    Budget("55k", 55_000, 1),
    Budget("24k", 24_000, 4),
)
BUDGET_NAMES = tuple(b.name for b in BUDGETS)


@dataclass(frozen=True)
class Run:
    budget: Budget
    network: Network
    seed: int

    @property
    def path(self) -> Path:
        return RESULTS / self.budget.name / f"{self.network.name}-seed{self.seed}.json"

    def __str__(self) -> str:
        return f"{self.budget.name}/{self.network.name}/seed {self.seed}"


def plan(budgets: tuple[Budget, ...] = BUDGETS, networks: tuple[Network, ...] = NETWORKS) -> list[Run]:
    """Every run, budget by budget; within one, seed by seed across the networks."""
    runs = []
    for b in budgets:
        nets = [n for n in networks if n.sparse or not b.sparse_only]
        for seed in range(max((n.seeds for n in nets), default=0)):
            runs += [Run(b, n, seed) for n in nets if seed < n.seeds]
    return runs


def experiment(run: Run):
    """The `ExperimentConfig` of ``run`` (its recipe's epochs = the budget's largest)."""
    from sparsity.data import DataConfig
    from sparsity.experiment import ExperimentConfig, NoiseConfig
    from sparsity.presets import preset
    from sparsity.recipe import paper_recipe
    from sweeps.search.space import apply_params

    net = run.network
    recipe = paper_recipe(net.preset, "mnist").replace(epochs=run.budget.epochs)
    if run.budget.first_epoch_batch is not None and recipe.first_epoch_batch_size is not None:
        recipe = recipe.replace(first_epoch_batch_size=run.budget.first_epoch_batch)
    network, recipe = apply_params(preset(net.preset, "mnist"), recipe, dict(net.params))
    network = network.replace(name=net.name)
    data = DataConfig(name="mnist", validation_size=VALIDATION_SIZE, train_limit=run.budget.train_images)
    return ExperimentConfig(network=network, recipe=recipe, data=data, noise=NoiseConfig(kind="mnist-pixels", seed=NOISE_SEED),
                            seed=run.seed, evaluate_test=False)


# ---------------------------------------------------------------- one run (in a worker process)

_DATA: dict[int, Any] = {}


def run_one(run: Run, code: dict[str, Any]) -> dict[str, Any]:
    import torch

    from sparsity.data import load_dataset
    from sparsity.noise import noise_curve
    from sparsity.train import train

    torch.set_num_threads(1)
    config = experiment(run)
    if run.budget.train_images not in _DATA:
        _DATA[run.budget.train_images] = load_dataset(config.data)
    data = _DATA[run.budget.train_images]
    kind = config.noise.kind_for("mnist")
    epochs: list[dict[str, Any]] = []
    cpu = [time.process_time()]  # one thread: CPU seconds do not grow with the machine's load, wall ones do

    def on_epoch(result, model) -> None:
        t, c = time.perf_counter(), time.process_time()
        curve = noise_curve(model, data.validation, data.featurize, kind=kind, levels=config.noise.levels,
                            seed=config.noise.seed, batch_size=config.recipe.eval_batch_size)
        epochs.append({**result.to_dict(), "val_noise_score": curve.noise_score, "curve": curve.to_dict(),
                       "noise_seconds": round(time.perf_counter() - t, 2),
                       "cpu_seconds": round(c - cpu[0], 2),  # the epoch's training and validation
                       "noise_cpu_seconds": round(time.process_time() - c, 2)})
        cpu[0] = time.process_time()

    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    train(config.network, config.recipe, data, seed=run.seed, device="cpu", threads=1, on_epoch=on_epoch)
    wall = time.perf_counter() - t0
    return {
        "budget": run.budget.name, "network": run.network.name, "seed": run.seed,
        "train_images": len(data.train), "validation_images": len(data.validation),
        "noise_max": len(data.validation) * len(epochs[0]["curve"]["levels"]),
        "epochs": epochs,
        "config": config.to_dict(),
        "params": config.network.num_params, "nonzero_params": config.network.num_nonzero_params,
        "wall_seconds": round(wall, 1),
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
        "machine": {**machine(), "niceness": os.nice(0)},
        "code": code,
    }


def machine() -> dict[str, Any]:
    import platform

    import torch

    from benchmarks.common import cpu_model

    return {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads_per_run": 1}


def git_commit() -> dict[str, Any]:
    """HEAD, and whether the code a run executes (sparsity/, sweeps/search/, this script) differs from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--", "sparsity", "sweeps/search",
                                            "benchmarks/budget_map.py"))}


def _worker_init(niceness: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.nice(niceness)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(processName)s %(name)s: %(message)s", force=True)


# ---------------------------------------------------------------- main


def _pick(text: str | None, names: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    if text is None:
        return names
    chosen = tuple(text.split(","))
    unknown = [c for c in chosen if c not in names]
    if unknown:
        print(f"error: --{what}: unknown {', '.join(unknown)}; choose from {', '.join(names)}", file=sys.stderr)
        return None
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default 2)")
    parser.add_argument("--budget", help=f"comma-separated budgets (default all: {', '.join(BUDGET_NAMES)})")
    parser.add_argument("--network", help=f"comma-separated networks (default all: {', '.join(NETWORK_NAMES)})")
    parser.add_argument("--dry-run", action="store_true", help="list what would run, train nothing")
    parser.add_argument("--nice", type=int, default=19, help="niceness of the training processes (default 19)")
    args = parser.parse_args(argv)
    budgets = _pick(args.budget, BUDGET_NAMES, "budget")
    networks = _pick(args.network, NETWORK_NAMES, "network")
    if budgets is None or networks is None:
        return 2
    if not os.environ.get("SPARSE_SWEEPS_DATA"):
        print("error: SPARSE_SWEEPS_DATA is not set: point it at the data root (the folder holding MNIST/raw)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    runs = plan(tuple(b for b in BUDGETS if b.name in budgets), tuple(n for n in NETWORKS if n.name in networks))
    todo = [r for r in runs if not r.path.exists()]
    print(f"plan: {len(runs)} runs, {len(runs) - len(todo)} done, {len(todo)} to go; {args.jobs} at a time; "
          f"results in {RESULTS.relative_to(ROOT)}", flush=True)
    if args.dry_run or not todo:
        for r in todo:
            print(f"  todo  {r}")
        return 0

    code = git_commit()

    def on_signal(signum, _frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    failures = 0
    pool = cf.ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(args.nice,))
    try:
        futures = {pool.submit(run_one, r, code): r for r in todo}
        for fut in cf.as_completed(futures):
            r = futures[fut]
            try:
                summary = fut.result()
            except Exception:
                failures += 1
                log.exception("run %s failed", r)
                continue
            write_json(r.path, summary)
            last = summary["epochs"][-1]
            print(f"done {r}: val acc {100 * last['val_accuracy']:.2f} %, noise score {last['val_noise_score']:,}, "
                  f"{summary['wall_seconds']:.0f} s", flush=True)
    except KeyboardInterrupt:
        print("stopping: finished runs are saved; the others start again next time", flush=True)
        kill_pool(pool)
        return 130
    pool.shutdown()
    print(f"finished: {len(todo) - failures} run(s) written, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
