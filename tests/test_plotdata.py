"""Plot data for a known small sweep, computed without drawing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from dashboards import plotdata, render
from dashboards.report import ReportInput, sweep_report
from sweeps.results import chosen_trial, report_input
from sweeps.spec import load_spec

T0 = datetime(2026, 1, 1, 12, 0, 0)
LEVELS = [0.0, 0.25, 0.5]


def trial(number, acc, noise, baseline="", minutes=1.0, state=TrialState.COMPLETE, p=0.1, curve=None):
    attrs = {"noise_max": 300, "test_accuracy": acc - 0.01, "test_noise_score": noise - 5}
    if baseline:
        attrs["baseline"] = baseline
    attrs["val_curve"] = {"kind": "mnist-pixels", "levels": LEVELS, "accuracies": curve or [acc, acc / 2, acc / 4]}
    params, dists = ({}, {}) if baseline else ({"percent_on": p, "lr": 0.01 + p / 10},
                                                {"percent_on": FloatDistribution(0.01, 1.0),
                                                 "lr": FloatDistribution(0.001, 0.1)})
    t = create_trial(state=state, values=[acc, noise] if state == TrialState.COMPLETE else None,
                     params=params, distributions=dists, user_attrs=attrs)
    t.number = number
    t.datetime_start = T0 + timedelta(minutes=number * 0.1)
    t.datetime_complete = T0 + timedelta(minutes=minutes)
    return t


@pytest.fixture
def trials():
    return [
        trial(0, 0.95, 150, baseline="dense", minutes=1),
        trial(1, 0.90, 200, minutes=2, p=0.05),   # front: more robust
        trial(2, 0.85, 120, minutes=3, p=0.3),    # dominated by 0 and 1
        trial(3, 0.97, 100, minutes=4, p=0.5),    # front: most accurate
        trial(4, 0.0, 0, minutes=5, state=TrialState.FAIL),
    ]


def test_pareto_points_front_baselines_and_choice(trials):
    data = plotdata.pareto_data(trials, chosen=1)
    assert [p.number for p in data.points] == [0, 1, 2, 3]  # the failed trial is left out
    assert {p.number for p in data.points if p.on_front} == {0, 1, 3}
    assert [p.number for p in data.front] == [1, 0, 3]  # by accuracy, for the step line
    assert [p.baseline for p in data.points] == ["dense", "", "", ""]
    assert [p.chosen for p in data.points] == [False, True, False, False]
    assert data.points[1].accuracy_percent == pytest.approx(90.0)


def test_overlay_has_dense_baselines_and_best_sparse_by_noise(trials):
    series = plotdata.overlay_curves(trials, best=1)
    assert [(s.label, s.baseline) for s in series] == [("#0 dense", True), ("#1", False)]
    assert series[1].levels == tuple(LEVELS)
    assert series[1].accuracy_percent == pytest.approx((90.0, 45.0, 22.5))


def test_hypervolume_2d_by_hand():
    assert plotdata.hypervolume_2d([]) == 0.0
    assert plotdata.hypervolume_2d([(0.5, 0.5)]) == pytest.approx(0.25)
    # (1, .2) and (.5, .6): .2*1 + (.6-.2)*.5 = .4; a dominated point adds nothing
    assert plotdata.hypervolume_2d([(1, 0.2), (0.5, 0.6), (0.4, 0.1)]) == pytest.approx(0.4)


def test_hypervolume_grows_in_completion_order(trials):
    curve = plotdata.hypervolume_over_time(trials)
    assert [round(t) for t, _ in curve] == [60, 120, 180, 240]
    hv = [v for _, v in curve]
    assert hv[0] == pytest.approx(0.95 * 150 / 300)
    assert hv == sorted(hv)  # never shrinks
    assert hv[2] == hv[1]  # trial 2 is dominated


def test_importances_per_objective_over_searched_trials(trials):
    imps = plotdata.importances(trials)
    assert set(imps) == {"val_accuracy", "val_noise_score"}
    for d in imps.values():
        assert set(d) == {"percent_on", "lr"}
        assert sum(d.values()) == pytest.approx(1.0)


def test_pareto_table_rows(trials):
    rows = plotdata.pareto_table(trials)
    assert [r["trial"] for r in rows] == [3, 0, 1]
    assert rows[2]["val noise score"] == 200 and rows[2]["test accuracy %"] == pytest.approx(89.0)


def test_report_is_one_self_contained_page(trials):
    html = sweep_report(report_input(load_spec("mnist-quick"), trials), trials)
    assert html.count("data:image/png;base64,") == 4
    assert "Pareto configurations" in html and "<td>200</td>" in html
    assert "trial #" in html and "src=\"http" not in html  # nothing fetched from elsewhere


def test_report_takes_plain_data(trials):
    """dashboards draws what it is given: the service picks the chosen trial and the facts."""
    assert chosen_trial(trials) in {t.number for t in trials}
    html = sweep_report(ReportInput(name="plain", summary={"dataset": "mnist"}, chosen=1), trials)
    assert "Sweep report: plain" in html and "<b>dataset</b>: mnist" in html


def test_figures_have_labelled_axes(trials):
    fig = render.pareto_figure(plotdata.pareto_data(trials, chosen=1), "t")
    ax = fig.axes[0]
    assert "accuracy (%)" in ax.get_xlabel() and "noise score" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "dense baseline" in labels and "chosen (#1)" in labels
    curve = render.noise_curve_figure(plotdata.overlay_curves(trials), "t", "mnist-pixels").axes[0]
    assert "mnist-pixels" in curve.get_xlabel() and curve.get_ylabel() == "accuracy (%)"
    assert len(render.figure_png(fig)) > 1000


def test_front_and_hypervolume_match_the_brute_force_rules():
    import random

    rng = random.Random(1)
    values = [(rng.choice([0.8, 0.85, 0.9, 0.95]), rng.choice([100.0, 150.0, 200.0])) for _ in range(60)]
    brute = [not any(o[0] >= p[0] and o[1] >= p[1] and o != p for o in values) for p in values]
    assert plotdata.front_flags(values) == brute
    ts = [trial(i, a, n, minutes=1 + i) for i, (a, n) in enumerate(values)]
    hv = [h for _, h in plotdata.hypervolume_over_time(ts)]
    naive = [plotdata.hypervolume_2d([(a, n / 300) for a, n in values[: i + 1]]) for i in range(len(values))]
    assert hv == pytest.approx(naive)
