"""Can a noise-aware searcher run here? Optuna's BoTorch integration (qNEHVI) timed on the CPU.

Not a dependency of the project: install the packages beside it, outside the project's venv, e.g.

    pip install --no-deps --target /tmp/botorch-site optuna-integration==5.0.0 botorch==0.18.1 \\
        gpytorch==1.15.2 linear_operator==0.6.1 pyre-extensions multipledispatch typing-inspect \\
        mypy-extensions jaxtyping wadler-lindig
    PYTHONPATH=/tmp/botorch-site python -m benchmarks.probe_botorch

It runs `BoTorchSampler(candidates_func=qnehvi_candidates_func)` (noisy expected hypervolume
improvement) on a 4-parameter, 2-objective noisy problem shaped like the replay space (10 random
start-up trials, then one proposal at a time, as a sweep with one free worker asks) and records
the seconds per proposal, the package versions and the machine in
``benchmarks/results/replay/botorch-probe.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "replay" / "botorch-probe.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.filterwarnings("ignore")

    import numpy as np
    import optuna
    import torch

    from benchmarks.common import machine_record

    machine = machine_record(HERE.parent, threads=1)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    import botorch
    import gpytorch
    import optuna_integration
    from optuna_integration.botorch import BoTorchSampler, qnehvi_candidates_func

    import_seconds = time.perf_counter() - t0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        k = trial.suggest_float("percent_on", 0.05, 0.4, log=True)
        d = trial.suggest_float("weight_density", 0.1, 1.0)
        b = trial.suggest_float("boost_strength", 0.0, 2.0)
        lr = trial.suggest_float("lr", 0.005, 0.05, log=True)
        acc = 0.95 - 0.03 * abs(np.log(lr / 0.03)) - 0.05 * (0.4 - k) + 0.002 * b + rng.normal(0, 0.005)
        noise = 0.75 + 0.4 * (0.4 - k) - 0.05 * d + rng.normal(0, 0.03)
        return float(acc), float(noise)

    sampler = BoTorchSampler(candidates_func=qnehvi_candidates_func, n_startup_trials=10, seed=0)
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    seconds = []
    for _ in range(args.trials):
        t = time.perf_counter()
        trial = study.ask()
        values = objective(trial)
        seconds.append(time.perf_counter() - t)
        study.tell(trial, values)
    model = seconds[10:]
    record = {
        "benchmark": "BoTorch qNEHVI proposal time", "trials": args.trials, "startup_trials": 10,
        "versions": {"optuna": optuna.__version__, "optuna_integration": optuna_integration.__version__,
                     "botorch": botorch.__version__, "gpytorch": gpytorch.__version__, "torch": torch.__version__},
        "import_seconds": import_seconds, "seconds_per_trial": seconds,
        "model_proposal_seconds": {"median": float(np.median(model)), "min": float(min(model)), "max": float(max(model)),
                                   "n": len(model)},
        "machine": machine | {"load_after": list(os.getloadavg())},
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "seconds_per_trial"}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
