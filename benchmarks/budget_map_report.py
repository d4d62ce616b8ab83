"""The budget map's table and figure, from the runs `benchmarks/budget_map.py` wrote alone.

For every budget point (training images x epochs; a run of E epochs gives the points 1..E, see
budget_map.py) and network: n seeds, the mean validation noise score with its sd and Student-t
95 % interval, the mean validation accuracy, and seconds per trial (training with its per-epoch
validation, plus one noise curve). For every sparse network: its difference from dense (Welch's
95 % interval and two-sided p), the sd ratio to dense, and the seeds a side that 80 % power at 5 %
needs to show that difference (normal approximation, at the two observed sds).

    python -m benchmarks.budget_map_report            # print the table
    python -m benchmarks.budget_map_report --write    # and write docs/benchmarks/budget-map.md's
                                                      # table and docs/benchmarks/budget-map.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "budget-map"
PAGE = ROOT / "docs" / "benchmarks" / "budget-map.md"
FIGURE = ROOT / "docs" / "benchmarks" / "budget-map.png"
BEGIN, END = "<!-- budget-map:begin (python -m benchmarks.budget_map_report --write) -->", "<!-- budget-map:end -->"

DENSE = ("dense", "dense-dropout")


@dataclass(frozen=True)
class Point:
    """One budget point: the budget's runs scored after ``epoch`` epochs."""

    budget: str
    train_images: int
    epoch: int
    first_epoch_batch: int | None

    @property
    def label(self) -> str:
        b16 = f", first batch {self.first_epoch_batch}" if self.first_epoch_batch else ""
        return f"{self.train_images // 1000}k x {self.epoch}{b16}"


@dataclass(frozen=True)
class Cell:
    """One network at one point: its seeds' scores."""

    network: str
    noise: tuple[float, ...]
    accuracy: tuple[float, ...]
    seconds: tuple[float, ...]  # wall: grows with the machine's load
    cpu_seconds: tuple[float, ...] = ()  # one thread's CPU time (NaN for runs that did not record it)
    reused_from: str | None = None  # a dense network's runs taken from the budget with the same training

    @property
    def n(self) -> int:
        return len(self.noise)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.noise)

    @property
    def sd(self) -> float:
        return statistics.stdev(self.noise) if self.n > 1 else float("nan")

    def interval(self) -> tuple[float, float]:
        """Student-t 95 % interval of the mean."""
        from scipy import stats

        if self.n < 2:
            return (float("nan"), float("nan"))
        half = stats.t.ppf(0.975, self.n - 1) * self.sd / math.sqrt(self.n)
        return self.mean - half, self.mean + half


@dataclass(frozen=True)
class Difference:
    diff: float
    low: float
    high: float
    p: float
    sd_ratio: float
    seeds_for_power: float  # per side, 80 % power, two-sided 5 %


def welch(a: Cell, b: Cell) -> Difference:
    """``a`` minus ``b``: Welch's 95 % interval and two-sided p; the sd ratio a/b; the seeds a side
    that 80 % power needs for this difference at these sds (normal approximation)."""
    from scipy import stats

    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    diff = a.mean - b.mean
    half = stats.t.ppf(0.975, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    need = z ** 2 * (a.sd ** 2 + b.sd ** 2) / diff ** 2 if diff else math.inf
    return Difference(diff, diff - half, diff + half, p, a.sd / b.sd, need)


def load(results: Path = RESULTS) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*.json"))]


def cells(runs: Iterable[dict]) -> dict[Point, dict[str, Cell]]:
    """Every (point, network) cell of ``runs``. A budget that changes only sparse recipes (its
    dense runs are absent) takes its dense cells from the budget with the same images and epochs."""
    raw: dict[Point, dict[str, list[tuple[float, float, float]]]] = {}
    for run in runs:
        recipe = run["config"]["recipe"]
        first = recipe.get("first_epoch_batch_size")
        changed = first if run["budget"].endswith("-b16") else None
        elapsed = cpu = 0.0
        for e in run["epochs"]:
            elapsed += e["seconds"]
            cpu += e.get("cpu_seconds", math.nan)
            point = Point(run["budget"], run["train_images"], e["epoch"], changed)
            raw.setdefault(point, {}).setdefault(run["network"], []).append(
                (e["val_noise_score"], e["val_accuracy"], elapsed + e["noise_seconds"],
                 cpu + e.get("noise_cpu_seconds", math.nan)))
    out: dict[Point, dict[str, Cell]] = {}
    for point, nets in raw.items():
        row = {name: Cell(name, *map(tuple, zip(*values))) for name, values in nets.items()}
        if not any(n in row for n in DENSE):
            twin = next((p for p in raw if p.train_images == point.train_images and p.epoch == point.epoch
                         and p.first_epoch_batch is None), None)
            for name in DENSE:
                if twin is not None and name in raw[twin]:
                    c = Cell(name, *map(tuple, zip(*raw[twin][name])))
                    row[name] = Cell(name, c.noise, c.accuracy, c.seconds, c.cpu_seconds, reused_from=twin.budget)
        out[point] = row
    return dict(sorted(out.items(), key=lambda kv: (kv[0].first_epoch_batch is not None,
                                                   kv[0].train_images, kv[0].epoch)))


def _fmt(x: float, digits: int = 0) -> str:
    return "-" if x != x else f"{x:,.{digits}f}"


def _cpu(c: Cell) -> str:
    known = [s for s in c.cpu_seconds if s == s]
    return "-" if not known else f"{statistics.median(known):.0f} (n={len(known)})"


def table_lines(table: dict[Point, dict[str, Cell]], noise_max: int) -> list[str]:
    lines = [
        f"Validation noise score (maximum {noise_max:,}): mean ± sd [95 % interval], n seeds; validation accuracy "
        "(%); seconds per trial: the median wall time (it grows with the machine's load, recorded above) and, "
        "where the runs recorded it, the median CPU time of their one thread (what the trial costs on an idle core).",
        "",
        "| budget | network | n | noise score | 95 % interval | val acc | wall s / trial | CPU s / trial |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for point, row in table.items():
        for name, c in row.items():
            lo, hi = c.interval()
            note = f" (runs of {c.reused_from})" if c.reused_from else ""
            lines.append(f"| {point.label} | {name}{note} | {c.n} | {_fmt(c.mean)} ± {_fmt(c.sd)} | "
                         f"[{_fmt(lo)}, {_fmt(hi)}] | {100 * statistics.fmean(c.accuracy):.2f} | "
                         f"{statistics.median(c.seconds):.0f} | {_cpu(c)} |")
    return lines


def difference_lines(table: dict[Point, dict[str, Cell]]) -> list[str]:
    lines = [
        "Each sparse network minus dense (Welch): the difference of mean noise scores with its 95 % interval and "
        "two-sided p, accuracy given up (points), the ratio of seed sds (sparse / dense), and the seeds a side that "
        "80 % power (two-sided 5 %) needs to show that difference at these sds.",
        "",
        "| budget | network | noise minus dense | 95 % interval | p | accuracy minus dense | sd ratio | seeds a side for 80 % power |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for point, row in table.items():
        dense = row.get("dense")
        if dense is None or dense.n < 2:
            continue
        for name, c in row.items():
            if name in DENSE or c.n < 2:
                continue
            d = welch(c, dense)
            acc = 100 * (statistics.fmean(c.accuracy) - statistics.fmean(dense.accuracy))
            lines.append(f"| {point.label} | {name} | {d.diff:+,.0f} | [{d.low:+,.0f}, {d.high:+,.0f}] | "
                         f"{d.p:.3g} | {acc:+.2f} | {d.sd_ratio:.2f} | {math.ceil(d.seeds_for_power) if d.diff > 0 else '-'} |")
    return lines


def figure(table: dict[Point, dict[str, Cell]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({n for row in table.values() for n in row}, key=lambda n: (n not in DENSE, n))
    points = [p for p in table if p.first_epoch_batch is None]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for j, p in enumerate(points):
            c = table[p].get(name)
            if c is None or c.n < 2:
                continue
            a, b = c.interval()
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(c.mean)
            lo.append(c.mean - a)
            hi.append(b - c.mean)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o" if name in DENSE else "s", capsize=3, label=name)
    ax.set_xticks(range(len(points)), [p.label for p in points], rotation=30)
    ax.set_xlabel("training budget (images x epochs)")
    ax.set_ylabel("validation noise score (mean, 95 % interval)")
    ax.set_title("Noise score by training budget: dense is a lottery, sparse is steady")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_lines(runs: list[dict]) -> list[str]:
    loads = [r["load_average"]["start"][0] for r in runs]
    cpus = sorted({r["machine"]["cpu"] for r in runs})
    commits = sorted({r["code"]["commit"][:10] for r in runs})
    dirty = sum(bool(r["code"]["uncommitted_changes"]) for r in runs)
    return [f"{len(runs)} runs; {', '.join(cpus)}, {runs[0]['machine']['cpus']} cores, 1 torch thread a run, "
            f"{max(r['machine'].get('niceness', 0) for r in runs)} niceness; 1-minute load at a run's start "
            f"{min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f}); code {', '.join(commits)}"
            f"{f' ({dirty} with uncommitted changes)' if dirty else ''}."]


def build(runs: list[dict]) -> list[str]:
    table = cells(runs)
    return [*machine_lines(runs), "", *table_lines(table, runs[0]["noise_max"]), "", *difference_lines(table)]


def write(lines: list[str], page: Path = PAGE) -> None:
    text = page.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest:
        raise SystemExit(f"{page}: the markers {BEGIN!r} and {END!r} are missing")
    page.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the page's table and the figure")
    args = parser.parse_args(argv)
    runs = load()
    if not runs:
        print(f"no runs under {RESULTS.relative_to(ROOT)}: run python -m benchmarks.budget_map first", file=sys.stderr)
        return 2
    lines = build(runs)
    print("\n".join(lines))
    if args.write:
        write(lines)
        figure(cells(runs), FIGURE)
        print(f"wrote {PAGE.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
