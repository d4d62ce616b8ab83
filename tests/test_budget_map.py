"""The budget map (benchmarks/budget_map.py and its report): one run of E epochs stands for the
runs of 1..E epochs, its configs are what it says, and the report's figures are right by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sparsity import LinearLayer, preset
from sparsity.data import DataConfig, load_dataset
from sparsity.recipe import Recipe
from sparsity.train import train

from bench_scripts import load


@pytest.fixture(scope="module")
def mnist(data_dir):
    return load_dataset(DataConfig(name="mnist", train_limit=1500, eval_limit=300))


def test_the_model_after_epoch_e_of_a_longer_run_is_the_model_of_a_run_of_e_epochs(mnist):
    """The map scores every epoch of a run as the budget of that many epochs: the learning-rate
    schedule, boost decay, data order and dropout depend on the epoch, never on the total."""
    spec = preset("sparse-mlp").replace(linear=(LinearLayer(units=200, percent_on=0.1, weight_density=0.3, dropout=0.25),))
    recipe = Recipe(epochs=3, lr=0.02, momentum=0.5, batch_size=64, first_epoch_batch_size=16)
    states = {}

    def keep(result, model):
        states[result.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    train(spec, recipe, mnist, seed=2, on_epoch=keep)
    short = train(spec, recipe.replace(epochs=2), mnist, seed=2)
    for key, value in short.model.state_dict().items():
        assert torch.equal(states[2][key], value), key
    assert any(not torch.equal(states[2][k], states[3][k]) for k in states[2])  # epoch 3 did move it


def test_the_plan_and_configs_are_what_the_map_says():
    bm = load("budget_map")
    runs = bm.plan()
    by = {}
    for r in runs:
        by.setdefault((r.budget.name, r.network.name), []).append(r.seed)
    for budget in bm.BUDGETS:
        for net in bm.NETWORKS:
            seeds = by.get((budget.name, net.name), [])
            if budget.sparse_only and not net.sparse:
                assert seeds == []
            else:
                assert seeds == list(range(12 if net.name.startswith("dense") else 6)), (budget.name, net.name)
    assert len({r.path for r in runs}) == len(runs)

    def config(budget, network):
        b = next(x for x in bm.BUDGETS if x.name == budget)
        n = next(x for x in bm.NETWORKS if x.name == network)
        return bm.experiment(bm.Run(b, n, 0))

    dense, dropout = config("12k", "dense"), config("12k", "dense-dropout")
    assert dense.network.linear[0].dropout == 0 and dropout.network.linear[0].dropout == 0.5
    assert dense.recipe.momentum == 0.9 and dense.recipe.first_epoch_batch_size is None  # Dense CNN-2's paper recipe
    sparse, b16 = config("12k", "sparse"), config("12k-b16", "sparse")
    assert sparse.recipe.first_epoch_batch_size == 4 and b16.recipe.first_epoch_batch_size == 16
    assert sparse.network.conv == b16.network.conv and sparse.data == b16.data
    point = config("6k", "sparse-k8-w15").network
    assert [c.percent_on for c in point.conv] == [0.08, 0.08] and point.linear[0].percent_on == 0.08
    assert point.linear[0].weight_density == 0.15
    assert sparse.data.validation_size == 5000 and sparse.data.eval_limit is None and sparse.data.train_limit == 12_000


def _run(budget, network, seed, scores, acc=0.9, first=None, seconds=(1.0, 2.0), noise_seconds=5.0):
    return {"budget": budget, "network": network, "seed": seed, "train_images": 1000 if "1k" in budget else 2000,
            "config": {"recipe": {"first_epoch_batch_size": first}},
            "epochs": [{"epoch": e + 1, "val_noise_score": s, "val_accuracy": acc, "seconds": seconds[e],
                        "noise_seconds": noise_seconds} for e, s in enumerate(scores)]}


def test_report_cells_by_hand():
    rep = load("budget_map_report")
    runs = [_run("1k", "dense", s, [100 + 10 * s, 200 + 10 * s]) for s in range(3)]
    runs += [_run("1k", "sparse", s, [150, 250 + s], first=4) for s in range(2)]
    runs += [_run("1k-b16", "sparse", s, [160, 260], first=16) for s in range(2)]
    table = rep.cells(runs)
    labels = [p.label for p in table]
    assert labels == ["1k x 1", "1k x 2", "1k x 1, first batch 16", "1k x 2, first batch 16"]
    first, second, b16 = list(table)[0], list(table)[1], list(table)[3]
    dense = table[second]["dense"]
    assert dense.noise == (200, 210, 220) and dense.mean == 210 and dense.sd == 10
    assert table[second]["sparse"].seconds == (1 + 2 + 5, 1 + 2 + 5)  # training so far + one noise curve
    assert all(math.isnan(s) for s in table[second]["sparse"].cpu_seconds)  # these runs recorded no CPU time
    assert table[first]["sparse"].seconds == (1 + 5, 1 + 5)
    # the batch-16 budget changes only sparse recipes: its dense cells are the 1k runs, said so
    assert table[b16]["dense"].noise == dense.noise and table[b16]["dense"].reused_from == "1k"
    lo, hi = dense.interval()
    assert (lo + hi) / 2 == pytest.approx(210)
    assert (hi - lo) / 2 == pytest.approx(4.302653 * 10 / math.sqrt(3), rel=1e-6)  # t(0.975, 2) = 4.302653


def test_report_welch_by_hand():
    rep = load("budget_map_report")
    a = rep.Cell("sparse", (10.0, 12.0, 14.0, 16.0), (0.9,) * 4, (1.0,) * 4)  # mean 13, var 20/3
    b = rep.Cell("dense", (0.0, 10.0, 20.0), (0.9,) * 3, (1.0,) * 3)  # mean 10, var 100
    d = rep.welch(a, b)
    va, vb = (20 / 3) / 4, 100 / 3
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    assert d.diff == pytest.approx(3)
    assert df == pytest.approx(2.2013, rel=1e-4)  # (35)^2 / ((5/3)^2/3 + (100/3)^2/2)
    from scipy import stats

    assert d.high - d.diff == pytest.approx(stats.t.ppf(0.975, df) * se)
    assert d.p == pytest.approx(stats.ttest_ind([10, 12, 14, 16], [0, 10, 20], equal_var=False).pvalue)
    assert d.sd_ratio == pytest.approx(math.sqrt(20 / 3) / 10)
    assert d.seeds_for_power == pytest.approx((1.959964 + 0.841621) ** 2 * (20 / 3 + 100) / 9, rel=1e-5)
