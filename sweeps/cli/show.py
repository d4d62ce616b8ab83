"""How the commands show a sweep: the trials and front tables, the notes under them, the outcome
of a run. Plain rows from the sweep's record (`sweeps.search.record.trial_row`)."""

from __future__ import annotations

from typing import Any, Iterable

from sweeps.cli.console import console, shown, table
from sweeps.search.record import BASELINE, FAIL_REASON, REPLICATE_OF, trial_row

FRONT_NOTE = ("front on the means of each config's seeds, ± the 95% interval; a confirmed config's figures rest on its "
              "replicate seeds only (its first seed chose it)")


def estimate_cell(row: dict, key: str, scale: float, fmt: str) -> str:
    """``mean ± half-width (n)`` of a config's estimate, or the plain value of a trial."""
    est = (row.get("estimates") or {}).get(key)
    value = row.get(key)
    if est is None or est["n"] == 1:
        return "" if value is None else format(scale * value, fmt)
    cell = format(scale * est["mean"], fmt)
    if est["low"] is not None:
        cell += " ± " + format(scale * (est["high"] - est["low"]) / 2, fmt)
    return f"{cell} (n={est['n']})"


def front_table(title: str, trials: Iterable[Any]) -> object:
    rows = []
    for t in trials:
        r = trial_row(t)
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items()
                           if k not in (BASELINE, REPLICATE_OF))
        kind = r[BASELINE] or ""
        if r.get(REPLICATE_OF) is not None:
            kind = (kind + " " if kind else "") + f"rep of #{r[REPLICATE_OF]}"
        rows.append([r["number"], r["state"], kind,
                     estimate_cell(r, "val_accuracy", 100, ".2f"), estimate_cell(r, "val_noise_score", 1, ",.0f"),
                     estimate_cell(r, "test_accuracy", 100, ".2f"), params or r[FAIL_REASON]])
    return table(title, ["#", "state", "baseline / replicate", "val acc %", "val noise score", "test acc %", "params"],
                 rows)


def print_front_note(front: list[Any], name: str) -> None:
    if any(getattr(c, "confirmed", False) for c in front):
        console.print(FRONT_NOTE)
    elif front:
        console.print(f"one seed per config: no intervals yet; add seed replicates with: sweeps confirm {name}")


def print_outcome(outcome: Any) -> None:
    from sweeps.stores.secrets import display

    console.print(front_table(f"Pareto front of {outcome.name} ({outcome.seconds:.0f}s)", outcome.front))
    print_front_note(outcome.front, outcome.name)
    console.print(f"browse: [bold]sweeps dashboard {outcome.name}[/]  (MLflow at {shown(display(outcome.tracking_uri))}, "
                  f"experiment {outcome.mlflow_experiment_id})")
    console.print(f"pick a config: [bold]sweeps best {outcome.name}[/]")
