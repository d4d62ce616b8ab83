"""Claims against baselines (`sweeps.search.claims`) and where the seeds go (`sweeps.search.allocation`):
values by hand on small cases, cross-checked against statsmodels, and error rates on planted
synthetic studies."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweeps.errors import SpecError
from sweeps.search.allocation import next_replicates
from sweeps.search.claims import (
    Design, Replicate, check_budget, check_margins, chosen_claims, claim_p, difference, holm, interval,
    look_levels, margin_value, render, seeds_needed, spending, verdicts,
)

REPO = Path(__file__).resolve().parents[1]


def _t2_sf(x: float) -> float:
    """Student's t with 2 df has a closed-form tail: 1/2 (1 - x / sqrt(x^2 + 2))."""
    return 0.5 * (1 - x / math.sqrt(x * x + 2))


# -- one comparison, by hand -----------------------------------------------------------------------------


def test_paired_difference_and_its_claim_by_hand():
    a, b = {1: 10.0, 2: 12.0, 3: 14.0}, {1: 9.0, 2: 10.0, 3: 11.0}
    d = difference(a, b)  # per-seed differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), df 2
    assert d.test == "paired" and (d.n_a, d.n_b) == (3, 3) and d.difference == pytest.approx(2.0)
    assert d.se == pytest.approx(1 / math.sqrt(3)) and d.df == 2 and (d.mean_a, d.mean_b) == (12.0, 10.0)
    verdict, p = claim_p(d, margin=0.5)
    # "better" against +0.5: t = 1.5 * sqrt(3) = 2.598, two-sided p = 2 * t2_sf(2.598)
    assert verdict == "better" and p == pytest.approx(2 * _t2_sf(1.5 * math.sqrt(3)), rel=1e-9)
    assert p == pytest.approx(0.12168, abs=1e-4)
    low, high = interval(d, 0.95)  # t(0.975, 2) = 4.302653
    assert (low, high) == (pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5), pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5))
    # equivalence within +-5: TOST, the larger one-sided p: against +5 t = 3 sqrt(3), against -5 t = 7 sqrt(3)
    v, p_eq = claim_p(d, margin=5.0)
    assert v == "equivalent" and p_eq == pytest.approx(2 * _t2_sf(3 * math.sqrt(3)), rel=1e-9)


def test_unequal_seed_sets_use_welch_over_every_seed():
    a, b = {1: 1.0, 2: 2.0, 3: 3.0}, {1: 0.0, 2: 2.0, 3: 4.0, 4: 6.0}
    d = difference(a, b)
    # means 2 and 3; variances 1 and 20/3: se = sqrt(1/3 + 5/3) = sqrt(2)
    assert d.test == "Welch" and d.difference == pytest.approx(-1.0) and d.se == pytest.approx(math.sqrt(2))
    df = 2.0**2 / ((1 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3)
    assert d.df == pytest.approx(df)
    one = difference({1: 1.0}, b)
    assert math.isnan(one.se) and claim_p(one, 1.0) == ("not resolved", 1.0)


def test_tost_and_the_directional_claims_agree_with_statsmodels():
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired, ttest_ind

    rng = np.random.default_rng([7, 101])
    for _ in range(20):
        n = int(rng.integers(3, 9))
        x, y = rng.normal(0.2, 1.0, n), rng.normal(0.0, 1.0, n)
        seeds = range(n)
        d = difference(dict(zip(seeds, x)), dict(zip(seeds, y)))
        margin = float(rng.uniform(0.3, 2.0))
        p_tost = ttost_paired(x, y, -margin, margin)[0]
        verdict, p = claim_p(d, margin)
        if verdict == "equivalent":
            assert p == pytest.approx(min(1.0, 2 * p_tost), rel=1e-7)
        # "better" is the one-sided test against +margin: statsmodels' ttest_ind on x - margin vs y
        yb = rng.normal(0.0, 2.0, n + 2)
        w = difference(dict(zip(seeds, x)), dict(zip(range(100, 100 + n + 2), yb)))
        p_better = ttest_ind(x - margin, yb, alternative="larger", usevar="unequal")[1]
        v2, p2 = claim_p(w, margin)
        if v2 == "better":
            assert p2 == pytest.approx(2 * p_better, rel=1e-7)
        if v2 == "equivalent":
            assert p2 == pytest.approx(min(1.0, 2 * ttost_ind(x, yb, -margin, margin, usevar="unequal")[0]), rel=1e-7)


def test_zero_spread_is_not_resolved_below_the_minimum_n():
    a = {s: 0.990 for s in range(1, 4)}
    b = {s: 0.980 for s in range(1, 4)}  # every seed: +0.010, a margin of 0.005
    d = difference(a, b)
    assert d.se == 0 and claim_p(d, 0.005) == ("not resolved", 1.0)
    vs = verdicts(Design(("val_accuracy",), (0.005,), ("dense",), looks=1),
                  [Replicate("c", s, 1, (v,)) for s, v in a.items()] + [Replicate("dense", s, 1, (v,)) for s, v in b.items()])
    (v,) = vs
    assert v.verdict == "not resolved" and v.zero_spread and v.seeds_needed == 6
    line = render(v)
    assert "every seed gave +0.01" in line and "6 seeds would" in line
    six = difference({s: 0.99 for s in range(6)}, {s: 0.98 for s in range(6)})
    assert claim_p(six, 0.005) == ("better", 0.0)  # 6 identical signs: a sign test's p = 2^-5 < 5 %


# -- many comparisons, looks, power: against statsmodels and closed forms -----------------------------------


def test_holm_matches_statsmodels_multipletests():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng([3, 102])
    for m in (1, 2, 4, 8):
        for _ in range(25):
            p = list(rng.uniform(0, 0.06, m) ** rng.uniform(0.5, 2))
            rejected, levels = holm(p, 0.05)
            assert rejected == list(multipletests(p, 0.05, method="holm")[0])
    # by hand: 0.01 <= 0.05/3, 0.02 <= 0.05/2, 0.04 <= 0.05
    assert holm([0.04, 0.01, 0.02], 0.05) == ([True, True, True], [0.05, 0.05 / 3, 0.025])
    # 0.01 <= 0.05/3, then 0.026 > 0.05/2: it stops there, and 0.03 is not tested
    assert holm([0.03, 0.01, 0.026], 0.05) == ([False, True, False], [0.025, 0.05 / 3, 0.025])


def test_spending_is_lan_demets_obrien_fleming():
    # alpha(t) = 2 - 2 Phi(z / sqrt t) = erfc(z / sqrt(2 t)), z = 1.959964
    z = 1.959963984540054
    for t in (0.25, 0.5, 0.75, 1.0):
        assert spending(t, 0.05) == pytest.approx(math.erfc(z / math.sqrt(2 * t)), rel=1e-9)
    assert spending(0.5, 0.05) == pytest.approx(0.00557, abs=1e-5)  # the published table value
    levels = look_levels(0.05, 3)
    assert sum(levels) == pytest.approx(0.05) and levels[0] < levels[1] < levels[2]
    assert look_levels(0.05, 1) == pytest.approx((0.05,))


@pytest.mark.parametrize("paired", [True, False])
def test_seeds_needed_matches_statsmodels_power(paired: bool):
    from statsmodels.stats.power import TTestIndPower, TTestPower

    solver = TTestPower() if paired else TTestIndPower()
    for effect in (0.5, 0.8, 1.0, 1.5, 2.5):
        for alpha in (0.05, 0.0125):
            # a directional claim from a two-sided interval at 1 - alpha: one-sided at alpha / 2
            n = solver.solve_power(effect, alpha=alpha / 2, power=0.8, alternative="larger")
            assert seeds_needed(1.0, 1 / effect, alpha, paired=paired) == max(2, math.ceil(n - 1e-9))
    # the textbook figures: a paired t-test at d = 1 needs 10 pairs, two samples 17 per group
    assert seeds_needed(1.0, 1.0, 0.05, paired=True) == 10 and seeds_needed(1.0, 1.0, 0.05) == 17


def test_seeds_needed_above_the_cap_says_so():
    design = Design(("val_noise_score",), (10.0,), ("dense",), looks=1, seeds_cap=50)
    rng = np.random.default_rng([1, 103])
    reps = [Replicate("c", s, 1, (float(v),)) for s, v in enumerate(rng.normal(0, 400, 3), 1)]
    reps += [Replicate("dense", s, 1, (float(v),)) for s, v in enumerate(rng.normal(0, 400, 3), 1)]
    (v,) = verdicts(design, reps)
    assert v.verdict == "not resolved" and v.seeds_needed is None and v.beyond_cap == 50
    assert "more than 50 seeds per config would be needed: at this spread the margin is too small to resolve" in render(v)


def test_seeds_needed_pools_the_spread_where_a_pair_has_two_degrees_of_freedom():
    design = Design(("x",), (1.0,), ("dense",), looks=1)
    dense = {1: 0.0, 2: 1.0, 3: -1.0}
    a = {1: 0.5, 2: 1.0, 3: -0.5}  # differences 0.5, 0, 0.5: sd 0.2887
    b = {1: 0.0, 2: 3.0, 3: -1.0}  # differences 0, 2, 0: sd 1.1547
    reps = [Replicate(c, s, 1, (v,)) for c, vals in (("dense", dense), ("a", a), ("b", b)) for s, v in vals.items()]
    vs = {v.candidate: v for v in verdicts(design, reps)}
    assert not any(v.claimed for v in vs.values())
    pooled = math.sqrt((2 * (1 / 12) + 2 * (4 / 3)) / 4)  # variances 1/12 and 4/3, 2 df each
    expected = seeds_needed(1.0, pooled, 0.05 / 2, paired=True)  # the last look's level over 2 comparisons
    assert vs["a"].seeds_needed == vs["b"].seeds_needed == expected
    assert expected != seeds_needed(1.0, math.sqrt(1 / 12), 0.05 / 2, paired=True)  # not a's own (2 df) spread


# -- planted studies -------------------------------------------------------------------------------------------


def _study(rng, truths, sds, seeds, look=1, first=1):
    return [Replicate(c, s, look, tuple(float(rng.normal(mu, sd)) for mu, sd in zip(truths[c], sds[c])))
            for c in truths for s in range(first, first + seeds)]


@pytest.mark.parametrize("null", ["zero", "at the margin"])
def test_planted_null_false_claims_at_most_the_nominal_rate_with_top_k_selection(null: str):
    """20 searched configs, the top 4 by their (noisy) first seed confirmed with 4 fresh seeds each
    against 2 baselines on 2 objectives: 16 comparisons a sweep. Truth: every candidate equals the
    baselines (no "better"/"worse" is true), or every candidate sits exactly one margin above
    them (no claim at all is true). The share of sweeps with any false claim is at most 5 %."""
    margins = (0.01, 0.02)
    design = Design(("acc", "noise"), margins, ("dense", "ref"), looks=1)
    shift = 0.0 if null == "zero" else 1.0
    sweeps, wrong = 300, 0
    for i in range(sweeps):
        rng = np.random.default_rng([11, 0 if null == "zero" else 1, i])
        first = rng.normal(0, 1, 20)
        top = np.argsort(-first)[:4]
        truths = {f"c{j}": tuple(shift * m for m in margins) for j in top}
        truths |= {"dense": (0.0, 0.0), "ref": (0.0, 0.0)}
        sds = {c: (0.01, 0.03) if c in ("dense", "ref") else (0.004, 0.01) for c in truths}
        vs = verdicts(design, _study(rng, truths, sds, 4))
        if null == "zero":
            wrong += any(v.verdict in ("better", "worse") for v in vs)
        else:
            wrong += any(v.claimed for v in vs)
    # at most 5 %: 300 sweeps put the 99 % upper binomial bound of a true 5 % at about 8 %
    assert wrong / sweeps <= 0.05 + 2.6 * math.sqrt(0.05 * 0.95 / sweeps), wrong


def test_a_planted_difference_of_three_margins_is_called_better():
    design = Design(("acc",), (0.01,), ("dense",), looks=1)
    rng = np.random.default_rng([5, 104])
    calls = []
    for _ in range(20):
        reps = _study(rng, {"c": (0.03,), "dense": (0.0,)}, {"c": (0.003,), "dense": (0.006,)}, 8)
        (v,) = verdicts(design, reps)
        calls.append(v.verdict)
        assert v.verdict in ("better", "not resolved")
    assert calls.count("better") >= 18
    line = render(v)
    shown = np.mean([r.values[0] for r in reps if r.config == "c"]) - np.mean([r.values[0] for r in reps if r.config == "dense"])
    assert line.startswith(f"acc vs dense: better by more than the margin 0.01: {shown:+.3g} (95% CI ")
    assert line.endswith("paired, seeds 8 vs 8)")


def test_a_claim_made_at_an_earlier_look_stands_with_that_looks_figures():
    design = Design(("x",), (1.0,), ("dense",), looks=2)
    reps = [Replicate("c", s, 1, (10.0 + 0.01 * s,)) for s in range(1, 9)]
    reps += [Replicate("dense", s, 1, (0.0 - 0.01 * s,)) for s in range(1, 9)]
    (first,) = verdicts(design, reps)
    assert first.verdict == "better" and first.look == 1 and first.level == pytest.approx(look_levels(0.05, 2)[0])
    reps += [Replicate("dense", s, 2, (50.0 * (-1) ** s,)) for s in range(9, 13)]  # wild later seeds
    (after,) = verdicts(design, reps)
    assert after == first


# -- the chosen config ---------------------------------------------------------------------------------------


def test_the_chosen_config_rests_on_fresh_seeds_or_adjusted_intervals():
    design = Design(("x",), (1.0,), ("dense",), looks=2)
    rng = np.random.default_rng([2, 105])
    truths = {"a": (3.0,), "b": (2.9,), "c": (0.0,), "dense": (0.0,)}
    sds = {c: (0.5,) for c in truths}
    reps = _study(rng, truths, sds, 4)
    adjusted = chosen_claims(design, reps, "a", ["a", "b", "c"], chosen_at_look=1)
    (v,) = adjusted.verdicts
    level = look_levels(0.05, 2)[0] / 3  # look 1's level over 3 configs x 1 baseline x 1 objective
    assert adjusted.basis == "adjusted for the choice" and v.level == pytest.approx(level)
    assert "chosen among 3 configs on the same seeds" in adjusted.sentence and "simultaneous over 3 configs" in adjusted.sentence
    reps += [Replicate("a", s, 2, (float(rng.normal(3.0, 0.5)),)) for s in range(5, 11)]
    fresh = chosen_claims(design, reps, "a", ["a", "b", "c"], chosen_at_look=1)
    (f,) = fresh.verdicts
    assert fresh.basis == "fresh seeds" and f.n_a == 6 and f.test == "Welch" and f.n_b == 4
    assert fresh.sentence == "a's claims rest on 6 seeds trained after it was chosen (not the seeds that chose it)."


# -- the allocation --------------------------------------------------------------------------------------------


def test_the_seeds_go_to_the_baseline_when_its_spread_is_large():
    design = Design(("x",), (1.0,), ("dense",), looks=3)
    rng = np.random.default_rng([4, 106])
    truths = {"dense": (0.0,), "a": (1.0,), "b": (0.5,), "c": (-0.2,), "d": (0.8,)}
    sds = {c: (3.0,) if c == "dense" else (1.0,) for c in truths}
    reps = _study(rng, truths, sds, 3)
    plan = next_replicates(design, reps, budget_left=30)
    counts = plan.counts()
    assert not plan.done and plan.look == 2 and len(plan.seeds) == 15  # 30 trials over 2 looks left
    assert counts["dense"] >= 8, counts
    dense_seeds = [s for c, s in plan.seeds if c == "dense"]
    assert dense_seeds == list(range(4, 4 + len(dense_seeds)))  # the next model seeds, in order
    assert next_replicates(design, reps, budget_left=0).reason == "the seed budget is spent"
    resolved = _study(rng, {"a": (100.0,), "dense": (0.0,)}, {"a": (0.1,), "dense": (0.1,)}, 8)
    assert next_replicates(Design(("x",), (1.0,), ("dense",), looks=2), resolved, 10).reason == "every comparison is resolved"


def test_a_shared_seed_effect_keeps_the_pairs():
    """Each model seed shifts every config by sd 10, the configs' own noise is sd 1: pairing cancels
    most of the variance (paired var 2 against 202 unpaired), so the next round gives every config
    still in an open comparison the same new seeds."""
    design = Design(("x",), (1.0,), ("dense",), looks=3)
    rng = np.random.default_rng([8, 107])
    effect = rng.normal(0, 10.0, 20)
    truths = {"dense": 0.0, "a": 1.2, "b": 0.3, "c": 1000.0}
    reps = [Replicate(c, s, 1, (mu + effect[s] + float(rng.normal(0, 1.0)),)) for c, mu in truths.items() for s in range(1, 4)]
    vs = verdicts(design, reps)
    open_ = [v for v in vs if not v.claimed]
    assert {v.candidate for v in open_} == {"a", "b"}  # c is 1,000 margins above: resolved even at look 1
    plan = next_replicates(design, reps, budget_left=20)
    assert plan.reason == "9 seeds for look 2, paired" and plan.counts() == {"a": 3, "b": 3, "dense": 3}
    assert {s for c, s in plan.seeds} == {4, 5, 6}


def test_adaptive_seeds_resolve_at_least_as_much_as_fixed_seeds_at_equal_trials():
    """Baseline sd 3x the candidates': 4 candidates, 3 seeds each first, then 24 more trials in 2
    rounds either adaptively or 4 more seeds per config (fixed); the adaptive rounds resolve at
    least as many true differences over 60 planted studies."""
    design = Design(("x",), (1.0,), ("dense",), looks=3)
    truths = {"dense": (0.0,), "a": (2.5,), "b": (2.0,), "c": (-2.5,), "d": (0.0,)}
    sds = {c: (3.0,) if c == "dense" else (1.0,) for c in truths}
    true = {"a": "better", "b": "better", "c": "worse", "d": "equivalent"}
    score = {"adaptive": 0, "fixed": 0}
    for i in range(60):
        rng = np.random.default_rng([9, i])
        base = _study(rng, truths, sds, 3)
        pool = {c: [float(rng.normal(truths[c][0], sds[c][0])) for _ in range(40)] for c in truths}
        for how in score:
            reps = list(base)
            for look in (2, 3):
                if how == "fixed":
                    new = [(c, 3 + 2 * (look - 1) + k) for c in truths for k in (0, 1)][:12]
                else:
                    new = list(next_replicates(design, reps, budget_left=12 * (4 - look)).seeds)
                reps += [Replicate(c, s, look, (pool[c][s - 1],)) for c, s in new]
            score[how] += sum(v.verdict == true[v.candidate] for v in verdicts(design, reps))
    assert score["adaptive"] >= score["fixed"], score


# -- the spec's keys, and what the CLI can afford ---------------------------------------------------------------


def test_margins_and_budget_are_checked_naming_the_key():
    assert check_margins(None, ["val_accuracy", "val_noise_score"]) == {"val_accuracy": 0.5, "val_noise_score": 0.01}
    assert check_margins({"val_accuracy": 1}, ["val_accuracy", "val_noise_score"])["val_accuracy"] == 1.0
    for bad, key in [({"val_accuracy": 0}, "confirm.margin.val_accuracy"), ({"loss": 0.1}, "confirm.margin.loss"),
                     ({"val_noise_score": 2}, "confirm.margin.val_noise_score"), ([0.1], "confirm.margin"),
                     ({"val_accuracy": "half"}, "confirm.margin.val_accuracy")]:
        with pytest.raises(SpecError, match=rf"^{key}: ") as e:
            check_margins(bad, ["val_accuracy", "val_noise_score"])
        assert "\n" not in str(e.value)
    assert check_budget(None, 15) == 15 and check_budget(40, 15) == 40
    for bad in (10, 2.5, True, "many"):
        with pytest.raises(SpecError, match=r"^confirm.budget: .* must be an integer >= 15"):
            check_budget(bad, 15)
    assert margin_value("val_accuracy", 0.5) == pytest.approx(0.005)
    assert margin_value("val_noise_score", 0.01, maximum=30_000) == pytest.approx(300)


def test_claims_need_no_scipy_stats():
    code = ("import sys; from sweeps.search.claims import *; from sweeps.search.allocation import next_replicates\n"
            "d = Design(('x',), (1.0,), ('dense',))\n"
            "r = [Replicate(c, s, 1, (float(s * (c == 'a')),)) for c in ('a', 'dense') for s in range(1, 4)]\n"
            "[render(v) for v in next_replicates(d, r, 10).verdicts]\n"
            "assert 'scipy.stats' not in sys.modules, 'scipy.stats imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr


def test_a_replayed_confirmation_spends_its_budget_on_the_surrogates_draws(tmp_path):
    from replay_helpers import write_table
    from sweeps.replay import fit_surrogate, load_table
    from sweeps.replay.verdicts import replay_sweep

    table = load_table(write_table(tmp_path / "table.jsonl.gz", seed_shift={0: 0.0, 1: 0.05, 2: -0.05}))
    surrogate = fit_surrogate(table)
    baselines = tuple(b.name for b in table.spec.baselines)
    design = Design(("val_accuracy", "val_noise_score"), (0.005, 0.01), baselines, looks=2)
    budget = 2 * (3 + len(baselines)) * 2
    adaptive = replay_sweep(surrogate, table.spec, 4, design, budget, adaptive=True, searched=20, top=3, seeds=2)
    again = replay_sweep(surrogate, table.spec, 4, design, budget, adaptive=True, searched=20, top=3, seeds=2)
    assert adaptive == again  # every draw follows from the sweep's index
    assert len(adaptive.candidates) == 3 and len(adaptive.replicates) <= budget
    assert adaptive.later == len(adaptive.replicates) - (3 + len(baselines)) * 2
    fixed = replay_sweep(surrogate, table.spec, 4, design, budget, adaptive=False, searched=20, top=3, seeds=2)
    assert fixed.candidates == adaptive.candidates
    assert sorted({r.seed for r in fixed.replicates}) == [1, 2, 3, 4] and len(fixed.replicates) == budget
    # the first round is the same draws in both (the same keys and the same world)
    first = {(r.config, r.seed): r.values for r in adaptive.replicates if r.look == 1}
    assert all(first[(r.config, r.seed)] == r.values for r in fixed.replicates if (r.config, r.seed) in first)
    # a baseline's truth is the mean of its recorded seeds (planted: noise 0.6 of the maximum)
    assert adaptive.truths["dense"][1] == pytest.approx(0.6)
    assert set(adaptive.truths) == set(adaptive.candidates) | set(baselines)


def test_the_verdict_sentences():
    from sweeps.search.claims import Verdict

    def v(verdict, d, low, high, **kw):
        return Verdict("c", "dense", "val_noise_score", verdict, 120.0, d, low, high, 0.0125, 0.001, "paired", 6, 6,
                       19_000.0, 19_000.0 - d, 2, **kw)

    assert render(v("better", 1_933.0, 1_200.0, 2_666.0)) == (
        "val_noise_score vs dense: better by more than the margin 120: +1,933 (98.75% CI +1,200 to +2,666, paired, seeds 6 vs 6)")
    assert render(v("worse", -900.0, -1_500.0, -300.0)).startswith("val_noise_score vs dense: worse by more than the margin 120: -900 (")
    assert render(v("equivalent", 10.0, -80.0, 100.0)).startswith("val_noise_score vs dense: equivalent within ±120: +10 (98.75% CI -80 to +100")
    assert render(v("not resolved", -272.0, -845.0, 302.0, seeds_needed=11), candidate=True) == (
        "c: val_noise_score vs dense: not resolved at margin 120: -272 (98.75% CI -845 to +302, paired, seeds 6 vs 6); "
        "about 11 seeds per config would resolve a margin of 120")
