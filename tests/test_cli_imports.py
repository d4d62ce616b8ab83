"""The CLI answers without loading what it does not use: refusing a bad spec and reading a sweep
(status, list, best, report) import neither torch, Ray nor MLflow; dashboards never imports sweeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from fake_store import build_store

HEAVY = ("torch", "ray", "mlflow")
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # the subprocesses run this checkout's code

# Runs the CLI in a fresh interpreter and prints, last, the heavy top-level packages it imported.
PROBE = textwrap.dedent(
    """
    import json, sys
    from sweeps.cli.commands import main
    rc = main(sys.argv[1:])
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
    print("\\nIMPORTED " + json.dumps(heavy))
    sys.exit(rc)
    """
).replace("HEAVY", repr(HEAVY))


def cli(args: list[str], cwd: Path) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=120)
    out, _, tail = proc.stdout.rpartition("\nIMPORTED ")
    assert tail, proc.stdout + proc.stderr
    return proc.returncode, out.strip(), json.loads(tail)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return build_store(tmp_path_factory.mktemp("store"), "fake", trials=40)


def test_bad_spec_is_refused_in_one_line_without_heavy_imports(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "dataset": {"name": "mnist"}, "network": "sparse-mlp",
                                   "space": {"percent_on": {"low": 0.5, "high": 0.1}}}))
    rc, out, heavy = cli(["run", str(bad), "--root", str(tmp_path / "store")], tmp_path)
    assert rc == 2
    assert out.splitlines() == ["error: space.percent_on.low: low=0.5 must be below high=0.1"]
    assert heavy == []
    assert not (tmp_path / "store").exists()  # nothing written


def test_a_spec_that_breaks_the_network_is_refused_without_torch(tmp_path):
    bad = tmp_path / "tiny-k.yaml"  # k rounds to 0 on a layer: found by the config layer alone
    bad.write_text(yaml.safe_dump({"name": "tiny", "dataset": {"name": "gsc"}, "network": "sparse-cnn2",
                                   "space": {"percent_on": {"low": 0.00001, "high": 0.5}}}))
    rc, out, heavy = cli(["run", str(bad)], tmp_path)
    assert rc == 2 and "k=0" in out and "space.percent_on" in out
    assert heavy == []


@pytest.mark.parametrize("command", [["status", "fake"], ["list"], ["best", "fake"]])
def test_read_commands_do_not_import_torch_ray_or_mlflow(store, tmp_path, command):
    rc, out, heavy = cli([*command, "--root", str(store)], tmp_path)
    assert rc == 0, out
    assert heavy == []
    if command[0] == "list":
        assert "fake" in out and "/40" in out  # the budget: 38 searched trials + 2 baselines


def test_best_config_for_mnist_carries_only_settings_that_apply(store, tmp_path):
    rc, out, _ = cli(["best", "fake", "--root", str(store), "--out", str(tmp_path / "best.yaml")], tmp_path)
    assert rc == 0, out
    doc = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert doc["data"]["name"] == "mnist"
    assert "class_set" not in doc["data"]  # a GSC-only setting


def test_report_is_written_without_torch_ray_or_mlflow(store, tmp_path):
    out_file = tmp_path / "fake-report.html"
    rc, out, heavy = cli(["report", "fake", "--root", str(store), "--out", str(out_file)], tmp_path)
    assert rc == 0, out
    assert heavy == []
    html = out_file.read_text()
    assert "Sweep report: fake" in html and "chosen config (knee)" in html and "trial #" in html


def test_dashboards_never_import_sweeps():
    code = ("import sys, dashboards.report, dashboards.plotdata, dashboards.render; "
            "print(sorted(m for m in sys.modules if m == 'sweeps' or m.startswith('sweeps.')))")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    source = "".join(p.read_text() for p in REPO.joinpath("dashboards").glob("*.py"))
    assert "import sweeps" not in source and "from sweeps" not in source


def test_config_layer_imports_without_torch():
    code = textwrap.dedent(
        """
        import sys
        import sparsity
        from sparsity import NetworkSpec, Recipe, DataConfig, NoiseConfig, ExperimentConfig, preset, preset_names
        from sparsity.presets import preset as p
        from sparsity.recipe import paper_recipe
        from sparsity.facts import DATASETS
        for d in DATASETS:
            for n in preset_names(d):
                ExperimentConfig(preset(n, d), paper_recipe(n, d), DataConfig(d), NoiseConfig())
        from sweeps.spec import load_spec
        for name in ("mnist-quick", "mnist-paper", "gsc-paper"):
            load_spec(name)
        print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "ray", "mlflow", "optuna"}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_names_still_reach_the_modules():
    import sparsity
    from sparsity.network import NetworkSpec as FromNetwork

    assert sparsity.NetworkSpec is FromNetwork
    assert callable(sparsity.build_network) and sparsity.KWinners.__module__ == "sparsity.kwinners"
    assert "build_network" in dir(sparsity)
    with pytest.raises(AttributeError):
        sparsity.no_such_name


def test_the_front_read_once_is_optunas_front(store):
    import optuna

    from sweeps.results.read import sweep_status
    from sweeps.search.record import config_front

    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{store / 'optuna.db'}")
    spec, trials, front = sweep_status("fake", str(store))
    assert sorted(t.number for t in front) == sorted(t.number for t in study.best_trials)
    assert [t.values[0] for t in front] == sorted((t.values[0] for t in front), reverse=True)
    assert config_front([]) == []


@pytest.mark.parametrize("command", [["status", "fake"], ["list"], ["best", "fake"]])
def test_read_commands_read_optunas_tables_without_optuna(store, tmp_path, command):
    """status, list and best read what they show straight from the study's tables
    (`sweeps.search.optuna_private.read_trials`): no Optuna, SQLAlchemy or alembic to import (about 1.5 s)."""
    probe = PROBE.replace(repr(HEAVY), repr(("optuna", "sqlalchemy", "alembic")))
    proc = subprocess.run([sys.executable, "-c", probe, *command, "--root", str(store)], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rpartition("\nIMPORTED ")[2].strip() == "[]"


def test_a_store_at_another_schema_revision_is_read_through_optuna(store, monkeypatch):
    """`read_trials` reads one schema revision; at any other (here: it expects another) the same
    answers come through Optuna's public API."""
    from sweeps.stores import optuna_tables as internals
    from sweeps.results import read as results

    spec, trials, front = results.sweep_status("fake", str(store))
    assert isinstance(trials[0], internals.StoredTrial)
    counts = results.sweep_counts(spec)
    monkeypatch.setattr(internals, "OPTUNA_SCHEMA_REVISION", "v0.0.0.other")
    with pytest.raises(internals.UnknownOptunaSchema):
        internals.read_trials(spec.stores.resolved().optuna_storage, "fake")
    theirs = results.sweep_trials(spec)
    assert not isinstance(theirs[0], internals.StoredTrial)  # Optuna's FrozenTrials
    assert [(t.number, t.state.name, t.values, t.user_attrs, t.params) for t in theirs] == \
        [(t.number, t.state.name, t.values, t.user_attrs, t.params) for t in trials]
    assert [t.number for t in results.sweep_trials(spec, numbers=[3, 5])] == [3, 5]
    assert results.sweep_counts(spec) == counts
    assert [t.number for t in results.sweep_status("fake", str(store))[2]] == [t.number for t in front]


@pytest.mark.parametrize("command", [["status", "reps"], ["best", "reps"]])
def test_intervals_and_tests_need_no_scipy_stats(tmp_path, command):
    """`status` and `best` on a sweep with seed replicates compute Student-t intervals and tests
    (`sweeps.search.confirm`) with scipy.special's t functions: scipy.stats's import (about 1 s of
    CPU) stays out of them."""
    from fake_store import build_store

    root = build_store(tmp_path / "store", "reps", trials=12, replicates=3)
    probe = PROBE.replace("{m.split(\".\")[0] for m in sys.modules}", "set(sys.modules)").replace(
        repr(HEAVY), repr(("scipy.stats", "scipy.special")))
    proc = subprocess.run([sys.executable, "-c", probe, *command, "--root", str(root),
                           *(["--out", str(tmp_path / "b.yaml")] if command[0] == "best" else [])],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "n=" in proc.stdout or "seeds" in proc.stdout  # intervals were computed
    assert proc.stdout.rpartition("\nIMPORTED ")[2].strip() == '["scipy.special"]'
