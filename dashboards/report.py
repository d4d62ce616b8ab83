"""The sweep report: every plot of a sweep, interactive, in one self-contained HTML file.

`sweep_report(report, trials)` computes the plot data (dashboards.plotdata), draws it
(dashboards.render) and returns the HTML. It takes plain data only: a `ReportInput` (the sweep's
name, its summary facts, the noise kind, the chosen trial, the Pareto front and the hypervolume
curve, all computed by the service) and the trials as `plotdata.TrialData`; the sweep service builds
both (`sweeps.results.read.report_input`, `plain_trials`), so dashboards never imports sweeps nor
knows how a trial is stored. `sweeps report NAME`
writes the page, and a finished sweep logs it (and its PNGs) to its MLflow parent run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from . import plotdata, render

__all__ = ["ReportInput", "sweep_figures", "sweep_report"]


@dataclass(frozen=True)
class ReportInput:
    """What a report says besides its trials: plain values."""

    name: str
    summary: Mapping[str, str] = field(default_factory=dict)  # facts listed at the top, in order
    noise_kind: str = ""
    chosen: int | None = None  # the trial marked as the chosen config
    objectives: tuple[str, ...] = ("val_accuracy", "val_noise_score")
    front: frozenset[int] = frozenset()  # trial numbers on the Pareto front
    hypervolume: plotdata.HypervolumeData = plotdata.HypervolumeData((0.0, 0.0))
    configs: tuple[plotdata.ConfigEstimate, ...] = ()  # one per config, over its seeds (replicates folded in)
    links: Mapping[int, str] = field(default_factory=dict)  # trial number -> its MLflow run's page
    # parameter -> importance per objective, computed once when the sweep ended (None: not yet)
    importances: Mapping[str, Mapping[str, float]] | None = None
    claims: tuple[str, ...] = ()  # what the sweep claims of the chosen config, line by line, as `sweeps best` says it


def sweep_figures(report: ReportInput, trials: Sequence[Any]) -> list[tuple[str, Any]]:
    name = report.name
    return [
        ("Pareto front", render.pareto_figure(plotdata.pareto_data(trials, report.front, chosen=report.chosen,
                                                                   configs=report.configs, links=report.links),
                                              f"{name}: validation accuracy vs noise score")),
        ("Noise curves: dense baselines vs best sparse configs",
         render.noise_curve_figure(plotdata.overlay_curves(trials, report.front, configs=report.configs),
                                   f"{name}: dense baselines vs best sparse configs (validation)", report.noise_kind)),
        ("Hypervolume against trials", render.hypervolume_figure(report.hypervolume,
                                                                 f"{name}: hypervolume of the Pareto front")),
        ("Parameter importances", render.importance_figure(report.importances,
                                                           f"{name}: parameter importances per objective")),
    ]


def sweep_report(report: ReportInput, trials: Sequence[Any], figures: list[tuple[str, Any]] | None = None) -> str:
    """The report's HTML; ``figures`` are `sweep_figures`' output when the caller already drew them."""
    if figures is None:
        figures = sweep_figures(report, trials)
    return render.report_html(f"Sweep report: {report.name}", dict(report.summary), figures,
                              plotdata.pareto_table(trials, report.front, report.configs), report.claims)
