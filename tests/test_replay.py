"""The replay simulator: the service's own study rules and early stopping in simulated time, the
table loader's schema checks, the surrogate, and the errors a spec gets before anything starts."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from sweeps.errors import SpecError
from sweeps.replay import TableError, fit_surrogate, holdout, load_table, simulate
from sweeps.replay.compare import Variant, quantiles, run_variant, summarize
from sweeps.replay.truth import reference_point
from sweeps.spec import Confirm, EarlyStopping

from replay_helpers import SPEC, write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return load_table(write_table(tmp_path_factory.mktemp("replay") / "table.jsonl.gz"))


@pytest.fixture(scope="module")
def surrogate(table):
    return fit_surrogate(table)


def _spec(table, trials=18, workers=4, algorithm="tpe-mv", early_stopping=None, confirm=None):
    spec = table.spec
    return dataclasses.replace(
        spec, budget=dataclasses.replace(spec.budget, trials=trials, max_concurrent=workers),
        searcher=dataclasses.replace(spec.searcher, algorithm=algorithm),
        early_stopping=None if early_stopping is None else EarlyStopping(**early_stopping),
        confirm=None if confirm is None else Confirm(*confirm),
    )


def test_simulator_is_deterministic_for_a_seed(table, surrogate):
    spec = _spec(table, trials=10)
    a, b = simulate(spec, surrogate, seed=3), simulate(spec, surrogate, seed=3)
    assert [dataclasses.astuple(t) for t in a.trials] == [dataclasses.astuple(t) for t in b.trials]
    c = simulate(spec, surrogate, seed=4)
    assert [t.params for t in c.trials] != [t.params for t in a.trials]


def test_twenty_trial_sweep_runs_in_seconds_with_the_service_rules(table, surrogate):
    spec = _spec(table, trials=18, workers=4)
    t0 = time.perf_counter()
    result = simulate(spec, surrogate, seed=0)
    assert time.perf_counter() - t0 < 20
    assert len(result.trials) == 20 and all(t.state == "COMPLETE" for t in result.trials)
    # Baselines first: the first two trials asked are the spec's baselines, in order.
    by_number = sorted(result.trials, key=lambda t: t.number)
    assert [t.baseline for t in by_number[:2]] == ["dense", "dense-dropout"]
    assert all(t.baseline is None for t in by_number[2:])
    # Pending trials: with 4 workers the sampler proposes while up to 3 others run.
    assert max(t.pending_at_ask for t in result.trials) == 3
    assert [t.pending_at_ask for t in by_number[:4]] == [0, 1, 2, 3]
    # The anytime hypervolume never decreases.
    hv, epochs = result.anytime(reference_point(surrogate))
    assert len(hv) == 18  # one point per searched trial ended: baselines are not counted
    assert np.all(np.diff(hv) >= 0) and hv[-1] > 0
    assert np.all(np.diff(epochs) >= 0) and epochs[-1] == 20 * spec.epochs


def test_relative_samplers_model_the_searched_trials_despite_baselines(table, surrogate):
    """Baselines have no params; without hiding them GP and NSGA-II would sample at random."""
    spec = _spec(table, trials=14, workers=1)
    random = simulate(dataclasses.replace(spec, searcher=dataclasses.replace(spec.searcher, algorithm="random")),
                      surrogate, seed=0)
    for algorithm in ("gp", "nsga2"):
        other = simulate(dataclasses.replace(spec, searcher=dataclasses.replace(spec.searcher, algorithm=algorithm)),
                         surrogate, seed=0)
        startup = 2 + 4  # baselines, then the start-up trials (random with the same seed)
        later = [t.params for t in sorted(other.trials, key=lambda t: t.number)[startup + 2:]]
        random_later = [t.params for t in sorted(random.trials, key=lambda t: t.number)[startup + 2:]]
        assert later != random_later, algorithm


def test_pareto_early_stopping_prunes_and_charges_fewer_epochs(table, surrogate):
    spec = _spec(table, trials=24, workers=4,
                 early_stopping={"rule": "pareto", "grace_period": 1, "reduction_factor": 3})
    result = simulate(spec, surrogate, seed=1)
    states = [t.state for t in result.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert all(t.epochs in (1, 3) for t in pruned)  # rungs at epochs 1 and 3 of 4
    assert result.trials[-1].epochs_charged == sum(t.epochs for t in result.trials) < 26 * spec.epochs


def test_trials_to_target_counts_runs_that_never_reach_as_beyond_the_budget():
    assert quantiles([3, 5, 7, np.inf]) == [4.5, 6.0, None]
    assert quantiles([3, 5, np.inf, np.inf], [50]) == [None]  # half never reach: the median is beyond
    assert quantiles([3, 5, 7, 9], [50]) == [6.0]  # not the lower middle value


def test_summarize_scores_the_truth_and_counts_searched_trials(table, surrogate):
    spec = _spec(table, trials=10, workers=2, confirm=(2, 2))
    results = {name: run_variant(spec, Variant(name, name, confirm=(2, 2)), surrogate, [0, 1, 2])
               for name in ("random", "tpe-mv")}
    summary = summarize(results, reference_point(surrogate), noise_sd=0.02)
    random = summary["variants"]["random"]
    ref = reference_point(surrogate)

    def area(points):  # 2-D hypervolume above ref (both maximized), by hand: rectangles by falling accuracy
        total, top = 0.0, ref[1]
        for acc, noise in sorted((p for p in points if p[0] > ref[0] and p[1] > ref[1]), reverse=True):
            if noise > top:
                total, top = total + (acc - ref[0]) * (noise - top), noise
        return total

    hand = []
    for r in results["random"]:  # the truth of the handed-over front, from the surrogate itself
        firsts = {t.number: t for t in r.trials}
        hand.append(area([surrogate.truth(None if firsts[n].baseline else firsts[n].params, firsts[n].baseline)
                          for n in r.handover.front]))
    assert random["true_finals"] == pytest.approx(hand)
    assert summary["target"] == pytest.approx(sorted(hand)[1])  # the median of three runs
    assert len(random["true_curve_by_trials"]["median"]) == 10  # searched trials only
    # equal epochs: search (12 trials) and replicates ((2 + 2) x 2) of 4 epochs each
    assert summary["epoch_budget"] == (12 + 8) * spec.epochs
    # the median run reaches the target by its last searched trial at the latest; the per-run
    # counts are the first searched trial whose true curve reaches it, in run order
    median_run = results["random"][hand.index(sorted(hand)[1])]
    assert median_run.true_curve[-1] == pytest.approx(summary["target"])
    per_run = random["trials_to_target"]["per_run"]
    assert per_run[hand.index(sorted(hand)[1])] is not None and per_run[hand.index(sorted(hand)[1])] <= 10
    for r, reach in zip(results["random"], per_run):
        if reach is None:
            assert max(r.true_curve) < summary["target"] - 1e-12
        else:
            assert r.true_curve[reach - 1] >= summary["target"] - 1e-12 and all(v < summary["target"] - 1e-12 for v in r.true_curve[:reach - 1])


def test_surrogate_fidelity_is_measured_on_held_out_configs(table):
    f = holdout(table, fraction=0.25)
    assert f.n_test == 15 and f.n_train == 45
    assert f.spearman_accuracy > 0.5 and f.spearman_noise > 0.8  # the synthetic trends are strong
    assert f.mae_noise < 0.05 and "Spearman" in f.line()


def test_flat_forest_predicts_what_scikit_learn_predicts(table):
    from sweeps.replay.surrogate import FlatForest, _forest

    rows = [r for r in table.searched() if r["kind"] == "design"]
    acc, _, _ = table.curves(rows)
    x = table.features([r["params"] for r in rows])
    forest = _forest(0).fit(x, acc)
    rng = np.random.default_rng(3)
    probe = np.vstack([x, x[:20] + rng.normal(0, 0.2, (20, x.shape[1]))])  # fitted and off-grid configs
    assert np.array_equal(FlatForest(forest).predict(probe), forest.predict(probe))


def _rewrite(src, dst, edit):
    lines = gzip.open(src, "rt").read().splitlines()
    edit(lines)
    with gzip.open(dst, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return dst


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls.__setitem__(0, json.dumps({"header": {"format": "other", "version": 1}})), "format 'other'"),
        (lambda ls: ls.__setitem__(1, json.dumps({**json.loads(ls[1]), "epochs": json.loads(ls[1])["epochs"][:2]})),
         "line 2 (design-0): expected 4 epochs, got 2"),
        (lambda ls: ls.__setitem__(1, json.dumps({k: v for k, v in json.loads(ls[1]).items() if k != "params"})),
         "line 2 (design-0): missing 'params'"),
        (lambda ls: ls.__setitem__(1, json.dumps({**json.loads(ls[1]), "params": {"percent_on": 0.1}})),
         "differ from the spec's space"),
        (lambda ls: ls.__setitem__(2, ls[2].replace('"val_noise_score"', '"noise"')),
         "line 3 (design-1) epochs[0]: missing ['val_noise_score']"),
    ],
)
def test_table_loader_names_what_is_wrong(table, tmp_path, edit, message):
    bad = _rewrite(table.path, tmp_path / "bad.jsonl.gz", edit)
    with pytest.raises(TableError, match=re.escape(message)):
        load_table(bad)


def test_table_loader_missing_file(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        load_table(tmp_path / "nope.jsonl.gz")


def test_check_covers_names_the_key(table):
    data = yaml.safe_load(SPEC.read_text())
    data["space"]["percent_on"]["high"] = 0.9
    from sweeps.spec import SweepSpec

    with pytest.raises(SpecError, match=r"space.percent_on: range \[0.05, 0.9\] is outside the table's \[0.05, 0.4\]"):
        table.check_covers(SweepSpec.from_dict(data))
    data = yaml.safe_load(SPEC.read_text())
    data["space"]["dropout"] = {"choices": [0.0, 0.5]}
    with pytest.raises(SpecError, match="space.dropout: not searched in the table"):
        table.check_covers(SweepSpec.from_dict(data))


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda d: d.update(searcher={"algorithm": "bayes"}), "searcher.algorithm: 'bayes' is not a searcher"),
        (lambda d: d.update(recipe={"epochs": 1}, early_stopping={"rule": "pareto"}), "early_stopping: stops trials between epochs"),
        (lambda d: d["space"].update(weight_density={"low": 0.01, "high": 1.0}), "space.weight_density: range [0.01, 1]"),
    ],
)
def test_simulate_refuses_with_one_line(table, tmp_path, change, key):
    data = yaml.safe_load(SPEC.read_text())
    change(data)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    proc = _cli(["simulate", str(spec), "--table", table.path, "--seeds", "1"], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout.strip()
    assert key in out and len(out.splitlines()) == 1, out
    assert "Traceback" not in proc.stderr


def test_simulate_command_end_to_end(table, tmp_path):
    data = yaml.safe_load(SPEC.read_text())
    data["budget"] = {"trials": 8, "max_concurrent": 2}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "summary.json"
    proc = _cli(["simulate", str(spec), "--table", table.path, "--seeds", "2", "--searchers", "tpe-mv",
                 "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Spearman" in proc.stdout and "tpe-mv" in proc.stdout and "random" in proc.stdout
    summary = json.loads(out.read_text())
    assert set(summary["variants"]) == {"random", "tpe-mv"} and summary["seeds"] == 2


def test_fewer_trials_to_target_is_tested_one_sided_with_never_as_beyond(table, surrogate):
    spec = _spec(table, trials=10, workers=2, confirm=(2, 2))
    runs = run_variant(spec, Variant("random", "random", confirm=(2, 2)), surrogate, list(range(6)))
    top = max(max(r.true_curve) for r in runs)
    # the same sweeps, as if a searcher had reached the best value at once, or never beaten dense
    fast = [dataclasses.replace(r, true_curve=(top,) * len(r.true_curve)) for r in runs]
    never = [dataclasses.replace(r, true_curve=(0.0,) * len(r.true_curve)) for r in runs]
    summary = summarize({"random": runs, "fast": fast, "never": never}, reference_point(surrogate))
    v = summary["variants"]
    assert v["random"]["mannwhitney_p_fewer_trials_to_target"] is None
    assert v["fast"]["trials_to_target"]["per_run"] == [1] * 6 and v["fast"]["trials_to_target"]["within_half"] == 6
    assert summary["half_of_target_trials"] == 5.0  # half of random's 10 searched trials
    assert v["never"]["trials_to_target"]["reached"] == 0
    assert v["fast"]["mannwhitney_p_fewer_trials_to_target"] < 0.05 < 0.95 < v["never"]["mannwhitney_p_fewer_trials_to_target"]
