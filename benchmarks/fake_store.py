"""A sweep store with N finished trials, written directly (no training, no Ray, no MLflow): the saved
spec at ROOT/specs/NAME.yaml and an Optuna study in ROOT/optuna.db whose trials carry what a real
sweep's do (objective values, baseline names, configs, validation curves, test figures). The CLI's
read commands (status, list, best, report) work on it as on a real sweep. Used by the CLI tests and
by benchmarks/bench_cli.py."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.search.record import IMPORTANCES, OBJECTIVES
from sweeps.spec_store import spec_path
from sweeps.spec import load_spec

PARENT_RUN_ATTR = "mlflow_parent_run_id"


def build_store(root: Path, name: str, trials: int, preset: str = "mnist-quick", seed: int = 0,
                replicates: int = 0) -> Path:
    """Write sweep ``name`` (the ``preset`` spec) with ``trials`` trials under ``root``; returns root.
    About 1 in 20 searched trials failed and 1 in 20 was stopped early; the rest are COMPLETE.
    ``replicates`` > 0: then the spec's confirmation, with that many seeds: each candidate and
    baseline again, its values moved by seed noise (sd 0.003 accuracy, 150 noise points)."""
    root = Path(root).resolve()
    spec = load_spec(preset, stores_root=str(root))
    budget = dataclasses.replace(spec.budget, trials=max(0, trials - len(spec.baselines)))
    confirm = None
    if replicates:
        from sweeps.spec import Confirm

        confirm = Confirm(top=min(2, budget.trials), seeds=replicates)
    spec = dataclasses.replace(spec, name=name, budget=budget, confirm=confirm)  # the trials are the whole budget
    path = spec_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_yaml())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=spec.stores.resolved().optuna_storage,
                                directions=["maximize", "maximize"])
    study.set_user_attr(PARENT_RUN_ATTR, "fake")
    rng = random.Random(seed)
    levels = [round(0.05 * i, 2) for i in range(11)]
    dists = {p.name: FloatDistribution(p.low, p.high, log=p.log) for p in spec.space}
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    made = []
    for number in range(trials):
        baseline = spec.baselines[number].name if number < len(spec.baselines) else ""
        params = {} if baseline else {k: (d.low * (d.high / d.low) ** rng.random() if d.log
                                          else rng.uniform(d.low, d.high)) for k, d in dists.items()}
        acc = rng.uniform(0.80, 0.99)
        curve = [max(0.0, acc - rng.uniform(0.0, 0.08) * i) for i in range(len(levels))]
        noise = float(sum(round(a * 1000) for a in curve))
        roll = rng.random()
        state = TrialState.COMPLETE if baseline or roll > 0.1 else (TrialState.FAIL if roll < 0.05 else TrialState.PRUNED)
        attrs = {"ray_trial_id": f"fake_{number:05d}", "config": params if not baseline else {"baseline": baseline}}
        if baseline:
            attrs["baseline"] = baseline
        if state == TrialState.COMPLETE:
            attrs.update({"test_accuracy": acc - 0.005, "test_noise_score": noise - 50.0, "noise_max": 11_000.0,
                          "val_curve": {"kind": "mnist-pixels", "levels": levels, "accuracies": curve}})
        elif state == TrialState.FAIL:
            attrs["fail_reason"] = "raised an error after its retries; see its MLflow run"
        else:
            attrs.update({"stopped_at_epoch": 1, "early_val_accuracy": acc})
        t = create_trial(state=state, values=[acc, noise] if state == TrialState.COMPLETE else None,
                         params=params, distributions={k: dists[k] for k in params}, user_attrs=attrs)
        t.datetime_start = t0 + timedelta(seconds=30 * number)
        t.datetime_complete = t.datetime_start + timedelta(seconds=60)
        made.append(t)
    if replicates:
        made += _replicates(spec, made, rng, t0 + timedelta(seconds=30 * trials))
    study.add_trials(made)
    # What a finished sweep keeps: its importances, fitted once when it ended (reports read them).
    names = [p.name for p in spec.space]
    study.set_user_attr(IMPORTANCES, {obj: {n: 1.0 / len(names) for n in names} for obj in OBJECTIVES})
    return root


def _replicates(spec, made: list, rng: random.Random, start: datetime) -> list:
    """What `SweepStudy`'s confirmation adds: for every candidate (`sweeps.search.confirm.candidates` of the
    searched COMPLETE trials) and baseline, ``spec.confirm.seeds`` trials of its config."""
    from sweeps.search.confirm import candidates

    number = {id(t): i for i, t in enumerate(made)}  # what add_trials numbers them (create_trial leaves -1)
    searched = [t for t in made if t.state == TrialState.COMPLETE and "baseline" not in t.user_attrs]
    sources = [searched[i] for i in candidates([t.values for t in searched], spec.confirm.top)]
    sources += [t for t in made if "baseline" in t.user_attrs]
    out = []
    for src in sources:
        src_number = number[id(src)]
        for k in range(1, spec.confirm.seeds + 1):
            acc = min(1.0, max(0.0, src.values[0] + rng.gauss(0, 0.003)))
            noise = src.values[1] + rng.gauss(0, 150)
            attrs = {**src.user_attrs, "replicate_of": src_number, "replicate_k": k, "model_seed": spec.replicate_seed(k),
                     "config": {**src.user_attrs["config"], "replicate_of": src_number, "seed": spec.replicate_seed(k)},
                     "ray_trial_id": f"fake_rep_{src_number:05d}_{k}", "test_accuracy": acc - 0.005,
                     "test_noise_score": noise - 50.0}
            t = create_trial(state=TrialState.COMPLETE, values=[acc, noise], user_attrs=attrs)
            t.datetime_start = start + timedelta(seconds=30 * len(out))
            t.datetime_complete = t.datetime_start + timedelta(seconds=60)
            out.append(t)
    return out
