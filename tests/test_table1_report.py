"""The Table 1 campaign's plan and report (benchmarks/reproduce_paper.py, benchmarks/table1_report.py).

The report is built from the per-run JSON files alone; these tests check its figures against hand
computations on synthetic runs, its verdicts in both directions, and that the committed results are
consistent with themselves (the paper's epoch choice is the first maximum of the recorded per-epoch
test accuracies).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

import bench_scripts

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def report():
    return bench_scripts.load("table1_report")


@pytest.fixture(scope="module")
def campaign():
    return bench_scripts.load("reproduce_paper")


def _run(net: str, seed: int, acc: float, noise: int, *, best_acc: float | None = None, best_noise: int | None = None,
         losses=(0.5, 0.2), correct=(900, 800)) -> dict:
    curve = {"kind": "mnist-pixels", "levels": [0.0, 0.5], "accuracies": [acc, acc / 2], "correct": list(correct)}
    return {
        "network": net, "seed": seed, "test_accuracy": acc, "test_noise_score": noise, "test_curve": curve,
        "history": [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(losses)],
        "best_test_epoch": {"epoch": 1, "test_accuracy": best_acc if best_acc is not None else acc,
                            "test_noise_score": best_noise if best_noise is not None else noise, "test_curve": curve,
                            "test_accuracy_by_epoch": [best_acc or acc, acc]},
        "epochs": 2, "wall_seconds": 10.0, "started": f"2026-12-04T00:0{seed}:00+00:00",
        "finished": f"2026-12-04T00:1{seed}:00+00:00", "_file": f"benchmarks/results/table1/x/{net}-seed{seed}.json",
    }


def test_table_scores_each_protocol_and_judges_both_targets(report):
    pa, _, ps, pss = report.PAPER["sparse-cnn1"]
    # best epoch: on target; final epoch: accuracy 0.5 points low and noise 2 paper sd low
    runs = [_run("sparse-cnn1", s, acc=(pa - 0.5) / 100, noise=int(ps - 2 * pss), best_acc=(pa + d) / 100,
                 best_noise=int(ps + d * 1000)) for s, d in ((0, -0.1), (1, 0.1))]
    best, verdicts = report.table_lines({"sparse-cnn1": runs}, "best")
    row = next(line for line in best if line.startswith("| Sparse CNN-1 |"))
    assert f"| {pa:.2f} ± 0.14 |" in row  # mean of pa-0.1 and pa+0.1; sd of the two = 0.1414
    assert "| met / met |" in row
    assert any(v.startswith("Sparse CNN-1: accuracy +0.00 points (within 0.3)") for v in verdicts)
    final, _ = report.table_lines({"sparse-cnn1": runs}, "final")
    row = next(line for line in final if line.startswith("| Sparse CNN-1 |"))
    assert "| -0.50 |" in row and "| -2.00 |" in row and "| MISSED / MISSED |" in row
    # a network with no runs is listed as not run, not dropped
    assert any(line.startswith("| Dense CNN-1 | 0 |") and "not run yet" in line for line in best)


def test_ordering_reports_direction_and_significance_separately(report):
    sparse = [_run("sparse-cnn1", s, 0.98, n) for s, n in enumerate((100_000, 100_100, 99_900))]
    dense_low = [_run("dense-cnn1", s, 0.99, n) for s, n in enumerate((74_000, 74_500, 73_500))]
    dense_high = [_run("dense-cnn1", s, 0.99, n) for s, n in enumerate((101_000, 101_100, 100_900))]
    row = next(line for line in report.ordering_lines({"sparse-cnn1": sparse, "dense-cnn1": dense_low})
               if line.startswith("| Sparse CNN-1 > Dense CNN-1"))
    assert row.endswith("| yes | yes | 2 / 2 |")
    row = next(line for line in report.ordering_lines({"sparse-cnn1": sparse, "dense-cnn1": dense_high})
               if line.startswith("| Sparse CNN-1 > Dense CNN-1"))
    assert "| -1,000," in row and row.endswith("| NO | yes | 2 / 2 |")
    one_each = {"sparse-cnn1": sparse[:1], "dense-cnn1": dense_low[:1]}
    row = next(line for line in report.ordering_lines(one_each) if line.startswith("| Sparse CNN-1 > Dense CNN-1"))
    assert row.endswith("| yes | — (n < 2) | — / 2 |")
    row = next(line for line in report.ordering_lines({"sparse-cnn1": sparse}) if line.startswith("| Sparse CNN-1 >"))
    assert row == "| Sparse CNN-1 > Dense CNN-1 | not run yet | +25,737 | — | — | — / 2 |"


def test_seeds_for_power_by_hand(report):
    # (z_0.975 + z_0.8)^2 = (1.959964 + 0.841621)^2 = 7.848879; * (6500^2 + 2000^2) / 3000^2 = 40.33 -> 41
    assert report.seeds_for_power(3000, 6500, 2000) == 41
    assert report.seeds_for_power(-3000, 6500, 2000) == 41  # the sign of the difference does not matter
    assert report.seeds_for_power(3000, 6500, 2000, power=0.5) == 20  # z_0.5 = 0: 3.841459 * 5.139 = 19.74
    assert report.seeds_for_power(25_737, 3200, 1735) == 2  # never fewer than 2, a variance needs two
    # the paper's own SP3 > Dense CNN-2 at its sds (2,762 and 2,853): 7.848879 * 15.768e6 / 10.745e6 = 11.5 -> 12
    assert report.seeds_for_power(3278, 2762, 2853) == 12


def test_welch_matches_scipy_and_refuses_single_values(report):
    from scipy import stats

    a, b = [1.0, 2.0, 4.0], [0.0, 0.5, 0.7, 1.0]
    diff, p = report.welch(a, b)
    assert diff == pytest.approx(7 / 3 - 0.55)
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert math.isnan(report.welch([1.0], b)[1])


def test_repeat_passes_only_on_identical_numbers(report):
    first = _run("sparse-cnn1", 0, 0.98, 99_000)
    same = dict(_run("sparse-cnn1", 0, 0.98, 99_000), started="later")
    (line,) = report.repeat_lines({"sparse-cnn1": [first]}, {"sparse-cnn1": [same]})
    assert "identical" in line and "PASS" in line
    for changed in (_run("sparse-cnn1", 0, 0.98, 99_001), _run("sparse-cnn1", 0, 0.98, 99_000, losses=(0.5, 0.2001)),
                    _run("sparse-cnn1", 0, 0.98, 99_000, correct=(900, 801))):
        (line,) = report.repeat_lines({"sparse-cnn1": [first]}, {"sparse-cnn1": [changed]})
        assert "DIFFERENT" in line and "FAIL" in line


def test_write_replaces_only_the_marked_section(report, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    run = _run("dense-cnn2", 0, 0.9931, 97_040)
    run.pop("_file")
    run.update(machine={"cpu": "test cpu", "cpus": 2, "torch": "t", "threads_per_run": 1, "jobs": 2},
               code={"commit": "0123456789", "uncommitted_changes": False},
               load_average={"start": [1.0, 1.0, 1.0], "end": [2.0, 2.0, 2.0]})
    (results / "paper").mkdir(parents=True)
    (results / "paper" / "dense-cnn2-seed0.json").write_text(json.dumps(run))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"before\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "RESULTS", results)
    monkeypatch.setattr(report, "DOC", doc)
    monkeypatch.setattr(report, "FIGURE", results / "figure5.png")
    monkeypatch.setattr(sys, "argv", ["table1_report.py", "--write"])
    assert report.main() == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old table" not in text
    assert "| Dense CNN-2 | 1 | 99.31 ± — |" in text and "code at commit(s) 0123456" in text
    assert (results / "figure5.png").stat().st_size > 0
    doc.write_text("no markers\n")
    assert report.main() == 2
    assert doc.read_text() == "no markers\n"
    assert "no Table 1 markers" in capsys.readouterr().err


def test_default_plan_covers_the_issue(campaign):
    plan = campaign.default_plan()
    keys = [(r.variant, r.network, r.seed) for r in plan]
    assert len(keys) == len(set(keys))
    paper = {(n, s) for v, n, s in keys if v == "paper"}
    for net in campaign.NETWORKS:
        want = range(10) if net in ("dense-cnn2", "sparse-cnn2", "sparse-cnn2-d3") else range(3)
        assert {s for n, s in paper if n == net} == set(want), net
    assert len(campaign.NETWORKS) == 8
    # every network's seeds 0-2 come before anything else; the repeat re-runs a planned paper run
    first = keys[: 3 * len(campaign.NETWORKS)]
    assert {(n, s) for _, n, s in first} == {(n, s) for n in campaign.NETWORKS for s in range(3)}
    repeats = [(n, s) for v, n, s in keys if v == "repeat"]
    assert repeats and all(r in paper for r in repeats)
    assert {s for v, n, s in keys if v == "split55k"} == {0, 1, 2}
    assert {(n, s) for v, n, s in keys if v == "conv-half"} == {(n, s) for n in ("dense-cnn1", "sparse-cnn1") for s in (0, 1)}
    assert {(n, s) for v, n, s in keys if v == "topk"} == {("sparse-cnn2", s) for s in (0, 1, 2)}
    assert campaign.VARIANTS["split55k"] == 5000 and campaign.VARIANTS["paper"] == 0


def test_conv_half_changes_only_the_conv_weight_density(campaign):
    from sparsity.experiment import paper_experiment

    for net in ("dense-cnn1", "sparse-cnn1"):
        paper = paper_experiment(net, "mnist", seed=0)
        half = campaign.with_conv_density(paper, 0.5)
        assert [c.weight_density for c in half.network.conv] == [0.5] * len(paper.network.conv)
        assert half.network.linear == paper.network.linear and half.recipe == paper.recipe
        restored = campaign.with_conv_density(half, 1.0)
        assert restored == paper
    assert campaign.CHANGES["conv-half"](paper) == campaign.with_conv_density(paper, 0.5)


def test_topk_changes_only_the_tie_rule_and_keeps_exactly_k(campaign):
    import torch

    from sparsity.experiment import paper_experiment
    from sparsity.network import build_network

    paper = paper_experiment("sparse-cnn2", "mnist", seed=0)
    topk = campaign.CHANGES["topk"](paper)
    assert not paper.network.kwinners.break_ties and topk.network.kwinners.break_ties
    assert campaign.with_break_ties(topk, False) == paper
    # a blank image makes every conv-1 position of a channel equal: the paper's rule keeps exactly k, ours more
    def conv1_winners(config):
        net = build_network(config.network, seed=0).eval()
        block = net.features.conv1
        out = block.act(block.pool(block.conv(torch.zeros(2, 1, 28, 28))))
        return (out != 0).flatten(1).sum(1), block.act.k_at(out.shape[2], out.shape[3], training=False)

    winners, k = conv1_winners(topk)
    assert (winners <= k).all()
    winners, k = conv1_winners(paper)
    assert (winners > k).all()


def test_ablation_reports_the_variant_minus_the_paper(report):
    paper = {"sparse-cnn1": [_run("sparse-cnn1", s, a, n) for s, a, n in ((0, 0.979, 99_000), (1, 0.981, 99_200))]}
    half = {"sparse-cnn1": [_run("sparse-cnn1", s, a, n) for s, a, n in ((0, 0.969, 101_000), (1, 0.971, 101_400))]}
    lines = report.ablation_lines(paper, half, "conv-half")
    assert lines[0].startswith("| network | conv weights |")
    assert any("conv-half minus paper: accuracy -1.00 points" in line and "noise score +2,100" in line for line in lines)


def test_committed_runs_are_consistent(report):
    """Every committed run names its file, trained on the variant's data, and its paper-protocol epoch
    is the first maximum of its own per-epoch test accuracies."""
    files = sorted((ROOT / "benchmarks" / "results" / "table1").glob("*/*.json"))
    assert files, "no committed Table 1 runs"
    for path in files:
        run = json.loads(path.read_text())
        assert path.name == f"{run['network']}-seed{run['seed']}.json"
        assert run["variant"] == path.parent.name
        assert run["split_sizes"]["train"] == (55_000 if run["variant"] == "split55k" else 60_000)
        conv_density = {layer["weight_density"] for layer in run["config"]["network"]["conv"]}
        assert conv_density <= ({0.5} if run["variant"] == "conv-half" else {1.0}), path.name
        assert run["config"]["network"]["kwinners"]["break_ties"] == (run["variant"] == "topk"), path.name
        by_epoch = run["best_test_epoch"]["test_accuracy_by_epoch"]
        assert len(by_epoch) == run["epochs"]
        best = run["best_test_epoch"]
        assert best["epoch"] == by_epoch.index(max(by_epoch)) + 1
        assert best["test_accuracy"] == max(by_epoch)
        assert by_epoch[-1] == run["test_accuracy"]
        curve = best["test_curve"]
        assert best["test_noise_score"] == sum(curve["correct"])
        assert len(curve["levels"]) == 11 and curve["levels"][0] == 0.0 and curve["levels"][-1] == pytest.approx(0.5)


def test_against_the_paper_by_hand(report):
    from scipy import stats

    ours = [1.0, 2.0, 3.0]  # mean 2, sample variance 1
    # the paper's sd 0.9 is numpy's population sd over 10 seeds: sample variance 0.81 * 10 / 9 = 0.9
    v1, v2 = 1 / 3, 0.9 / 10
    t = (2.0 - 1.5) / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 ** 2 / 2 + v2 ** 2 / 9)
    p, (lo, hi) = report.welch_vs_paper(ours, 1.5, 0.9)
    assert p == pytest.approx(2 * stats.t.sf(t, df))
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))
    assert lo < 0 < hi and p > 0.05  # the interval covers 0 exactly when the test is not significant
    p, (lo, hi) = report.welch_vs_paper([1.0], 1.5, 0.9)
    assert math.isnan(p) and math.isnan(lo) and math.isnan(hi)

    runs = {"dense-cnn1": [_run("dense-cnn1", s, 0.99, n) for s, n in enumerate((70_000, 71_000, 72_000))],
            "sparse-cnn1": [_run("sparse-cnn1", s, 0.98, n) for s, n in enumerate((101_000, 101_500, 102_000))]}
    lines = report.vs_paper_lines(runs)
    assert lines[-1] == "Networks whose mean noise score is below the paper's: 1 of 2 (two-sided sign test p=1.000)."
    row = next(line for line in lines if line.startswith("| Dense CNN-1 |"))
    assert "| 3 / 10 |" in row and "-3,569 [" in row  # 71,000 - 74,569


def test_holm_by_hand(report):
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06
    assert report.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert report.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = report.holm([0.02, math.nan, 0.01])  # a NaN is left out of the family
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
