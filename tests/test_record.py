"""The sweep's record read once per command: `best` and `export` choose through one path and
print the same comparison, paired over the model seeds both configs were trained with."""

from __future__ import annotations

import math

import pytest
import yaml
from scipy import stats

from fake_store import build_store
from sweeps.cli import commands as cli
from sweeps.results import read
from sweeps.search import record as rec


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store"), "reps", trials=12, replicates=3)


def _comparison_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(("trial #", "val_accuracy vs", "val_noise_score vs"))]


def test_best_and_export_print_the_same_paired_comparison(store, tmp_path, monkeypatch, capsys):
    from sweeps.results import deploy

    assert cli.main(["best", "reps", "--root", str(store), "--out", str(tmp_path / "b.yaml")]) == 0
    best_out = capsys.readouterr().out
    handed = {}

    def export(spec, number, doc, out, dense, formats=()):  # the MLflow part: not this test's
        handed.update(number=number, doc=doc, dense=dense)
        return out

    monkeypatch.setattr(deploy, "export", export)
    assert cli.main(["export", "reps", "--root", str(store), "--out", str(tmp_path / "model")]) == 0
    export_out = capsys.readouterr().out
    assert _comparison_lines(best_out) and _comparison_lines(best_out) == _comparison_lines(export_out)

    doc = yaml.safe_load((tmp_path / "b.yaml").read_text())
    assert handed["number"] == doc["source"]["optuna_trial_number"]
    assert handed["doc"]["source"]["verdicts"] == doc["source"]["verdicts"]
    assert doc["source"]["claims_basis"] == "adjusted for the choice"
    verdicts = doc["source"]["verdicts"]
    assert len(verdicts) == 4 and all(v["test"] == "paired" for v in verdicts)  # 2 baselines x 2 objectives
    against = next(v for v in verdicts if v["objective"] == "val_accuracy")

    # By hand: the chosen config's replicates against the baseline's replicates with the same model
    # seed, at the first of two looks' level (O'Brien-Fleming spending: 2 - 2 Phi(z_0.975 / sqrt(1/2)))
    # shared by the 2 confirmed configs it was chosen among x 2 baselines x 2 objectives.
    trials = read.sweep_trials(read.saved_spec("reps", str(store)))
    chosen = doc["source"]["optuna_trial_number"]
    base_first = next(t for t in trials if t.user_attrs.get("baseline") == against["baseline"]
                      and "replicate_of" not in t.user_attrs)
    mine = {t.user_attrs["model_seed"]: t.values[0] for t in trials if t.user_attrs.get("replicate_of") == chosen}
    theirs = {t.user_attrs["model_seed"]: t.values[0] for t in trials
              if t.user_attrs.get("replicate_of") == base_first.number}
    diffs = [mine[s] - theirs[s] for s in sorted(mine)]
    assert len(diffs) == 3
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    level = (2 - 2 * stats.norm.cdf(stats.norm.ppf(0.975) / math.sqrt(0.5))) / 8
    half = stats.t.ppf(1 - level / 2, 2) * sd / math.sqrt(3)
    assert against["difference"] == pytest.approx(mean)
    assert (against["low"], against["high"]) == pytest.approx((mean - half, mean + half))
    assert against["confidence"] == pytest.approx(1 - level)


def test_best_reads_the_trials_once_and_the_chosen_one_again_in_full(store, tmp_path, monkeypatch):
    from sweeps.stores import optuna_tables

    calls = []
    real = optuna_tables.read_trials

    def counting(url, name, attrs=None, numbers=None, params=True):
        calls.append((None if attrs is None else tuple(attrs), None if numbers is None else tuple(numbers)))
        return real(url, name, attrs=attrs, numbers=numbers, params=params)

    monkeypatch.setattr(optuna_tables, "read_trials", counting)
    assert cli.main(["best", "reps", "--root", str(store), "--out", str(tmp_path / "b.yaml")]) == 0
    assert len(calls) == 2, calls
    (every, none), (full, numbers) = calls
    assert none is None and set(rec.CONFIG_ATTRS) <= set(every) and rec.MODEL_SEED in every
    assert len(numbers) == 1 and set(rec.CHOSEN_ATTRS) <= set(full)


def test_the_reader_resolves_the_stores_once(store, monkeypatch):
    from sweeps.stores.config import Stores

    built = []
    real = Stores.resolved

    def resolved(self):
        if not self.is_resolved:
            built.append(self.root)
        return real(self)

    monkeypatch.setattr(Stores, "resolved", resolved)
    reader = read.SweepReader.open("reps", str(store))
    reader.choose()
    assert reader.spec.stores.is_resolved and len(built) <= 1, built
    assert reader.front and reader.configs and reader.knee in {c.number for c in reader.front}


def test_a_seed_replicate_pairs_by_its_model_seed():
    """`config_summaries` keys each value by its trial's model seed (the first trial: FIRST)."""
    class T:
        def __init__(self, number, values, **attrs):
            self.number, self.values, self.user_attrs, self.params = number, values, attrs, {}
            self.state = type("S", (), {"name": "COMPLETE"})()

    trials = [T(0, [0.9, 10.0], baseline="dense"), T(1, [0.8, 20.0]),
              T(2, [0.91, 11.0], baseline="dense", replicate_of=0, model_seed=1),
              T(3, [0.81, 21.0], replicate_of=1, model_seed=1), T(4, [0.82, 22.0], replicate_of=1, model_seed=2)]
    by = {c.number: c for c in rec.config_summaries(trials)}
    assert by[0].seeds == (rec.FIRST, 1) and by[0].accuracy == (0.9, 0.91)  # a baseline keeps its first seed
    assert by[1].seeds == (1, 2) and by[1].accuracy == (0.81, 0.82)  # a searched config: its replicates only
    assert [c.number for c in rec.config_front(by.values())] == [0, 1]
