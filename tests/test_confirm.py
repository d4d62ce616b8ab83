"""Seed replicates: the statistics (`sweeps.search.confirm`), the spec section, the study's plan, and what
`sweeps best` may claim (on synthetic studies: no training)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweeps.results.best import sweep_claims
from sweeps.search.confirm import candidates, compare, confirmation_values, estimate, seeds_for_power
from sweeps.errors import SpecError
from sweeps.results.read import config_front, config_summaries
from sweeps.spec import SweepSpec
from sweeps.search.study import FINISHED, SweepStudy

from fake_store import build_store
from sweep_helpers import run_cli, tiny_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- the statistics ------------------------------------------------------------------------------


def test_estimate_is_the_student_t_interval_by_hand():
    e = estimate([0.90, 0.92, 0.94])
    # mean 0.92, sd 0.02, t(0.975, 2) = 4.302653: half-width 4.302653 * 0.02 / sqrt(3) = 0.049683
    assert e.mean == pytest.approx(0.92) and e.sd == pytest.approx(0.02) and e.n == 3
    assert (e.low, e.high) == (pytest.approx(0.92 - 0.0496828, abs=1e-6), pytest.approx(0.92 + 0.0496828, abs=1e-6))
    one = estimate([0.9])
    assert one.n == 1 and math.isnan(one.low) and one.to_dict()["low"] is None


def test_compare_claims_only_what_the_interval_supports():
    clear = compare([0.95, 0.96, 0.955], [0.90, 0.91, 0.905])
    assert clear.verdict == "better" and clear.low > 0 and clear.seeds_needed is None
    assert compare([0.90, 0.91, 0.905], [0.95, 0.96, 0.955]).verdict == "worse"
    straddles = compare([0.93, 0.90, 0.96], [0.91, 0.92, 0.90])  # +0.02 with a wide spread
    assert straddles.verdict == "not resolved" and straddles.low < 0 < straddles.high
    # seeds per config for 80 % power at the observed +0.02: two samples of sd sqrt((0.0009 + 0.0001) / 2),
    # two-sided 5 %, as statsmodels solves it (effect 0.02 / 0.02236 = 0.894)
    from statsmodels.stats.power import TTestIndPower

    n = TTestIndPower().solve_power(0.02 / math.sqrt(0.0005), alpha=0.05, power=0.8, alternative="two-sided")
    assert straddles.seeds_needed == math.ceil(n)
    single = compare([0.95], [0.90, 0.91])
    assert single.verdict == "one seed" and math.isnan(single.p_value)
    # Welch's test as SciPy computes it.
    from scipy import stats

    assert straddles.p_value == pytest.approx(stats.ttest_ind([0.93, 0.90, 0.96], [0.91, 0.92, 0.90],
                                                              equal_var=False).pvalue)


def test_seeds_for_power_matches_the_textbook_figure():
    # Two-sample t-test, alpha 0.05 two-sided, 80 % power: d = 1 needs 17 per group, d = 0.5 needs 64.
    assert seeds_for_power(1.0, 1.0) == 17
    assert seeds_for_power(0.5, 1.0) == 64
    assert seeds_for_power(0.0, 1.0) is None


def test_candidates_take_the_front_first_then_spread_and_confirmation_drops_the_selecting_seed():
    points = [(0.97, 0.90), (0.98, 0.85), (0.96, 0.95), (0.95, 0.80), (0.975, 0.88)]
    assert candidates(points, 2) == [1, 2]  # the front's two ends (infinite crowding)
    assert set(candidates(points, 4)) == {0, 1, 2, 4}  # the whole front before any dominated point
    assert candidates([], 3) == []
    assert confirmation_values([0.99], [0.95, 0.96], selected=True) == [0.95, 0.96]
    assert confirmation_values([0.90], [0.91], selected=False) == [0.90, 0.91]
    assert confirmation_values([0.99], [], selected=True) == [0.99]


# -- the spec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("confirm", "extra", "key"), [
    ({"top": 1, "seeds": 0}, {}, "confirm.seeds"),
    ({"top": 5, "seeds": 2}, {}, "confirm.top"),  # more than the 3 searched trials
    ({"top": 1, "seeds": 2}, {"baselines": []}, "confirm"),
    ({"top": "two", "seeds": 2}, {}, "confirm.top"),
    ({"tops": 1}, {}, "confirm"),
    ({"top": 1, "seeds": 2, "budget": 3}, {}, "confirm.budget"),  # below the first round's (1 + 1) x 2
    ({"top": 1, "seeds": 2, "budget": "lots"}, {}, "confirm.budget"),
    ({"top": 1, "seeds": 2, "looks": 0}, {}, "confirm.looks"),
    ({"top": 1, "seeds": 2, "margin": {"val_noise_score": 1.5}}, {}, "confirm.margin.val_noise_score"),  # a share
    ({"top": 1, "seeds": 2, "margin": {"val_accuracy": -1}}, {}, "confirm.margin.val_accuracy"),
    ({"top": 1, "seeds": 2, "margin": {"test_accuracy": 1}}, {}, "confirm.margin.test_accuracy"),
    ({"top": 1, "seeds": 2, "margin": 0.5}, {}, "confirm.margin"),
])
def test_bad_confirm_is_refused_in_one_line_naming_the_key(tmp_path: Path, confirm, extra, key):
    spec = tiny_spec("bad", budget={"trials": 3, "max_concurrent": 1}, confirm=confirm, **extra)
    with pytest.raises(SpecError, match=rf"^{key}\b"):
        SweepSpec.from_dict(spec)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = run_cli(["run", str(path), "--root", str(tmp_path / "store")], cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    assert proc.stdout.startswith(f"error: {key}") and not (tmp_path / "store").exists()


def test_confirm_round_trips_and_counts_its_trials():
    spec = SweepSpec.from_dict(tiny_spec("ok", budget={"trials": 3}, confirm={"top": 2, "seeds": 2}))
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    assert (spec.num_samples, spec.replicate_trials, spec.total_trials) == (4, 6, 10)
    assert [spec.replicate_seed(k) for k in (1, 2)] == [1, 2]
    assert SweepSpec.from_dict(tiny_spec("none")).confirm is None


# -- the study's plan -------------------------------------------------------------------------------


def _tell(study: SweepStudy, number: int, values, noise_max: float | None = None) -> None:
    from sweeps.search.trial_report import TrialReport

    study.tell(number, TrialReport(number=number, epoch=1, val_accuracy=values[0], val_noise_score=values[1],
                                   final=True, noise_max=noise_max))


def test_the_plan_runs_baselines_search_then_replicates_once_the_search_has_ended():
    spec = SweepSpec.from_dict(tiny_spec("plan", budget={"trials": 3}, confirm={"top": 2, "seeds": 2}))
    study = SweepStudy.in_memory(spec.study_plan())
    asked = [study.next_proposal() for _ in range(4)]
    assert [p.baseline for p in asked] == ["dense", None, None, None]
    assert study.next_proposal() is None  # the search has not ended: the candidates are not known
    for p, v in zip(asked, [(0.90, 1000), (0.95, 900), (0.93, 1100), (0.91, 950)]):
        _tell(study, p.number, v)
    reps = []
    while (p := study.next_proposal()) not in (None, FINISHED):
        reps.append(p)
    assert p is FINISHED or p == FINISHED
    # candidates: searched trials 1 (0.95, 900) and 2 (0.93, 1100), then the baseline; 2 seeds each
    assert [(r.replicate_of, r.seed) for r in reps] == [(1, 1), (1, 2), (2, 1), (2, 2), (0, 1), (0, 2)]
    assert reps[-1].baseline == "dense" and reps[-1].config()["seed"] == 2
    assert spec.trial(reps[0].config())[0].seed == 1  # the replicate trains with its own model seed
    trials = study.study.get_trials(deepcopy=False)
    assert [t.user_attrs.get("replicate_of") for t in trials][4:] == [1, 1, 2, 2, 0, 0]
    # the sampler never sees baselines or replicates
    from sweeps.search.optuna_private import _SearchedTrialsView

    assert [t.number for t in _SearchedTrialsView(study.study).get_trials()] == [1, 2, 3]


def test_a_replicate_orphaned_by_a_stop_is_asked_again_and_none_twice():
    spec = SweepSpec.from_dict(tiny_spec("orph", budget={"trials": 1}, confirm={"top": 1, "seeds": 1}))
    study = SweepStudy.in_memory(spec.study_plan())
    for _ in range(2):
        p = study.next_proposal()
        _tell(study, p.number, (0.9, 1000))
    first = study.next_proposal()
    assert first.replicate_of == 1
    study.reconcile()  # the driver stopped while it trained
    again = SweepStudy(spec.study_plan(), study.study)  # a resumed driver
    todo = [again.next_proposal(), again.next_proposal()]
    assert [(p.replicate_of, p.seed) for p in todo] == [(1, 1), (0, 1)]
    for p in todo:
        _tell(again, p.number, (0.91, 1010))
    assert again.next_proposal() == FINISHED


def _adaptive_study():
    """Dense and 2 candidates, 2 seeds each in the first round, then 8 more replicates in a second
    (and last) look. Dense spreads 15 times more than the candidates on both objectives."""
    spec = SweepSpec.from_dict(tiny_spec("adapt", budget={"trials": 3},
                                         confirm={"top": 2, "seeds": 2, "budget": 14, "looks": 2}))
    study = SweepStudy.in_memory(spec.study_plan())
    for p, v in zip([study.next_proposal() for _ in range(4)], [(0.90, 1000), (0.95, 1300), (0.96, 1250), (0.91, 950)]):
        _tell(study, p.number, v, noise_max=10_000.0)
    first = {1: [(0.950, 1300), (0.951, 1310)], 2: [(0.960, 1250), (0.961, 1262)], 0: [(0.90, 900), (0.93, 1200)]}
    round1 = []
    while (p := study.next_proposal()) not in (None, FINISHED):
        round1.append(p)
    assert p is None  # the second look is planned on the first one's results
    for p in round1:
        _tell(study, p.number, first[p.replicate_of][p.seed - 1], noise_max=10_000.0)
    return spec, study, round1


def test_later_looks_spend_the_budget_where_the_claims_need_seeds_the_baseline_most():
    spec, study, round1 = _adaptive_study()
    assert len(round1) == 6 and {study.study.trials[p.number].user_attrs["look"] for p in round1} == {1}
    look2 = []
    while (p := study.next_proposal()) not in (None, FINISHED):
        look2.append(p)
    assert 1 <= len(look2) <= 8 and p == FINISHED  # the last look: nothing more to ask once it is asked
    attrs = [study.study.trials[p.number].user_attrs for p in look2]
    assert {a["look"] for a in attrs} == {2}
    # The baseline is in both candidates' comparisons and spreads most: most of the seeds are its.
    on_dense = [p for p in look2 if p.replicate_of == 0]
    assert len(on_dense) * 2 >= len(look2), [(p.replicate_of, p.seed) for p in look2]
    # New model seeds continue each config's own (3, 4, ...), none twice.
    assert sorted(p.seed for p in on_dense) == list(range(3, 3 + len(on_dense)))
    for p in look2:
        _tell(study, p.number, (0.92, 1050), noise_max=10_000.0)
    assert study.next_proposal() == FINISHED  # two looks: the plan is done


def test_a_later_look_resumed_after_a_stop_asks_only_what_it_lacks():
    spec, study, _ = _adaptive_study()
    plan = [study.next_proposal() for _ in range(3)]  # three of the second look's seeds asked, then a stop
    _tell(study, plan[0].number, (0.92, 1050), noise_max=10_000.0)
    study.reconcile()
    again = SweepStudy(spec.study_plan(), study.study)
    rest = []
    while (p := again.next_proposal()) not in (None, FINISHED):
        rest.append(p)
    _, whole, _ = _adaptive_study()  # the same look planned without a stop
    expected = []
    while (p := whole.next_proposal()) not in (None, FINISHED):
        expected.append((p.replicate_of, p.seed))
    assert [(plan[0].replicate_of, plan[0].seed)] + [(p.replicate_of, p.seed) for p in rest] == expected


# -- what `best` may claim ------------------------------------------------------------------------


class _T:
    """A FrozenTrial-like row for config_summaries (noise scores out of 10,000: the default noise
    margin, 1 % of the maximum, is 100 points)."""

    def __init__(self, number, values, **attrs):
        self.number, self.values, self.params = number, list(values), {}
        self.user_attrs = {"noise_max": 10_000.0, **attrs}
        self.state = TrialState.COMPLETE


def _sweep(base_noise, cand_noise, cand_first=(0.99, 5000), base_acc=None, cand_acc=None):
    trials = [_T(0, (0.97, base_noise[0]), baseline="dense"), _T(1, cand_first)]
    n = 2
    for k, v in enumerate(cand_noise, 1):
        trials.append(_T(n, ((cand_acc or {}).get(k, 0.97), v), replicate_of=1, replicate_k=k))
        n += 1
    for k, v in enumerate(base_noise[1:], 1):
        trials.append(_T(n, ((base_acc or {}).get(k, 0.97), v), baseline="dense", replicate_of=0, replicate_k=k))
        n += 1
    return config_summaries(trials)


def _dense_only():
    """mnist-quick with one baseline, dense: claims over 1 candidate x 1 baseline x 2 objectives."""
    import dataclasses

    from sweeps.spec import load_spec

    spec = load_spec("mnist-quick")
    return dataclasses.replace(spec, baselines=spec.baselines[:1])


def test_best_does_not_claim_better_on_an_interval_that_straddles_the_baseline():
    configs = _sweep(base_noise=[1000, 1100, 900, 1000], cand_noise=[1050, 950, 1150])
    cand = next(c for c in configs if c.number == 1)
    assert cand.noise == (1050, 950, 1150)  # the selecting first seed (5000) is left out
    claims = sweep_claims(_dense_only(), cand, configs)
    noise = next(v for v in claims.verdicts if v.objective == "val_noise_score")
    # Paired over replicate seeds 1-3: differences -50, +50, +150, mean +50, well inside any interval.
    assert noise.verdict == "not resolved" and noise.test == "paired" and noise.difference == pytest.approx(50.0)
    line = next(x for x in claims.lines if x.startswith("val_noise_score vs dense"))
    assert "not resolved at margin 100" in line and "seeds per config would resolve" in line and "better" not in line


def test_best_claims_better_where_the_test_supports_it_and_the_front_uses_means():
    """Six replicate seeds a side; the candidate is 290-310 above dense on each seed, against a margin
    of 100: better, even at the first look's strict level widened for the choice. Accuracy is the
    same on every seed: zero spread over 6 seeds, so equivalent within the 0.5 points."""
    base = [1000, 1000, 1010, 990, 1000, 1005, 995]
    cand = [b + d for b, d in zip(base[1:], (300, 310, 290, 305, 295, 300))]
    configs = _sweep(base_noise=base, cand_noise=cand)
    front = config_front(configs)
    assert {c.number for c in front} == {1}  # dominates dense on the means; single-seed configs left out
    claims = sweep_claims(_dense_only(), front[0], configs)
    by = {v.objective: v for v in claims.verdicts}
    assert by["val_noise_score"].verdict == "better" and by["val_noise_score"].difference == pytest.approx(300.0)
    assert by["val_accuracy"].verdict == "equivalent"
    assert claims.basis == "adjusted for the choice"
    assert any(x.startswith("val_noise_score vs dense: better by more than the margin 100: +300") for x in claims.lines)
    assert claims.lines[-1].startswith("#1 was chosen among 1 config on the same seeds")


def test_an_interval_wider_than_the_scale_is_said_in_words():
    """Two seeds a side at the first look's corrected level: a t interval on 1 degree of freedom
    spans more than the noise score's whole scale (10,000). The line says so, and what would
    resolve it, instead of printing bounds past the scale; the verdict keeps its figures."""
    configs = _sweep(base_noise=[1000, 900, 1300], cand_noise=[1500, 1200])
    cand = next(c for c in configs if c.number == 1)
    claims = sweep_claims(_dense_only(), cand, configs)
    noise = next(v for v in claims.verdicts if v.objective == "val_noise_score")
    assert noise.verdict == "not resolved" and noise.high - noise.low > 10_000
    line = next(x for x in claims.lines if x.startswith("val_noise_score vs dense"))
    assert line.startswith("val_noise_score vs dense: not resolved: +250 (paired, seeds 2 vs 2)")
    assert "interval is wider than the score's whole scale" in line and "CI" not in line


def test_compare_pairs_the_shared_seeds_and_so_removes_the_seed_effect():
    """Each model seed shifts every config alike (here by -300..+300); the candidate is 40 above dense
    on each shared seed. Welch reads the seed effect as noise and cannot tell; the paired test sees
    the 40 on every seed."""
    effect = {1: -300.0, 2: 250.0, 3: 10.0, 4: 300.0}
    dense = [1000 + effect[s] + e for s, e in zip(effect, (3, -2, 1, -4))]
    cand = [1040 + effect[s] + e for s, e in zip(effect, (-1, 2, 4, -3))]
    welch = compare(cand, dense)
    assert welch.test == "Welch" and welch.verdict == "not resolved"
    paired = compare(cand, dense, a_seeds=list(effect), b_seeds=list(effect))
    assert paired.test == "paired" and paired.verdict == "better" and paired.n_a == paired.n_b == 4
    assert paired.difference == pytest.approx(40 + (-1 + 2 + 4 - 3 - 3 + 2 - 1 + 4) / 4)
    # Only the shared seeds are compared: dense's first seed (its "first" run) is left out.
    paired = compare(cand, [700.0, *dense], a_seeds=list(effect), b_seeds=["first", *effect])
    assert paired.test == "paired" and paired.n_a == 4 and paired.verdict == "better"
    # Fewer than two shared seeds: Welch over every value.
    assert compare(cand, dense, a_seeds=[1, 2, 3, 4], b_seeds=[1, 5, 6, 7]).test == "Welch"
    with pytest.raises(ValueError, match="one seed per value"):
        compare(cand, dense, a_seeds=[1, 2], b_seeds=list(effect))


def test_best_pairs_a_confirmed_config_with_dense_on_their_replicate_seeds():
    """Dense's first seed was a bad one (every config scored low on it); the candidate's first seed
    chose it and is left out. Unpaired, dense's mean carries that seed and the candidate's does not:
    the difference is the seed's. The claims pair the replicate seeds: differences -1, +1, 0, so the
    candidate is equivalent to dense within the margin (100), not better."""
    effect = {1: 40.0, 2: -35.0, 3: 5.0}
    trials = [_T(0, (0.97, 900.0), baseline="dense"), _T(1, (0.97, 1200.0))]
    for k, s in enumerate(effect, 1):
        trials.append(_T(1 + k, (0.97, 1000 + effect[s] + (-1, 1, 0)[k - 1]), replicate_of=1, replicate_k=k, model_seed=s))
        trials.append(_T(10 + k, (0.97, 1000 + effect[s]), baseline="dense", replicate_of=0, replicate_k=k, model_seed=s))
    configs = config_summaries(trials)
    cand = next(c for c in configs if c.number == 1)
    dense = next(c for c in configs if c.number == 0)
    assert cand.seeds == (1, 2, 3) and dense.seeds == ("first", 1, 2, 3)
    noise = next(v for v in sweep_claims(_dense_only(), cand, configs).verdicts if v.objective == "val_noise_score")
    assert noise.test == "paired" and (noise.n_a, noise.n_b) == (3, 3)
    assert noise.difference == pytest.approx(0.0) and noise.verdict == "equivalent"
    assert noise.mean_b == pytest.approx(1000 + 10 / 3)  # the tested means: replicate seeds only
    unpaired = compare(cand.noise, dense.noise)
    assert unpaired.difference == pytest.approx(1003 + 1 / 3 - 977.5)  # dense's bad first seed, read as a margin


def test_best_says_a_single_seed_comparison_rests_on_one_seed(tmp_path: Path):
    root = build_store(tmp_path / "store", "single", trials=12)
    proc = run_cli(["best", "single", "--root", str(root), "--out", str(tmp_path / "b.yaml")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rests on one seed: no claim is tested" in proc.stdout and "sweeps confirm single" in proc.stdout
    assert "better" not in proc.stdout
    doc = yaml.safe_load((tmp_path / "b.yaml").read_text())
    assert doc["source"]["seeds"] == 1 and doc["source"]["verdicts"] == [] and doc["source"]["claims_basis"] == ""


def test_status_and_best_show_means_intervals_and_n_from_the_replicates(tmp_path: Path):
    root = build_store(tmp_path / "store", "reps", trials=12, replicates=3)
    status = run_cli(["status", "reps", "--root", str(root)], cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    front_part = status.stdout.split("Pareto front")[-1]
    assert "±" in front_part and "(n=3)" in front_part and "(n=4)" in front_part  # candidates 3, baselines 1 + 3
    best = run_cli(["best", "reps", "--root", str(root), "--out", str(tmp_path / "b.yaml")], cwd=tmp_path)
    assert best.returncode == 0, best.stdout + best.stderr
    doc = yaml.safe_load((tmp_path / "b.yaml").read_text())
    src = doc["source"]
    trials = {t.number: t for t in optuna.load_study(study_name="reps", storage=f"sqlite:///{root / 'optuna.db'}").trials}
    mine = [t.values[1] for t in trials.values() if t.user_attrs.get("replicate_of") == src["optuna_trial_number"]]
    if trials[src["optuna_trial_number"]].user_attrs.get("baseline"):
        mine = [trials[src["optuna_trial_number"]].values[1], *mine]
    assert src["estimates"]["val_noise_score"]["n"] == len(mine) >= 3
    assert src["estimates"]["val_noise_score"]["mean"] == pytest.approx(sum(mine) / len(mine))
    assert src["claims"] and all(line in best.stdout for line in src["claims"])  # the YAML says what the CLI said
    report = run_cli(["report", "reps", "--root", str(root), "--out", str(tmp_path / "r.html")], cwd=tmp_path)
    assert report.returncode == 0 and "95% CI" in (tmp_path / "r.html").read_text()
