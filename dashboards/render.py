"""Drawing: interactive plotly figures from `dashboards.plotdata`, and the self-contained HTML report.

Every figure is a `plotly.graph_objects.Figure`: the report embeds plotly.js once and each
figure's JSON, so the page opens offline and every point shows its details on hover (the Pareto
front: a config's parameters, seeds and intervals; a click opens its MLflow run when the report
knows the dashboard's address). MLflow's artifact viewer shows the same figures as HTML.
"""

from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

from .plotdata import CurveSeries, HypervolumeData, ParetoData, ParetoPoint

__all__ = [
    "noise_curve_figure",
    "pareto_figure",
    "hypervolume_figure",
    "importance_figure",
    "report_html",
]

PAPER_LEVELS = tuple(round(0.05 * i, 2) for i in range(11))
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BASELINE_COLOR = "#d62728"


def _go():
    import plotly.graph_objects as go

    return go


def _layout(fig: Any, title: str, x: str, y: str, height: int = 480) -> Any:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, template="plotly_white",
                      hovermode="closest", legend={"font": {"size": 11}}, margin={"t": 60, "r": 20, "l": 70, "b": 60})
    return fig


def _fmt_interval(interval: tuple[float, float] | None, digits: int) -> str:
    return "" if interval is None else f" [{interval[0]:,.{digits}f}, {interval[1]:,.{digits}f}]"


def point_text(p: ParetoPoint) -> str:
    """What hovering a point shows: which config, its objectives with their 95 % intervals, seeds, parameters."""
    kind = f"baseline {p.baseline}" if p.baseline else ("Pareto front" if p.on_front else "dominated")
    lines = [f"<b>#{p.number}</b> ({kind}{', chosen' if p.chosen else ''})",
             f"val accuracy {p.accuracy_percent:.2f} %{_fmt_interval(p.accuracy_interval, 2)}",
             f"val noise score {p.noise_score:,.0f}{_fmt_interval(p.noise_interval, 0)}",
             f"seeds {p.seeds}"]
    lines += [f"{html.escape(str(k))} = {v:.4g}" if isinstance(v, float) else f"{html.escape(str(k))} = {html.escape(str(v))}"
              for k, v in p.params]
    if p.link:
        lines.append("<i>click: its MLflow run</i>")
    return "<br>".join(lines)


def pareto_figure(data: ParetoData, title: str) -> Any:
    go = _go()
    fig = go.Figure()

    def scatter(points: Sequence[ParetoPoint], name: str, **marker: Any) -> None:
        if not points:
            return
        bars = all(p.accuracy_interval is not None for p in points)
        fig.add_trace(go.Scatter(
            x=[p.accuracy_percent for p in points], y=[p.noise_score for p in points], mode="markers", name=name,
            marker=marker, text=[point_text(p) for p in points], hovertemplate="%{text}<extra></extra>",
            customdata=[[p.link, p.number] for p in points],
            error_x=None if not bars else dict(type="data", symmetric=False,
                                               array=[p.accuracy_interval[1] - p.accuracy_percent for p in points],
                                               arrayminus=[p.accuracy_percent - p.accuracy_interval[0] for p in points],
                                               color="#888", thickness=1),
            error_y=None if not bars else dict(type="data", symmetric=False,
                                               array=[p.noise_interval[1] - p.noise_score for p in points],
                                               arrayminus=[p.noise_score - p.noise_interval[0] for p in points],
                                               color="#888", thickness=1),
        ))

    searched = [p for p in data.points if not p.baseline]
    if data.front:
        fig.add_trace(go.Scatter(x=[p.accuracy_percent for p in data.front], y=[p.noise_score for p in data.front],
                                 mode="lines", line={"shape": "hv", "color": COLORS[0], "width": 1},
                                 opacity=0.5, name="front", hoverinfo="skip"))
    scatter([p for p in searched if not p.on_front], "searched (dominated)", color="#c7c7c7", size=8)
    scatter([p for p in searched if p.on_front], "searched (Pareto front)", color=COLORS[0], size=10)
    scatter([p for p in data.points if p.baseline], "dense baseline", color=BASELINE_COLOR, size=11, symbol="square")
    chosen = [p for p in data.points if p.chosen]
    if chosen:
        p = chosen[0]
        fig.add_trace(go.Scatter(x=[p.accuracy_percent], y=[p.noise_score], mode="markers", name=f"chosen (#{p.number})",
                                 marker={"size": 22, "color": "rgba(0,0,0,0)", "line": {"color": "gold", "width": 3}},
                                 hoverinfo="skip"))
    return _layout(fig, title, "validation accuracy (%)", "validation noise score (correct, summed over levels)")


def noise_curve_figure(series: Sequence[CurveSeries], title: str, noise_kind: str = "") -> Any:
    go = _go()
    fig = go.Figure()
    for i, s in enumerate(series):
        color = BASELINE_COLOR if s.baseline and i == 0 else COLORS[i % len(COLORS)]
        label = s.label + (" (dense baseline)" if s.baseline else "")
        if s.low_percent:
            fig.add_trace(go.Scatter(x=[*s.levels, *reversed(s.levels)], y=[*s.high_percent, *reversed(s.low_percent)],
                                     fill="toself", fillcolor=color, opacity=0.15, line={"width": 0},
                                     name=f"{label}: 95 % interval", hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=list(s.levels), y=list(s.accuracy_percent), mode="lines+markers", name=label,
                                 line={"color": color, "dash": "dash" if s.baseline else "solid"},
                                 marker={"symbol": "square" if s.baseline else "circle"},
                                 hovertemplate=f"{html.escape(label)}<br>level %{{x}}: %{{y:.2f}} %<extra></extra>"))
    levels = sorted({lv for s in series for lv in s.levels})
    if levels and all(lv in PAPER_LEVELS for lv in levels):
        fig.update_xaxes(tickvals=list(PAPER_LEVELS))
    return _layout(fig, title, f"noise level ({noise_kind or 'fraction of input corrupted'})", "accuracy (%)")


def hypervolume_figure(data: HypervolumeData, title: str) -> Any:
    go = _go()
    fig = go.Figure()
    if data.expected_trials:
        fig.add_trace(go.Scatter(x=list(data.expected_trials), y=list(data.expected_q3), mode="lines",
                                 line={"shape": "hv", "width": 0}, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=list(data.expected_trials), y=list(data.expected_q1), mode="lines", fill="tonexty",
                                 fillcolor="rgba(0,0,0,0.12)", line={"shape": "hv", "width": 0},
                                 name=f"{data.expected_label} (interquartile)", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=list(data.expected_trials), y=list(data.expected_median), mode="lines",
                                 line={"shape": "hv", "dash": "dash", "color": "#737373"},
                                 name=f"{data.expected_label} (median)"))
    if data.trials:
        fig.add_trace(go.Scatter(x=list(data.trials), y=list(data.values), mode="lines+markers", name="this sweep",
                                 line={"shape": "hv", "color": COLORS[0]},
                                 hovertemplate="after %{x} trials: %{y:.4f}<extra></extra>"))
    ref = data.reference_point
    return _layout(fig, title, "trials ended", f"hypervolume above ({ref[0]:.3g}, {ref[1]:.3g})", height=380)


def importance_figure(imps: Mapping[str, Mapping[str, float]] | None, title: str) -> Any:
    go = _go()
    fig = go.Figure()
    if not imps:
        note = ("computed when the sweep ends" if imps is None else "not enough searched trials for importances")
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, title, "", "", height=300)
    names = sorted({k for d in imps.values() for k in d})
    for i, (objective, d) in enumerate(imps.items()):
        fig.add_trace(go.Bar(y=names, x=[d.get(n, 0.0) for n in names], orientation="h", name=objective,
                             marker={"color": COLORS[(i + 2) % len(COLORS)]},
                             hovertemplate=f"{html.escape(objective)}<br>%{{y}}: %{{x:.3f}}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(range=[0, 1])
    return _layout(fig, title, "importance (fANOVA, share of variance)", "", height=120 + 60 * len(names))


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


def _script_json(fig: Any) -> str:
    """The figure's JSON, safe inside a <script> element (no closing tag can appear in it)."""
    return fig.to_json().replace("</", "<\\/").replace("<!--", "<\\!--")


# A click on a point with a link (customdata[0]) opens it; only http(s) links are followed.
_CLICK = """document.querySelectorAll('.plot').forEach(function (el) {
  el.on('plotly_click', function (ev) {
    var d = ev.points && ev.points[0] && ev.points[0].customdata;
    var url = d && d[0];
    if (typeof url === 'string' && /^https?:\\/\\//.test(url)) { window.open(url, '_blank', 'noopener'); }
  });
});"""


def report_html(title: str, summary: Mapping[str, Any], figures: Sequence[tuple[str, Any]],
                table: Sequence[dict[str, Any]], claims: Sequence[str] = ()) -> str:
    """One self-contained HTML page: the summary, the chosen config's claims, the interactive
    figures (plotly.js inlined, so it opens offline), the Pareto table."""
    from plotly.offline import get_plotlyjs

    facts = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in summary.items())
    if claims:
        facts += ('<li><b>claims of the chosen config</b><ul class="claims">'
                  + "".join(f"<li>{html.escape(str(line))}</li>" for line in claims) + "</ul></li>")
    sections, scripts = [], []
    for i, (name, fig) in enumerate(figures):
        sections.append(f'<section><h2>{html.escape(name)}</h2><div class="plot" id="figure-{i}"></div></section>')
        scripts.append(f"(function () {{ var f = {_script_json(fig)}; "
                       f"Plotly.newPlot('figure-{i}', f.data, f.layout, {{responsive: true, displaylogo: false}}); }})();")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
.plot {{ width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f3f3f3; }}
</style>
<script>{get_plotlyjs()}</script></head>
<body><h1>{html.escape(title)}</h1><ul>{facts}</ul>{''.join(sections)}
<section><h2>Pareto configurations</h2>{_table(table)}</section>
<script>{' '.join(scripts)}
{_CLICK}</script>
</body></html>
"""
