"""One set of figures: what a sweep claims of its chosen config is computed once
(`sweeps.results.best.sweep_claims`) and `best`, `status`, the report, the model card, the YAML and
the MLflow summary all show it, line for line (a fake sweep with seed replicates: no training)."""

from __future__ import annotations

import html
from types import SimpleNamespace

import pytest
import yaml

from fake_store import build_store
from sweeps.cli import commands as cli
from sweeps.results import read


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store"), "agree", trials=16, replicates=4)


class _Client:
    """What the service's summary logs, by artifact name."""

    def __init__(self):
        self.logged: dict[str, object] = {}

    def log_dict(self, run, value, name):
        self.logged[name] = value

    def log_text(self, run, value, name):
        self.logged[name] = value

    def __getattr__(self, name):  # metrics and the rest: not this test's
        return lambda *a, **k: None


def test_best_status_report_model_card_yaml_and_mlflow_show_the_same_claims(store, tmp_path, capsys):
    from sweeps.results.deploy import confirmation_lines
    from sweeps.run import service

    assert cli.main(["best", "agree", "--root", str(store), "--out", str(tmp_path / "b.yaml")]) == 0
    best_out = capsys.readouterr().out
    src = yaml.safe_load((tmp_path / "b.yaml").read_text())["source"]
    lines = src["claims"]
    # 2 baselines x 2 objectives, and the sentence saying what they rest on
    assert len(src["verdicts"]) == 4 and len(lines) == 5 and src["claims_basis"] == "adjusted for the choice"
    assert all(line in best_out for line in lines)

    assert cli.main(["status", "agree", "--root", str(store)]) == 0
    status_out = capsys.readouterr().out
    assert f"claims of the knee, trial #{src['optuna_trial_number']}" in status_out
    assert all(line in status_out for line in lines)

    assert cli.main(["report", "agree", "--root", str(store), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert all(html.escape(line) in page for line in lines)

    card = "\n".join(confirmation_lines(src))
    assert all(f"- {line}" in card for line in lines)

    reader = read.SweepReader.open("agree", str(store), attrs=None)
    client = _Client()
    ctx = SimpleNamespace(client=client, parent_run_id="p", spec=reader.spec,
                          study=SimpleNamespace(study=SimpleNamespace(set_user_attr=lambda *a: None)))
    service._log_sweep_summary(ctx, reader, 1.0)
    logged = client.logged["claims.json"]
    assert logged["lines"] == lines and logged["verdicts"] == src["verdicts"]
    assert logged["chosen"] == src["optuna_trial_number"]
    assert all(html.escape(line) in client.logged["report.html"] for line in lines)

    # The shown difference is the tested one: the verdicts' means are those of the test.
    for v in src["verdicts"]:
        assert v["difference"] == pytest.approx(v["means"][0] - v["means"][1])
