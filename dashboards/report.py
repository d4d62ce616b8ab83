"""The sweep report: every plot of a sweep in one self-contained HTML file.

`sweep_report(spec, trials)` computes the plot data (dashboards.plotdata), draws it
(dashboards.render) and returns the HTML; `sweeps report NAME` writes it, and a finished sweep logs
it (and its PNGs) to its MLflow parent run.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import plotdata, render

__all__ = ["sweep_figures", "sweep_report"]


def _chosen(trials: Sequence[Any]) -> int | None:
    from sweeps.best import choose
    from sweeps.spec import SpecError

    front = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE" and t.values]
    data = plotdata.pareto_data(front)
    on_front = [t for t in front if any(p.number == t.number for p in data.front)]
    try:
        return choose(sorted(on_front, key=lambda t: -t.values[0])).number
    except SpecError:
        return None


def sweep_figures(name: str, trials: Sequence[Any], noise_kind: str = "") -> list[tuple[str, Any]]:
    chosen = _chosen(trials)
    return [
        ("Pareto front", render.pareto_figure(plotdata.pareto_data(trials, chosen=chosen),
                                              f"{name}: validation accuracy vs noise score")),
        ("Noise curves: dense baselines vs best sparse configs", render.noise_curve_figure(plotdata.overlay_curves(trials),
                                                   f"{name}: dense baselines vs best sparse configs (validation)",
                                                   noise_kind)),
        ("Hypervolume against wall time", render.hypervolume_figure(plotdata.hypervolume_over_time(trials),
                                                  f"{name}: hypervolume of the Pareto front")),
        ("Parameter importances", render.importance_figure(plotdata.importances(trials),
                                                 f"{name}: parameter importances per objective")),
    ]


def sweep_report(spec: Any, trials: Sequence[Any], figures: list[tuple[str, Any]] | None = None) -> str:
    """The report's HTML; ``figures`` are `sweep_figures`' output when the caller already drew them."""
    states = [getattr(t.state, "name", str(t.state)) for t in trials]
    chosen = _chosen(trials)
    summary = {
        "dataset": spec.dataset.name,
        "base network": spec.network.name,
        "objectives": "validation accuracy and validation noise score (both maximized)",
        "noise": spec.noise.kind_for(spec.dataset.name),
        "trials": f"{states.count('COMPLETE')} complete, {states.count('FAIL')} failed, "
                  f"{states.count('PRUNED')} stopped early, of {spec.num_samples}",
        "searcher": f"{spec.searcher.algorithm} (seed {spec.searcher.seed})",
        "chosen config (knee)": "none yet" if chosen is None else f"trial #{chosen}",
    }
    if figures is None:
        figures = sweep_figures(spec.name, trials, spec.noise.kind_for(spec.dataset.name))
    return render.report_html(f"Sweep report: {spec.name}", summary, figures, plotdata.pareto_table(trials))
