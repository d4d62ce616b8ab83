"""Drawing: matplotlib figures from `dashboards.plotdata`, and the self-contained HTML report.

Figures are built with `matplotlib.figure.Figure` (no pyplot, no global state), so they render
headless and from worker threads.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any, Sequence

from matplotlib.figure import Figure

from .plotdata import CurveSeries, HypervolumeData, ParetoData

__all__ = [
    "noise_curve_figure",
    "pareto_figure",
    "hypervolume_figure",
    "importance_figure",
    "figure_png",
    "report_html",
]

PAPER_LEVELS = tuple(round(0.05 * i, 2) for i in range(11))


def noise_curve_figure(series: Sequence[CurveSeries], title: str, noise_kind: str = "") -> Figure:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for s in series:
        style = dict(linestyle="--", marker="s") if s.baseline else dict(linestyle="-", marker="o")
        (line,) = ax.plot(s.levels, s.accuracy_percent, label=s.label + (" (dense baseline)" if s.baseline else ""),
                          **style)
        if s.low_percent:
            ax.fill_between(s.levels, s.low_percent, s.high_percent, color=line.get_color(), alpha=0.15, linewidth=0)
    if any(s.low_percent for s in series):
        ax.fill_between([], [], [], color="0.6", alpha=0.3, label="95% interval over seeds")
    levels = sorted({lv for s in series for lv in s.levels})
    if levels and all(lv in PAPER_LEVELS for lv in levels):
        ax.set_xticks(PAPER_LEVELS)
    ax.set_xlabel(f"noise level ({noise_kind or 'fraction of input corrupted'})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return fig


def pareto_figure(data: ParetoData, title: str) -> Figure:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    searched = [p for p in data.points if not p.baseline]
    dominated = [p for p in searched if not p.on_front]
    front = [p for p in searched if p.on_front]
    ax.scatter([p.accuracy_percent for p in dominated], [p.noise_score for p in dominated],
               c="lightgray", label="searched (dominated)")
    ax.scatter([p.accuracy_percent for p in front], [p.noise_score for p in front], c="tab:blue",
               label="searched (Pareto front)")
    for p in data.points:
        if p.baseline:
            ax.scatter([p.accuracy_percent], [p.noise_score], marker="s", c="tab:red", s=60)
            ax.annotate(p.baseline, (p.accuracy_percent, p.noise_score), textcoords="offset points",
                        xytext=(5, -10), fontsize=8, color="tab:red")
    if any(p.baseline for p in data.points):
        ax.scatter([], [], marker="s", c="tab:red", label="dense baseline")
    if data.front:
        ax.step([p.accuracy_percent for p in data.front], [p.noise_score for p in data.front], where="post",
                color="tab:blue", alpha=0.5)
    bars = [p for p in data.points if p.accuracy_interval is not None]
    if bars:
        ax.errorbar([p.accuracy_percent for p in bars], [p.noise_score for p in bars],
                    xerr=[[p.accuracy_percent - p.accuracy_interval[0] for p in bars],
                          [p.accuracy_interval[1] - p.accuracy_percent for p in bars]],
                    yerr=[[p.noise_score - p.noise_interval[0] for p in bars],
                          [p.noise_interval[1] - p.noise_score for p in bars]],
                    fmt="none", ecolor="0.35", elinewidth=1, capsize=3, label="95% interval over seeds")
    for p in data.points:
        if p.chosen:
            ax.scatter([p.accuracy_percent], [p.noise_score], s=250, facecolors="none", edgecolors="gold",
                       linewidths=2.5, label=f"chosen (#{p.number})")
    ax.set_xlabel("validation accuracy (%)")
    ax.set_ylabel("validation noise score (correct, summed over levels)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def hypervolume_figure(data: HypervolumeData, title: str) -> Figure:
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    if data.expected_trials:
        ax.fill_between(data.expected_trials, data.expected_q1, data.expected_q3, step="post", color="0.85",
                        label=f"{data.expected_label} (interquartile)")
        ax.step(data.expected_trials, data.expected_median, where="post", color="0.45", linestyle="--",
                label=f"{data.expected_label} (median)")
    if data.trials:
        ax.step(data.trials, data.values, where="post", marker="o", color="C0", label="this sweep")
    ref = data.reference_point
    ax.set_xlabel("trials ended")
    ax.set_ylabel(f"hypervolume above ({ref[0]:.3g}, {ref[1]:.3g})")
    if data.trials or data.expected_trials:
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def importance_figure(imps: dict[str, dict[str, float]], title: str) -> Figure:
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    if not imps:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "not enough searched trials for importances", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(1, len(imps), sharey=True, squeeze=False)[0]
    names = sorted({k for d in imps.values() for k in d})
    for ax, (objective, d) in zip(axes, imps.items()):
        ax.barh(names, [d.get(n, 0.0) for n in names], color="tab:green")
        ax.set_xlabel("importance (fANOVA, share of variance)")
        ax.set_title(objective, fontsize=9)
        ax.set_xlim(0, 1)
    fig.suptitle(title)
    return fig


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No finished trials yet.</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{html.escape(json.dumps(r[c]) if isinstance(r[c], (dict, list)) else ('' if r[c] is None else str(r[c])))}</td>"
            for c in cols
        ) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(title: str, summary: dict[str, Any], figures: Sequence[tuple[str, Figure]], table: Sequence[dict[str, Any]]) -> str:
    """One self-contained HTML page: summary, figures as embedded PNGs, the Pareto table."""
    facts = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in summary.items())
    sections = "".join(f"<section><h2>{html.escape(name)}</h2>{_img(fig, name)}</section>" for name, fig in figures)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; color: #222; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }}
</style></head>
<body><h1>{html.escape(title)}</h1><ul>{facts}</ul>{sections}
<section><h2>Pareto configurations</h2>{_table(table)}</section>
</body></html>
"""
