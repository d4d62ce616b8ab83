"""Build the Table 1 section of docs/paper.md and the Figure-5 plot from the campaign's files.

Reads only `benchmarks/results/table1/<variant>/<network>-seed<S>.json` (written by
`reproduce_paper.py`), so every figure traces to one file:

* the table, twice: as the paper scored it (per seed, the epoch of highest test accuracy) and for the
  final-epoch model: per network, seeds, test accuracy and noise score as mean ± sd beside the paper's,
  the differences (accuracy in points, noise score in the paper's standard deviations) and the
  targets (accuracy within 0.3 points, noise score within 1 paper sd);
* the paper's noise ordering, each comparison with Welch's t-test: every sparse CNN above the
  dense CNN of its depth, and DSW lowest of the CNN-2 family;
* the ablation of the training-set size (`split55k` against `paper`, same seeds);
* the determinism check (`repeat` against `paper`, same seed: identical numbers);
* Figure 5: test accuracy against noise level, mean over seeds with a min-max band, 8 networks
  (benchmarks/results/table1/figure5.png).

    python -m benchmarks.table1_report [--write]   # prints; --write also updates docs/paper.md
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "table1"
DOC = ROOT / "docs" / "paper.md"
FIGURE = RESULTS / "figure5.png"
BEGIN, END = "<!-- table1:begin (benchmarks/table1_report.py --write) -->", "<!-- table1:end -->"

LABELS = {
    "dense-cnn1": "Dense CNN-1", "dense-cnn2": "Dense CNN-2", "sparse-cnn1": "Sparse CNN-1",
    "sparse-cnn2": "Sparse CNN-2", "dense-cnn2-sp3": "Dense CNN-2 SP3", "sparse-cnn2-d3": "Sparse CNN-2 D3",
    "sparse-cnn2-w1": "Sparse CNN-2 W1", "sparse-cnn2-dsw": "Sparse CNN-2 DSW",
}
# Table 1 of the paper, 10 seeds: (accuracy %, sd, noise score, sd)
PAPER = {
    "dense-cnn1": (99.14, 0.03, 74_569, 3_200), "dense-cnn2": (99.31, 0.06, 97_040, 2_853),
    "sparse-cnn1": (98.41, 0.08, 100_306, 1_735), "sparse-cnn2": (99.09, 0.05, 103_764, 1_125),
    "dense-cnn2-sp3": (99.13, 0.07, 100_318, 2_762), "sparse-cnn2-d3": (98.89, 0.13, 102_328, 1_720),
    "sparse-cnn2-w1": (98.20, 0.19, 100_322, 2_082), "sparse-cnn2-dsw": (98.92, 0.09, 70_566, 2_857),
}
ACCURACY_TOLERANCE = 0.3  # points
# The paper's ordering: (higher, lower) noise score pairs, each a sparse CNN above the dense CNN of its depth.
ABOVE_DENSE = [("sparse-cnn1", "dense-cnn1"), ("sparse-cnn2", "dense-cnn2"), ("dense-cnn2-sp3", "dense-cnn2"),
               ("sparse-cnn2-d3", "dense-cnn2"), ("sparse-cnn2-w1", "dense-cnn2")]
CNN2_FAMILY = ["dense-cnn2", "sparse-cnn2", "dense-cnn2-sp3", "sparse-cnn2-d3", "sparse-cnn2-w1", "sparse-cnn2-dsw"]


def load(variant: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((RESULTS / variant).glob("*.json")):
        run = json.loads(path.read_text())
        run["_file"] = str(path.relative_to(ROOT))
        out.setdefault(run["network"], []).append(run)
    for runs in out.values():
        runs.sort(key=lambda r: r["seed"])
    return out


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """(difference of means, two-sided Welch p); p NaN with fewer than 2 values a side."""
    from scipy import stats

    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, math.nan
    return diff, float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def seeds_for_power(diff: float, sd_a: float, sd_b: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Seeds a side for a two-sided test at ``alpha`` to find ``diff`` with probability ``power``, given
    the two sides' standard deviations (normal approximation: (z_{1-alpha/2} + z_power)^2 (sd_a^2 + sd_b^2) / diff^2)."""
    from scipy import stats

    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return max(2, math.ceil(z * z * (sd_a * sd_a + sd_b * sd_b) / (diff * diff)))


def fmt(v: float, digits: int = 2, thousands: bool = False) -> str:
    if math.isnan(v):
        return "—"
    return f"{v:,.{digits}f}" if thousands else f"{v:.{digits}f}"


PROTOCOLS = {
    "best": "the paper's table protocol: per seed, the epoch with the highest test accuracy (its test_score_table.py)",
    "final": "the final-epoch model (no choice made on the test set)",
}


def scores(run: dict[str, Any], protocol: str) -> tuple[float, float]:
    """(test accuracy %, noise score) of a run under ``protocol``."""
    src = run["best_test_epoch"] if protocol == "best" else run
    return 100 * src["test_accuracy"], float(src["test_noise_score"])


def table_lines(paper: dict[str, list[dict[str, Any]]], protocol: str = "best") -> tuple[list[str], list[str]]:
    lines = [
        "| network | seeds | test acc % (ours) | paper | diff (points) | noise score (ours) | paper | diff (paper sd) | "
        "targets (acc ±0.3, noise ±1 sd) | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for net in LABELS:
        runs = paper.get(net, [])
        pa, pas, ps, pss = PAPER[net]
        if not runs:
            lines.append(f"| {LABELS[net]} | 0 | — | {pa:.2f} ± {pas:.2f} | — | — | {ps:,} ± {pss:,} | — | not run yet | — |")
            continue
        am, asd = mean_sd([scores(r, protocol)[0] for r in runs])
        sm, ssd = mean_sd([scores(r, protocol)[1] for r in runs])
        acc_ok = abs(am - pa) <= ACCURACY_TOLERANCE
        noise_ok = abs(sm - ps) <= pss
        wall = statistics.fmean(r["wall_seconds"] for r in runs)
        verdict = f"{'met' if acc_ok else 'MISSED'} / {'met' if noise_ok else 'MISSED'}"
        lines.append(
            f"| {LABELS[net]} | {len(runs)} | {fmt(am)} ± {fmt(asd)} | {pa:.2f} ± {pas:.2f} | {am - pa:+.2f} | "
            f"{fmt(sm, 0, True)} ± {fmt(ssd, 0, True)} | {ps:,} ± {pss:,} | {(sm - ps) / pss:+.2f} | {verdict} | {wall:.0f} |")
        verdicts.append(f"{LABELS[net]}: accuracy {am - pa:+.2f} points ({'within' if acc_ok else 'outside'} 0.3), "
                        f"noise score {(sm - ps) / pss:+.2f} paper sd ({'within' if noise_ok else 'outside'} 1), n={len(runs)}")
    return lines, verdicts


PAPER_SEEDS = 10


def welch_vs_paper(ours: list[float], paper_mean: float, paper_sd: float) -> tuple[float, tuple[float, float]]:
    """Two-sided Welch p of our runs against the paper's summary (mean, sd over its 10 seeds), and the 95 %
    interval of the difference (ours minus paper). The paper's sd is numpy's population sd (its
    test_score_table.py), so it is rescaled to the sample sd first. NaNs with fewer than 2 runs."""
    from scipy import stats

    if len(ours) < 2:
        return math.nan, (math.nan, math.nan)
    mean, sd = mean_sd(ours)
    paper_sample_sd = paper_sd * math.sqrt(PAPER_SEEDS / (PAPER_SEEDS - 1))
    p = float(stats.ttest_ind_from_stats(mean, sd, len(ours), paper_mean, paper_sample_sd, PAPER_SEEDS,
                                         equal_var=False).pvalue)
    v_ours, v_paper = sd * sd / len(ours), paper_sample_sd ** 2 / PAPER_SEEDS
    df = (v_ours + v_paper) ** 2 / (v_ours ** 2 / (len(ours) - 1) + v_paper ** 2 / (PAPER_SEEDS - 1))
    half = float(stats.t.ppf(0.975, df)) * math.sqrt(v_ours + v_paper)
    return p, (mean - paper_mean - half, mean - paper_mean + half)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for a family of tests (NaN stays NaN, and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = list(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def vs_paper_lines(paper: dict[str, list[dict[str, Any]]], protocol: str = "best") -> list[str]:
    """Each network against the paper's own 10 seeds (Welch's t-test from its mean and sd, and Holm's
    adjustment over the networks compared), and how many networks land below the paper's noise score,
    with a two-sided sign test."""
    from scipy import stats

    nets = [net for net in LABELS if paper.get(net)]
    rows = []
    for net in nets:
        acc = [scores(r, protocol)[0] for r in paper[net]]
        noise = [scores(r, protocol)[1] for r in paper[net]]
        pa, pas, ps, pss = PAPER[net]
        rows.append((net, len(acc), statistics.fmean(acc) - pa, *welch_vs_paper(acc, pa, pas),
                     statistics.fmean(noise) - ps, *welch_vs_paper(noise, ps, pss)))
    acc_p, noise_diff, noise_p = [r[3] for r in rows], [r[5] for r in rows], [r[6] for r in rows]
    acc_holm, noise_holm = holm(acc_p), holm(noise_p)
    lines = [f"| network | seeds (ours / paper) | test acc: ours minus paper [95 % CI], Welch p (Holm over the {len(nets)}) | "
             f"noise score: ours minus paper [95 % CI], Welch p (Holm over the {len(nets)}) |", "|---|---|---|---|"]
    for (net, n, dacc, pacc, cacc, dnoise, pnoise, cnoise), hacc, hnoise in zip(rows, acc_holm, noise_holm):
        lines.append(f"| {LABELS[net]} | {n} / {PAPER_SEEDS} | {dacc:+.2f} [{cacc[0]:+.2f}, {cacc[1]:+.2f}], "
                     f"p={fmt(pacc, 3)} ({fmt(hacc, 3)}) | {dnoise:+,.0f} [{cnoise[0]:+,.0f}, {cnoise[1]:+,.0f}], "
                     f"p={fmt(pnoise, 3)} ({fmt(hnoise, 3)}) |")
    if nets:
        below = sum(d < 0 for d in noise_diff)
        sign_p = stats.binomtest(below, len(nets), 0.5).pvalue
        lines += ["", f"Networks whose mean noise score is below the paper's: {below} of {len(nets)} "
                      f"(two-sided sign test p={fmt(sign_p, 3)})."]
    return lines


def significant(p: float) -> str:
    return "— (n < 2)" if math.isnan(p) else ("yes" if p < 0.05 else "no")


def ordering_lines(paper: dict[str, list[dict[str, Any]]], protocol: str = "best") -> list[str]:
    """Each of the paper's orderings: our difference and Welch p, and the seeds a side that 80 % power
    would need to find the paper's difference at the spread of our seeds."""
    score = {net: [scores(r, protocol)[1] for r in runs] for net, runs in paper.items()}
    lines = ["| comparison (noise score) | ours: difference, Welch p, n | paper: difference | direction as the paper's "
             "| significant (p < 0.05) | seeds a side for 80 % power: our sds / the paper's |", "|---|---|---|---|---|---|"]

    def row(label: str, hi: str, lo: str, paper_diff: float) -> str:
        need_paper = seeds_for_power(paper_diff, PAPER[hi][3], PAPER[lo][3])
        if hi not in score or lo not in score:
            return f"| {label} | not run yet | {paper_diff:+,} | — | — | — / {need_paper} |"
        diff, p = welch(score[hi], score[lo])
        need = seeds_for_power(paper_diff, mean_sd(score[hi])[1], mean_sd(score[lo])[1]) if min(
            len(score[hi]), len(score[lo])) > 1 else "—"
        return (f"| {label} | {diff:+,.0f}, p={fmt(p, 3)}, n={len(score[hi])}/{len(score[lo])} | {paper_diff:+,} | "
                f"{'yes' if (diff > 0) == (paper_diff > 0) else 'NO'} | {significant(p)} | {need} / {need_paper} |")

    for hi, lo in ABOVE_DENSE:
        lines.append(row(f"{LABELS[hi]} > {LABELS[lo]}", hi, lo, PAPER[hi][2] - PAPER[lo][2]))
    family = [n for n in CNN2_FAMILY if n in score]
    if "sparse-cnn2-dsw" in score and len(family) > 1:
        others = [n for n in family if n != "sparse-cnn2-dsw"]
        nearest = min(others, key=lambda n: statistics.fmean(score[n]))
        lines.append(row(f"DSW lowest of the CNN-2 family (next lowest: {LABELS[nearest]})", "sparse-cnn2-dsw", nearest,
                         PAPER["sparse-cnn2-dsw"][2] - PAPER[nearest][2]))
    return lines


ABLATIONS = {  # variant -> (its section's heading, what differs, the paper's setting, the variant's)
    "split55k": ("Ablation of the training-set size (the same seeds):",
                 "training images", "60,000 (paper)", "55,000 (sweeps' split)"),
    "conv-half": ("Ablation: every conv layer's weights 50 % sparse, dense nets included (the authors' working code "
                  "had this default from 11 to 25 March 2019; does Table 1 carry it?), the same seeds:",
                  "conv weights", "dense (paper's config)", "50 % sparse (March 2019 working code)"),
    "topk": ("Ablation of the tie rule: every k-winners layer keeps exactly k units, as the paper's code did "
             "(`torch.topk`), where ours keeps every unit tied with the k-th value, the same seeds:",
             "k-winners ties", "all tied units kept (ours)", "exactly k (paper's topk)"),
}


def ablation_lines(paper: dict[str, list[dict[str, Any]]], ablated: dict[str, list[dict[str, Any]]],
                   variant: str) -> list[str]:
    """The variant's runs beside the paper runs of the same seeds, and their difference (variant minus paper)."""
    _, what, paper_label, variant_label = ABLATIONS[variant]
    lines = [f"| network | {what} | seeds | test acc % | noise score | files |", "|---|---|---|---|---|---|"]
    rows = []
    for net, changed in ablated.items():
        seeds = {r["seed"] for r in changed}
        base = [r for r in paper.get(net, []) if r["seed"] in seeds]
        for label, runs in ((paper_label, base), (variant_label, changed)):
            if not runs:
                continue
            am, asd = mean_sd([scores(r, "best")[0] for r in runs])
            sm, ssd = mean_sd([scores(r, "best")[1] for r in runs])
            lines.append(f"| {LABELS[net]} | {label} | {', '.join(str(r['seed']) for r in runs)} | {fmt(am)} ± {fmt(asd)} | "
                         f"{fmt(sm, 0, True)} ± {fmt(ssd, 0, True)} | `{Path(runs[0]['_file']).parent}/` |")
        if base and len(base) == len(changed):
            da, pa = welch([scores(r, "best")[0] for r in changed], [scores(r, "best")[0] for r in base])
            ds, ps = welch([scores(r, "best")[1] for r in changed], [scores(r, "best")[1] for r in base])
            rows.append(f"{LABELS[net]}: {variant} minus paper: accuracy {da:+.2f} points (Welch p={fmt(pa, 3)}), "
                        f"noise score {ds:+,.0f} (Welch p={fmt(ps, 3)}), n={len(base)} seeds each (the same seeds)")
    return lines + [""] + rows if rows else lines


def repeat_lines(paper: dict[str, list[dict[str, Any]]], repeat: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = []
    for net, runs in repeat.items():
        for r in runs:
            first = next((p for p in paper.get(net, []) if p["seed"] == r["seed"]), None)
            if first is None:
                continue
            same = (first["test_accuracy"] == r["test_accuracy"] and first["test_noise_score"] == r["test_noise_score"]
                    and first["test_curve"]["correct"] == r["test_curve"]["correct"]
                    and [h["train_loss"] for h in first["history"]] == [h["train_loss"] for h in r["history"]])
            out.append(f"{LABELS[net]} seed {r['seed']} trained twice ({first['started']} and {r['started']}): "
                       f"{'identical' if same else 'DIFFERENT'} test accuracy, noise score, per-level counts and "
                       f"per-epoch training loss ({'PASS' if same else 'FAIL'}; `{first['_file']}`, `{r['_file']}`)")
    return out


def figure(paper: dict[str, list[dict[str, Any]]]) -> Path | None:
    if not paper:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    for net in LABELS:
        runs = paper.get(net)
        if not runs:
            continue
        levels = runs[0]["test_curve"]["levels"]
        acc = [[100 * r["best_test_epoch"]["test_curve"]["accuracies"][i] for r in runs] for i in range(len(levels))]
        mean = [statistics.fmean(a) for a in acc]
        style = "--" if net.startswith("dense") and net != "dense-cnn2-sp3" else "-"
        (line,) = ax.plot(levels, mean, style, marker="o", markersize=3, label=f"{LABELS[net]} (n={len(runs)})")
        if len(runs) > 1:
            ax.fill_between(levels, [min(a) for a in acc], [max(a) for a in acc], color=line.get_color(), alpha=0.15,
                            linewidth=0)
    ax.set_xlabel("noise level η (fraction of the 784 pixels set to mean + 2 sd)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST: accuracy under noise, mean over seeds\n(band: min to max; the paper's epoch choice)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    return FIGURE


def machine_lines(paper: dict[str, list[dict[str, Any]]]) -> list[str]:
    runs = [r for rs in paper.values() for r in rs]
    if not runs:
        return []
    m = runs[0]["machine"]
    commits = sorted({r["code"]["commit"][:7] + ("+changes" if r["code"]["uncommitted_changes"] else "") for r in runs})
    loads = [v for r in runs for v in (r["load_average"]["start"][0], r["load_average"]["end"][0])]
    return [f"Machine: {m['cpu']}, {m['cpus']} CPUs, torch {m['torch']}, {m['threads_per_run']} torch thread per run, "
            f"{m['jobs']} runs at a time; load average (1 min) at the runs' starts and ends {min(loads):.1f}-{max(loads):.1f}; "
            f"code at commit(s) {', '.join(commits)}; runs from {min(r['started'] for r in runs)} to "
            f"{max(r['finished'] for r in runs)} UTC."]


def protocol_lines(paper: dict[str, list[dict[str, Any]]]) -> list[str]:
    """How much the paper's choice of epoch (on the test set) moves each network's figures."""
    lines = ["| network | best epochs (per seed) | test acc: best minus final (points) | noise score: best minus final |",
             "|---|---|---|---|"]
    for net, runs in paper.items():
        da = [scores(r, "best")[0] - scores(r, "final")[0] for r in runs]
        ds = [scores(r, "best")[1] - scores(r, "final")[1] for r in runs]
        lines.append(f"| {LABELS[net]} | {', '.join(str(r['best_test_epoch']['epoch']) for r in runs)} of "
                     f"{runs[0]['epochs']} | {statistics.fmean(da):+.3f} | {statistics.fmean(ds):+,.0f} |")
    return lines


def build() -> str:
    paper, repeat = load("paper"), load("repeat")
    table, verdicts = table_lines(paper, "best")
    final_table, _ = table_lines(paper, "final")
    fig = figure(paper)
    parts = [
        BEGIN, "",
        f"Runs: {sum(len(v) for v in paper.values())} in `benchmarks/results/table1/paper/` (one JSON each). "
        "All 60,000 training images, no validation split (the paper's `validation = 1.0`), the paper's recipes "
        "(`sparsity.recipe.paper_recipe`, pinned to its configuration file by `tests/test_recipe.py`), scored on the "
        "10,000 test images, mnist-pixels noise at the paper's 11 levels (noise seed 0). "
        "Mean ± sd over seeds; the paper's figures are over 10 seeds.", "",
        *machine_lines(paper), "",
        f"**As the paper scored it** ({PROTOCOLS['best']}):", "",
        *table, "",
        *[f"- {v}" for v in verdicts], "",
        "**The final-epoch model** (no choice made on the test set):", "",
        *final_table, "",
        "Ours against the paper's 10 seeds (Welch's t-test from the paper's mean and sd; the paper's protocol):", "",
        *vs_paper_lines(paper, "best"), "",
        "What the paper's choice of epoch moves (mean over seeds):", "",
        *protocol_lines(paper), "",
        "The paper's noise ordering (Welch's t-test on the noise scores, the paper's protocol):", "",
        *ordering_lines(paper, "best"), "",
    ]
    for variant, (heading, *_) in ABLATIONS.items():
        ablated = load(variant)
        if ablated:
            parts += [heading, "", *ablation_lines(paper, ablated, variant), ""]
    rep = repeat_lines(paper, repeat)
    if rep:
        parts += ["Determinism:", "", *[f"- {line}" for line in rep], ""]
    if fig is not None:
        parts += [f"Figure 5 (ours): `{fig.relative_to(ROOT)}`", "", f"![Figure 5]({Path('..') / fig.relative_to(ROOT)})", ""]
    parts.append(END)
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="replace the section between the markers in docs/paper.md")
    args = ap.parse_args()
    text = build()
    print(text)
    if args.write:
        doc = DOC.read_text()
        if BEGIN not in doc or END not in doc:
            print(f"error: {DOC} has no Table 1 markers ({BEGIN} ... {END}); add them where the section goes",
                  file=sys.stderr)
            return 2
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + text + tail)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
