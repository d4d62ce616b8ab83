"""Plot data for a known small sweep, computed without drawing."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from dashboards import plotdata, render
from dashboards.report import ReportInput, sweep_report
from sweeps.results.read import SweepReader, plain_trials, report_input
from sweeps.search.record import config_front, config_summaries, hypervolume_curve
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


FRONT = frozenset({0, 1, 3})


def test_pareto_points_front_baselines_and_choice(trials):
    data = plotdata.pareto_data(plain_trials(trials), FRONT, chosen=1)
    assert [p.number for p in data.points] == [0, 1, 2, 3]  # the failed trial is left out
    assert {p.number for p in data.points if p.on_front} == {0, 1, 3}
    assert [p.number for p in data.front] == [1, 0, 3]  # by accuracy, for the step line
    assert [p.baseline for p in data.points] == ["dense", "", "", ""]
    assert [p.chosen for p in data.points] == [False, True, False, False]
    assert data.points[1].accuracy_percent == pytest.approx(90.0)


def test_overlay_has_dense_baselines_and_best_sparse_by_noise(trials):
    series = plotdata.overlay_curves(plain_trials(trials), FRONT, best=1)
    assert [(s.label, s.baseline) for s in series] == [("#0 dense", True), ("#1", False)]
    assert series[1].levels == tuple(LEVELS)
    assert series[1].accuracy_percent == pytest.approx((90.0, 45.0, 22.5))


def test_hypervolume_curve_by_trials_ended(trials):
    x, hv = hypervolume_curve(trials)
    assert x == [1, 2, 3, 4]  # the failed trial did not end a trial's worth of search
    assert hv[0] == pytest.approx(0.95 * 150 / 300)
    assert hv == sorted(hv) and hv[2] == hv[1]  # never shrinks; trial 2 is dominated
    # (.95, .5), (.9, .667), (.97, .333) above (0, 0), by hand
    assert hv[3] == pytest.approx(0.97 * (1 / 3) + 0.95 * (0.5 - 1 / 3) + 0.9 * (2 / 3 - 0.5))
    _, above = hypervolume_curve(trials, (0.92, 0.4))
    assert above[-1] == pytest.approx((0.95 - 0.92) * (0.5 - 0.4))  # only trial 0 beats that point


def test_stopped_trials_count_as_ended_but_add_nothing(trials):
    stopped = trial(5, 0.99, 290, minutes=1.5, state=TrialState.PRUNED)
    x, hv = hypervolume_curve([*trials, stopped])
    assert x == [1, 2, 3, 4, 5] and hv[1] == hv[0]


def test_importances_per_objective_over_searched_trials(trials):
    imps = plotdata.importances(plain_trials(trials))
    assert set(imps) == {"val_accuracy", "val_noise_score"}
    for d in imps.values():
        assert set(d) == {"percent_on", "lr"}
        assert sum(d.values()) == pytest.approx(1.0)


def test_pareto_table_rows(trials):
    rows = plotdata.pareto_table(plain_trials(trials), FRONT)
    assert [r["trial"] for r in rows] == [3, 0, 1]
    assert rows[2]["val noise score"] == 200 and rows[2]["test accuracy %"] == pytest.approx(89.0)


def test_report_is_one_self_contained_interactive_page(trials):
    html = sweep_report(report_input(SweepReader.of(load_spec("mnist-quick"), trials)), plain_trials(trials))
    assert html.count('<div class="plot" id="figure-') == 4 and html.count("Plotly.newPlot(") == 4
    assert "Pareto configurations" in html and "<td>200</td>" in html
    assert 'src="http' not in html and "<script src" not in html  # plotly.js is inlined: it opens offline
    assert len(html) > 3_000_000  # the library itself is in the page
    assert "percent_on = 0.05" in html  # a point's hover text carries its config


def test_report_takes_plain_data(trials):
    """dashboards draws what it is given: the service picks the chosen trial and the facts."""
    assert SweepReader.of(load_spec("mnist-quick"), trials).knee in {t.number for t in trials}
    html = sweep_report(ReportInput(name="plain", summary={"dataset": "mnist"}, chosen=1), plain_trials(trials))
    assert "Sweep report: plain" in html and "<b>dataset</b>: mnist" in html


def test_figures_have_labelled_axes_and_named_traces(trials):
    fig = render.pareto_figure(plotdata.pareto_data(plain_trials(trials), FRONT, chosen=1), "t")
    assert "accuracy (%)" in fig.layout.xaxis.title.text and "noise score" in fig.layout.yaxis.title.text
    names = [t.name for t in fig.data]
    assert "dense baseline" in names and "chosen (#1)" in names and "searched (Pareto front)" in names
    curve = render.noise_curve_figure(plotdata.overlay_curves(plain_trials(trials)), "t", "mnist-pixels")
    assert "mnist-pixels" in curve.layout.xaxis.title.text and curve.layout.yaxis.title.text == "accuracy (%)"


def test_hover_shows_a_configs_parameters_seeds_and_intervals(trials):
    configs = (plotdata.ConfigEstimate(number=1, seeds=3, accuracy=(0.9, 0.88, 0.92), noise=(200.0, 190.0, 210.0)),
               plotdata.ConfigEstimate(number=0, seeds=3, accuracy=(0.95, 0.94, 0.96), noise=(150.0, 140.0, 160.0)))
    data = plotdata.pareto_data(plain_trials(trials), FRONT, chosen=1, configs=configs, links={1: "http://127.0.0.1:5000/#/run1"})
    p = next(p for p in data.points if p.number == 1)
    assert p.params == (("lr", pytest.approx(0.015)), ("percent_on", 0.05)) and p.link.endswith("run1")
    text = render.point_text(p)
    assert "#1</b> (Pareto front, chosen)" in text and "val accuracy 90.00 % [88.00, 92.00]" in text
    assert "val noise score 200 [190, 210]" in text and "seeds 3" in text and "percent_on = 0.05" in text
    assert "click: its MLflow run" in text
    trace = next(t for t in render.pareto_figure(data, "t").data if t.name == "searched (Pareto front)")
    assert list(trace.customdata[0]) == ["http://127.0.0.1:5000/#/run1", 1]
    assert list(trace.error_y.array) == [10.0] and list(trace.error_x.arrayminus) == [pytest.approx(2.0)]


def test_service_front_is_what_the_report_marks(trials):
    assert {c.number for c in config_front(config_summaries(trials))} == FRONT
    data = plotdata.pareto_data(plain_trials(trials), report_input(SweepReader.of(load_spec("mnist-quick"), trials)).front)
    assert {p.number for p in data.points if p.on_front} == FRONT


def test_store_text_in_a_hover_is_escaped():
    point = plotdata.ParetoPoint(number=3, accuracy_percent=90.0, noise_score=1.0, on_front=True, baseline="",
                                 chosen=False, params=(("<img src=x onerror=alert(1)>", "<b>"),))
    text = render.point_text(point)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt; = &lt;b&gt;" in text


def test_importances_are_drawn_as_given_not_refitted(trials):
    fig = render.importance_figure({"val_accuracy": {"lr": 0.7, "percent_on": 0.3}}, "t")
    assert list(fig.data[0].y) == ["lr", "percent_on"] and list(fig.data[0].x) == [0.7, 0.3]
    pending = render.importance_figure(None, "t")
    assert "computed when the sweep ends" in pending.layout.annotations[0].text


def test_hovering_a_front_point_in_a_real_browser_shows_its_config(trials, tmp_path):
    """The report as a user opens it: headless Chromium loads the file (offline), the mouse moves
    onto a Pareto-front point, and the hover label names the config, its seeds and its parameters."""
    import asyncio
    import shutil

    from cdp import chromium_page

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: run `bash scripts/setup.sh --test` as root, then rerun")
    configs = (plotdata.ConfigEstimate(number=1, seeds=3, accuracy=(0.9, 0.88, 0.92), noise=(200.0, 190.0, 210.0)),)
    page = tmp_path / "report.html"
    page.write_text(sweep_report(ReportInput(name="hover", front=FRONT, chosen=1, configs=configs),
                                 plain_trials(trials)))

    async def hover() -> tuple[str, str]:
        async with chromium_page(chromium, tmp_path / "profile") as tab:
            await tab.send("Page.navigate", url=page.as_uri())
            await tab.wait_for("window.Plotly !== undefined && document.querySelectorAll('#figure-0 .point').length > 0")
            before = await tab.evaluate("document.querySelector('#figure-0 .hoverlayer').textContent")
            # the front trace's one point (its marker), by the trace's legend name
            box = await tab.evaluate("""(function () {
                var gd = document.getElementById('figure-0');
                var i = gd.data.findIndex(function (t) { return t.name === 'searched (Pareto front)'; });
                var traces = gd.querySelectorAll('.scatterlayer .trace');
                var r = traces[i].querySelector('.point').getBoundingClientRect();
                return {x: r.left + r.width / 2, y: r.top + r.height / 2};
            })()""")
            await tab.move_mouse(box["x"], box["y"])
            shown = await tab.wait_for("document.querySelector('#figure-0 .hoverlayer').textContent")
            return before, shown

    before, shown = asyncio.run(hover())
    assert before == ""
    assert "#1" in shown and "Pareto front, chosen" in shown and "seeds 3" in shown
    assert "percent_on = 0.05" in shown and "val noise score 200 [190, 210]" in shown


def test_report_draws_random_searchs_expected_curve_only_where_the_setup_matches(trials, tmp_path, monkeypatch):
    from sweeps.replay import reference

    spec = load_spec("mnist-quick")
    path = tmp_path / "random-reference.json"
    reference.write_reference(spec, (0.5, 0.2), {"median": [0.0, 0.1, 0.2], "q1": [0.0, 0.05, 0.1],
                                                "q3": [0.0, 0.15, 0.3]}, seeds=30, source="bench.json", path=path)
    monkeypatch.setattr(reference, "REFERENCE_FILE", path)
    hv = report_input(SweepReader.of(spec, trials), reference.random_reference(spec)).hypervolume
    assert hv.reference_point == (0.5, 0.2) and hv.expected_median == (0.0, 0.1, 0.2)
    assert hv.trials == (1, 2, 3, 4) and "30 replayed sweeps" in hv.expected_label
    fig = render.hypervolume_figure(hv, "t")
    assert {t.name for t in fig.data} >= {"this sweep"}
    assert "(0.5, 0.2)" in fig.layout.yaxis.title.text
    other = dataclasses.replace(spec, budget=dataclasses.replace(spec.budget, epochs=spec.epochs + 1))
    assert reference.random_reference(other, path) is None  # other epochs: not comparable
    assert report_input(SweepReader.of(other, trials), reference.random_reference(other)).hypervolume.expected_trials == ()
    assert report_input(SweepReader.of(other, trials), None).hypervolume.reference_point == (0.0, 0.0)


def test_the_shipped_random_search_curve_covers_the_quick_sweep():
    """The package's recorded curve is the quick preset's set-up (its replay table), long enough
    for its searched trials and baselines, so its report draws random search's band."""
    from sweeps.replay import reference

    spec = load_spec("mnist-quick")
    ref = reference.random_reference(spec, reference.REFERENCE_FILE)
    assert ref is not None, "sweeps/replay/random-reference.json was recorded for another set-up"
    assert len(ref.median) >= spec.budget.trials + len(spec.baselines) and ref.seeds >= 30
    assert all(a <= b for a, b in zip(ref.median, ref.median[1:]))  # an anytime curve never falls
