"""No password slips through (issue 19, point 2): store URLs are read by a real parser (SQLAlchemy's
for databases, the RFC 3986 authority for http), passwords holding / # ? @ : % and ``?password=``
forms are stripped, a user part that cannot be parsed is refused in one line that never shows the
URL, and nothing `run`, `submit`, the saved spec or MLflow's params hold contains the password in
any form. An unexpected error prints one scrubbed line and leaves its trace in a file only the user
can read. Trials get passwords in memory, never in their environment."""

from __future__ import annotations

import os
import stat
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from cluster_helpers import free_port
from sweep_helpers import tiny_spec, write_spec

NASTY = ["s3c/retpw-1", "pa#ss-word", "pa?ss=word", "pa@ss-word", "pa:ss:word", "pa%ss-word", "pa%40ss-word",
         "a/b#c?d@e:f%g-h"]


def _forms(password: str) -> list[str]:
    """Every form the password may show up in: as written, percent-decoded, percent-encoded."""
    return sorted({password, urllib.parse.unquote(password), urllib.parse.quote(password, safe=""),
                   urllib.parse.quote_plus(password)})


def _urls(password: str, port: int) -> list[tuple[str, str, str]]:
    """(case, store field, URL): the password inline as written, inline encoded, as ?password=, and
    in an MLflow http URL (written and encoded)."""
    enc = urllib.parse.quote(password, safe="")
    return [
        ("inline", "optuna_storage", f"postgresql+psycopg2://alice:{password}@127.0.0.1:{port}/optuna"),
        ("encoded", "optuna_storage", f"postgresql://alice:{enc}@127.0.0.1:{port}/optuna"),
        ("query", "optuna_storage", f"postgresql://alice@127.0.0.1:{port}/optuna?sslmode=disable&password={enc}"),
        ("http", "mlflow_tracking_uri", f"http://alice:{password}@127.0.0.1:{port}"),
        ("http-encoded", "mlflow_tracking_uri", f"http://alice:{enc}@127.0.0.1:{port}"),
    ]


def _clean_env(monkeypatch):
    for var in ("SPARSE_SWEEPS_OPTUNA_STORAGE", "SPARSE_SWEEPS_MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                "MLFLOW_TRACKING_PASSWORD", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)


def _no_password(text: str, password: str, where: str) -> None:
    for form in _forms(password):
        assert form not in text, f"{where} holds the password ({form!r}): {text[:2000]}"


@pytest.mark.parametrize("password", NASTY)
def test_run_submit_and_the_saved_spec_never_hold_a_nasty_password(password, tmp_path, monkeypatch, capsys):
    """Each URL form, from the spec file and from the variable: `sweeps run` refuses (the store does
    not answer, or the URL cannot be parsed) in one line without the password, writing nothing; the
    spec it would save, MLflow's params and the spec `submit` uploads hold it in no form."""
    from sweeps.cli import commands as cli
    from sweeps.run import jobs
    from sweeps.spec import SpecError, load_spec
    from sweeps.stores.secrets import redact
    from sweeps.tracking.runs import flatten

    uploaded: list[str] = []

    class FakeJobs:
        def list_jobs(self):
            return []

        def submit_job(self, entrypoint, submission_id, runtime_env, metadata):
            uploaded.append((Path(runtime_env["working_dir"]) / jobs.SPEC_FILE).read_text() + entrypoint +
                            repr(runtime_env))
            return submission_id

        def get_job_logs(self, submission_id):  # the job's first step passed (`sweeps.run.headcheck`)
            from sweeps.run.headcheck import READY

            return READY

    monkeypatch.setattr(jobs, "_client", lambda address: FakeJobs())
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    port = free_port()
    for case, field, url in _urls(password, port):
        for source in ("spec", "env"):
            _clean_env(monkeypatch)
            name = f"{case}-{source}"
            spec = tiny_spec(name)
            if source == "spec":
                spec["stores"] = {field: url}
            else:
                monkeypatch.setenv(f"SPARSE_SWEEPS_{field.upper()}", url)
            spec_file = write_spec(tmp_path, spec)
            root = tmp_path / f"root-{name}"
            t0 = time.monotonic()
            code = cli.main(["run", str(spec_file), "--root", str(root)])
            seconds = time.monotonic() - t0
            out = capsys.readouterr()
            text = out.out + out.err
            lines = [line for line in text.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1, (name, text)
            assert f"stores.{field}" in lines[0], (name, text)
            _no_password(text, password, f"`sweeps run` output ({name})")
            assert not root.exists(), f"{name}: something was written"
            assert seconds < 15, f"{name}: {seconds:.1f}s"
            try:
                loaded = load_spec(spec_file, stores_root=str(root))
            except SpecError as e:  # the URL cannot be parsed: refused as `run` did
                assert "cannot be parsed" in str(e) and "percent-encode" in str(e), (name, str(e))
                continue
            _no_password(loaded.to_yaml(), password, f"the saved spec ({name})")
            _no_password(repr(flatten("", redact(loaded.to_dict()))), password, f"MLflow's params ({name})")
            assert cli.main(["submit", str(spec_file), "--address", "http://127.0.0.1:1"]) == 0, capsys.readouterr()
            _no_password(uploaded[-1] + capsys.readouterr().out, password, f"the submitted job ({name})")
            assert yaml.safe_load(uploaded[-1].split("PY=python")[0])["name"] == name
            if source == "env":  # no process started from here inherits it
                _no_password(os.environ[f"SPARSE_SWEEPS_{field.upper()}"], password, "the variable")
    assert not (tmp_path / "state").exists()  # every error was foreseen: no trace file


def test_an_unparseable_credential_is_refused_fast_without_the_url(tmp_path):
    """A user part with an unencoded @ cannot be read unambiguously: one line, exit 2, naming the
    setting and the fix, not the URL; before Ray, MLflow or torch load (about 0.8 s in all)."""
    from test_cli_imports import cli

    spec = tiny_spec("unparseable")
    spec["stores"] = {"optuna_storage": "postgresql://alice:pa@ss/wd@127.0.0.1:5432/optuna"}
    path = write_spec(tmp_path, spec)
    t0 = time.monotonic()
    rc, out, heavy = cli(["run", str(path), "--root", str(tmp_path / "root")], tmp_path)
    seconds = time.monotonic() - t0
    lines = [line for line in out.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1, out
    assert lines[0].startswith("error: stores.optuna_storage ($SPARSE_SWEEPS_OPTUNA_STORAGE): the URL's user and "
                               "password cannot be parsed")
    assert "pa@ss" not in out and "127.0.0.1" not in out
    assert heavy == [] and not (tmp_path / "root").exists()
    assert seconds < 3, seconds  # 0.7-0.9 s on 2 busy cores; the bound leaves room for a loaded machine


def test_a_refused_url_never_reaches_the_output_through_display():
    from sweeps.stores.secrets import display, scrub

    assert display("postgresql://alice:pa@ss@h:1/db") == "postgresql://(not shown: its credentials cannot be parsed)"
    for password in NASTY:
        text = f"could not connect to postgresql+psycopg2://alice:{password}@127.0.0.1:5432/optuna (refused)"
        assert "***" in scrub(text)
        _no_password(scrub(text), password, "scrubbed text")
        _no_password(scrub(f"http://h:5000/api?user=alice&password={password}&x=1"), password, "a query")


def test_an_unexpected_error_is_one_scrubbed_line_and_a_private_trace(tmp_path, monkeypatch, capsys):
    """`status` against a database that does not answer raised a SQLAlchemy error that the CLI let
    through as a 118-line traceback. Any unforeseen error is now one line with the password
    blanked, and the trace goes to a file only this user can read."""
    from sweeps.cli import commands as cli
    from sweeps.stores.config import Stores

    password = "a/b#c?d-secret"
    Stores(optuna_storage=f"postgresql://alice:{urllib.parse.quote(password, safe='')}@127.0.0.1:1/optuna")

    def broken(args):
        raise RuntimeError(f"connection to postgresql://alice:{password}@127.0.0.1:1/optuna failed\n"
                           f"DETAIL: the password {password} ...\n" + "x\n" * 100)

    monkeypatch.setitem(cli.RUNS, "status", broken)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cli.main(["status", "any"]) == 1
    text = capsys.readouterr().out
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: RuntimeError: connection to postgresql://alice:***@"), text
    _no_password(text, password, "the error line")
    [trace] = (tmp_path / "state" / "sparse-sweeps").glob("error-*.log")
    assert str(trace) in lines[0].replace("\n", "")
    assert stat.S_IMODE(trace.stat().st_mode) == 0o600
    assert stat.S_IMODE(trace.parent.stat().st_mode) == 0o700
    body = trace.read_text()
    assert "Traceback" in body and "broken" in body
    _no_password(body, password, "the trace file")


def test_trials_get_store_passwords_in_memory_not_in_their_environment(monkeypatch):
    from sweeps.run import tune as tune_wiring
    from sweeps.stores import config, secrets

    password = "trial-pw/with#odd?chars"
    enc = urllib.parse.quote(password, safe="")
    monkeypatch.setenv("SPARSE_SWEEPS_OPTUNA_STORAGE", f"postgresql://bob:{enc}@db.example:5432/optuna")
    monkeypatch.setenv("SPARSE_SWEEPS_DATA", "/data")
    stores = config.Stores()
    assert stores.optuna_storage == "postgresql+psycopg2://bob@db.example:5432/optuna"
    forwarded = tune_wiring.forwarded_env()
    assert forwarded["SPARSE_SWEEPS_OPTUNA_STORAGE"] == "postgresql+psycopg2://bob@db.example:5432/optuna"
    _no_password(repr(forwarded) + repr(dict(os.environ)), password, "the trial's environment")
    assert secrets.trial_secrets()["bob@db.example:5432"] == password  # handed over with the parameters
    # In the trial: remembered in memory, handed to connections by the SQLAlchemy hook.
    secrets._PASSWORDS.pop("bob@db.example:5432")
    secrets.remember_secrets({"bob@db.example:5432": password})
    assert secrets.password_env("postgresql+psycopg2://bob@db.example:5432/optuna") == {"PGPASSWORD": password}
    _no_password(repr(dict(os.environ)), password, "the environment after remember_secrets")


def test_trials_get_the_drivers_pgpassword_for_the_stores_url_alone(monkeypatch):
    # The driver's password in $PGPASSWORD, not in the URL: a trial on another node has neither, so
    # it goes with the trial's parameters, keyed to the store's user@host:port only.
    from sweeps.stores import secrets

    monkeypatch.setenv("PGPASSWORD", "env-pw-1234")
    monkeypatch.setattr(secrets, "_PASSWORDS", {})
    url = "postgresql+psycopg2://sweeps@10.9.8.7:6543/optuna"
    got = secrets.trial_secrets(url, "http://10.9.8.7:5000", "sqlite:///x.db", None)
    assert got == {"sweeps@10.9.8.7:6543": "env-pw-1234"}
    assert secrets.trial_secrets() == {}  # no store named: nothing from the environment
    # A password in the URL (known to this process) wins over the environment's.
    monkeypatch.setattr(secrets, "_PASSWORDS", {"sweeps@10.9.8.7:6543": "url-pw-5678"})
    assert secrets.trial_secrets(url) == {"sweeps@10.9.8.7:6543": "url-pw-5678"}
    # In the trial (no $PGPASSWORD there): remembered in memory, for that server only.
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setattr(secrets, "_PASSWORDS", {})
    secrets.remember_secrets(got)
    assert secrets.password_env(url) == {"PGPASSWORD": "env-pw-1234"}
    assert secrets.password_env("postgresql+psycopg2://sweeps@10.9.8.8:6543/optuna") == {}
    _no_password(repr(dict(os.environ)), "env-pw-1234", "the trial's environment")


def test_status_against_a_database_that_does_not_answer_is_one_line(tmp_path):
    """It was a 118-line traceback: now the store's check, as `run` words it, exit 2."""
    from sweep_helpers import run_cli
    from sweeps.spec import SweepSpec

    root = tmp_path / "root"
    port = free_port()
    spec = SweepSpec.from_dict(tiny_spec("gone", stores={"optuna_storage": f"postgresql://alice@127.0.0.1:{port}/optuna"}))
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "gone.yaml").write_text(spec.to_yaml())
    password = "gone/pw#1?x"
    proc = run_cli(["status", "gone", "--root", str(root)], cwd=tmp_path, timeout=120,
                   SPARSE_SWEEPS_OPTUNA_STORAGE=f"postgresql://alice:{urllib.parse.quote(password, safe='')}"
                                                f"@127.0.0.1:{port}/optuna", XDG_STATE_HOME=str(tmp_path / "state"))
    text = proc.stdout + proc.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, text
    assert lines[0].startswith("error: stores.optuna_storage ($SPARSE_SWEEPS_OPTUNA_STORAGE): cannot connect to "
                               f"postgresql+psycopg2://alice:***@127.0.0.1:{port}/optuna: connection refused"), text
    _no_password(text, password, "status output")
