"""Reproduce the paper's Table 1 (all 8 MNIST networks) as a resumable background campaign.

Every run trains one network with the paper's recipe (`sparsity.recipe.paper_recipe`, pinned to
the paper's configuration file by tests/test_recipe.py) and scores it on the official 10,000 test
images with the paper's noise protocol (mnist-pixels, 11 levels, noise seed 0: the same noisy
images for every net), twice: the final-epoch model, and (the paper's own table protocol, its
`test_score_table.py`) the model of the epoch with the highest test accuracy, whose accuracy and
noise score that table reports (`best_test_epoch`; the test accuracy is measured after every
epoch). One JSON per run is written, atomically, to

    benchmarks/results/table1/<variant>/<network>-seed<S>.json

with the commit, machine, thread count, load average at start and end, and wall time. A run
whose file exists is skipped; a run that was stopped resumes from its last finished epoch
(checkpoints under benchmarks/out/table1-checkpoints/, deleted when the run's JSON is written).
`benchmarks/table1_report.py` builds the table in docs/paper.md and the Figure-5 plot from
those files alone.

Variants (the data the net trains on; everything else is the paper's):
  paper     all 60,000 training images, no validation split (the paper's ``validation = 1.0``)
  split55k  55,000 training images (the 5,000 validation images held out, as sweeps do): the
            ablation of training-set size
  repeat    a second run of a `paper` run, to check that the same seed gives the same numbers
  conv-half every conv layer's weights 50 % sparse (a fixed random mask), dense nets included: the
            authors' working code had this default (`weightSparsityCNN=0.5`) from 11 to 25 March
            2019, before the paper's config passed `weight_sparsity_cnn = 1.0` through
            (numenta/htmresearch 2202840e, 99f80ce5); the ablation asks whether Table 1 carries it
  topk      every k-winners layer keeps exactly k units, as the paper's code did (`torch.topk`); ours
            keeps every unit tied with the k-th value (`break_ties=False`), which gives more than k
            on flat (all-background) patches: the ablation asks whether that moves the noise score

The default plan, in this order, so that a partial campaign covers every network early:
seeds 0-2 of all 8 networks, one repeat (Sparse CNN-1, seed 0), the conv-half ablation on Dense
and Sparse CNN-1 (seeds 0-1), the split55k ablation on Sparse CNN-1 (seeds 0-2), seeds 3-9 of
Dense and Sparse CNN-2, then seeds 3-9 of Sparse CNN-2 D3 (its ordering against Dense CNN-2 is the
one that more seeds can settle: at our spread it needs about 13 a side, W1 and SP3 30-35; it was
added when the first table showed that, and is 10 seeds whatever they show), then the topk ablation
on Sparse CNN-2 (seeds 0-2: the network furthest below the paper's noise score at 10 seeds).

    SPARSE_SWEEPS_DATA=<data root> python -m benchmarks.reproduce_paper [--jobs 2] [--dry-run]
        [--only NETWORK[,NETWORK]] [--variant paper|split55k|repeat|conv-half|topk] [--seeds 0-9]

Stop it with Ctrl-C or SIGTERM at any time; run the same command again to go on.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import logging
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "table1"
CHECKPOINTS = ROOT / "benchmarks" / "out" / "table1-checkpoints"

from benchmarks.common import cpu_model, kill_pool, parse_seeds, write_json  # noqa: E402

log = logging.getLogger("reproduce_paper")

NETWORKS = (
    "dense-cnn1", "dense-cnn2", "sparse-cnn1", "sparse-cnn2",
    "dense-cnn2-sp3", "sparse-cnn2-d3", "sparse-cnn2-w1", "sparse-cnn2-dsw",
)
VARIANTS = {"paper": 0, "split55k": 5000, "repeat": 0, "conv-half": 0, "topk": 0}  # variant -> validation_size


@dataclass(frozen=True)
class Run:
    network: str
    seed: int
    variant: str = "paper"

    @property
    def path(self) -> Path:
        return RESULTS / self.variant / f"{self.network}-seed{self.seed}.json"

    @property
    def checkpoint(self) -> Path:
        return CHECKPOINTS / self.variant / f"{self.network}-seed{self.seed}.pt"

    def __str__(self) -> str:
        return f"{self.variant}/{self.network}/seed {self.seed}"


def default_plan() -> list[Run]:
    plan = [Run(net, seed) for seed in range(3) for net in NETWORKS]
    plan += [Run("sparse-cnn1", 0, "repeat")]
    plan += [Run(net, seed, "conv-half") for seed in range(2) for net in ("dense-cnn1", "sparse-cnn1")]
    plan += [Run("sparse-cnn1", seed, "split55k") for seed in range(3)]
    plan += [Run(net, seed) for seed in range(3, 10) for net in ("dense-cnn2", "sparse-cnn2")]
    plan += [Run("sparse-cnn2-d3", seed) for seed in range(3, 10)]
    plan += [Run("sparse-cnn2", seed, "topk") for seed in range(3)]
    return plan


def git_commit() -> dict[str, Any]:
    """HEAD, and whether the code a run executes (sparsity/, this script) differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--", "sparsity", "benchmarks/reproduce_paper.py"))}


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "threads_per_run": 1}


# ---------------------------------------------------------------- one run (in a worker process)

_DATA: dict[int, Any] = {}


class BestEpoch:
    """The paper's Table 1 protocol (its `test_score_table.py`): after every epoch the test accuracy
    is measured, and a run reports the test accuracy and noise score of the epoch with the highest
    test accuracy (the first such epoch). This keeps each epoch's test accuracy and the state of the
    best epoch so far, beside the run's checkpoint, so a resumed run keeps them."""

    def __init__(self, checkpoint: Path, test, batch_size: int) -> None:
        import torch

        self.torch, self.test, self.batch_size = torch, test, batch_size
        self.log_path = checkpoint.with_name(checkpoint.stem + ".epochs.json")
        self.state_path = checkpoint.with_name(checkpoint.stem + ".best.pt")
        self.accuracies: list[float] = []
        self.best_epoch = 0
        if self.log_path.exists() and self.state_path.exists():
            saved = json.loads(self.log_path.read_text())
            self.accuracies, self.best_epoch = saved["test_accuracy_by_epoch"], saved["best_epoch"]

    def __call__(self, result, model) -> None:
        from sparsity.train import evaluate

        if result.epoch <= len(self.accuracies):
            return  # recorded before a resume
        _, acc = evaluate(model, self.test, self.batch_size)
        self.accuracies.append(acc)
        if acc > max(self.accuracies[:-1], default=-1.0):  # strictly better: the first maximum, as np.argmax
            self.best_epoch = result.epoch
            tmp = self.state_path.with_name(self.state_path.name + ".tmp")
            self.torch.save({k: v.clone() for k, v in model.state_dict().items()}, tmp)
            os.replace(tmp, self.state_path)
        write_json(self.log_path, {"test_accuracy_by_epoch": self.accuracies, "best_epoch": self.best_epoch})

    def score(self, model, data, config) -> dict[str, Any]:
        """The best epoch's model scored as the final one is (the model is left as it was)."""
        import copy

        from sparsity.noise import noise_curve
        from sparsity.train import load_tensors

        best = copy.deepcopy(model)
        best.load_state_dict(load_tensors(self.state_path))
        curve = noise_curve(best, data.test, data.featurize, kind=config.noise.kind_for("mnist"),
                            levels=config.noise.levels, seed=config.noise.seed, batch_size=self.batch_size)
        return {"epoch": self.best_epoch, "test_accuracy": self.accuracies[self.best_epoch - 1],
                "test_noise_score": curve.noise_score, "test_curve": curve.to_dict(),
                "test_accuracy_by_epoch": self.accuracies}

    def remove(self) -> None:
        self.log_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


def with_conv_density(config, density: float):
    """``config`` with every conv layer's weights at ``density`` (the rest unchanged)."""
    import dataclasses

    net = config.network
    conv = tuple(dataclasses.replace(layer, weight_density=density) for layer in net.conv)
    return dataclasses.replace(config, network=dataclasses.replace(net, conv=conv))


def with_break_ties(config, break_ties: bool = True):
    """``config`` with every k-winners layer keeping exactly k units (``break_ties``), the rest unchanged."""
    import dataclasses

    net = config.network
    kw = dataclasses.replace(net.kwinners, break_ties=break_ties)
    return dataclasses.replace(config, network=dataclasses.replace(net, kwinners=kw))


CHANGES = {"conv-half": lambda config: with_conv_density(config, 0.5), "topk": with_break_ties}  # variant -> config change


def run_one(run: Run, jobs: int, code: dict[str, Any]) -> dict[str, Any]:
    import torch

    from sparsity.data import DataConfig, load_dataset
    from sparsity.experiment import paper_experiment, run_experiment

    torch.set_num_threads(1)
    data_config = DataConfig(name="mnist", validation_size=VARIANTS[run.variant])
    if data_config.validation_size not in _DATA:
        _DATA[data_config.validation_size] = load_dataset(data_config)
    data = _DATA[data_config.validation_size]
    config = paper_experiment(run.network, "mnist", seed=run.seed, data=data_config)
    if run.variant in CHANGES:
        config = CHANGES[run.variant](config)
    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    resumed = run.checkpoint.exists()
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    best = BestEpoch(run.checkpoint, data.test, config.recipe.eval_batch_size)
    result = run_experiment(config, dataset=data, threads=1, device="cpu", checkpoint_path=run.checkpoint,
                            on_epoch=best)
    paper_protocol = best.score(result.model, data, config)
    wall = time.perf_counter() - t0
    summary = result.summary()
    summary.update(
        best_test_epoch=paper_protocol,  # the paper's table: the epoch of highest test accuracy
        variant=run.variant,
        split_sizes={"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
        epochs=config.recipe.epochs,
        wall_seconds=round(wall, 1),
        resumed_from_checkpoint=resumed,  # then wall_seconds covers only the epochs after it
        started=started.isoformat(timespec="seconds"),
        finished=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        load_average={"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
        machine={**machine(), "jobs": jobs, "niceness": os.nice(0)},
        code=code,
    )
    return summary


def _worker_init(niceness: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    os.nice(niceness)  # a background campaign yields to interactive work (Ray's own workers run at nice 15)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(name)s: %(message)s", force=True)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one torch thread each (default 2)")
    parser.add_argument("--only", help="comma-separated networks (default: the plan's)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="only this variant")
    parser.add_argument("--seeds", help="seeds, e.g. 0-9 or 0,3 (with --only or --variant: replaces the plan)")
    parser.add_argument("--dry-run", action="store_true", help="list what would run, train nothing")
    parser.add_argument("--nice", type=int, default=19,
                        help="niceness of the training processes (default 19: a sweep's Ray workers, at nice 15, and "
                             "other work go first; 0 for a dedicated machine)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    if args.seeds and (args.only or args.variant):
        nets = args.only.split(",") if args.only else list(NETWORKS)
        plan = [Run(n, s, args.variant or "paper") for s in parse_seeds(args.seeds) for n in nets]
    else:
        plan = default_plan()
        if args.only:
            plan = [r for r in plan if r.network in args.only.split(",")]
        if args.variant:
            plan = [r for r in plan if r.variant == args.variant]
        if args.seeds:
            plan = [r for r in plan if r.seed in parse_seeds(args.seeds)]
    unknown = sorted({r.network for r in plan} - set(NETWORKS))
    if unknown:
        print(f"error: --only: unknown network(s) {', '.join(unknown)}; choose from {', '.join(NETWORKS)}", file=sys.stderr)
        return 2
    if not os.environ.get("SPARSE_SWEEPS_DATA") and not (ROOT / "data").exists():
        print("error: SPARSE_SWEEPS_DATA is not set: point it at the data root (the folder holding MNIST/raw)",
              file=sys.stderr)
        return 2
    todo = [r for r in plan if not r.path.exists()]
    print(f"plan: {len(plan)} runs, {len(plan) - len(todo)} done, {len(todo)} to go; {args.jobs} at a time; "
          f"results in {RESULTS.relative_to(ROOT)}", flush=True)
    for r in todo:
        print(f"  {'resume' if r.checkpoint.exists() else 'todo  '}  {r}")
    if args.dry_run or not todo:
        return 0

    code = git_commit()
    stop = {"now": False}

    def on_signal(signum, _frame) -> None:
        stop["now"] = True
        print(f"signal {signum}: finishing nothing new; runs in flight stop now and resume from their last epoch",
              flush=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    failures = 0
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(args.jobs, mp_context=ctx, initializer=_worker_init, initargs=(args.nice,))
    try:
        futures = {pool.submit(run_one, r, args.jobs, code): r for r in todo}
        for fut in cf.as_completed(futures):
            r = futures[fut]
            try:
                summary = fut.result()
            except Exception:
                failures += 1
                log.exception("run %s failed", r)
                continue
            write_json(r.path, summary)
            r.checkpoint.unlink(missing_ok=True)
            for side in (".epochs.json", ".best.pt"):
                r.checkpoint.with_name(r.checkpoint.stem + side).unlink(missing_ok=True)
            print(f"done {r}: test acc {100 * summary['test_accuracy']:.2f} %, noise score "
                  f"{summary['test_noise_score']:,}, {summary['wall_seconds']:.0f} s -> {r.path.relative_to(ROOT)}",
                  flush=True)
    except KeyboardInterrupt:
        print("stopping: killing the workers (finished runs are saved; the others resume from their checkpoints)",
              flush=True)
        kill_pool(pool)
        return 130
    pool.shutdown()
    print(f"finished: {len(todo) - failures} run(s) written, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
