"""The small ones of issue 19 (point 5): every sweep name taken from the command line is held to
the spec's rule (``sweeps status ../../x`` reads nothing outside the root), `--out` never
overwrites without `--force`, registry names and aliases are checked, and `submit` quotes `--root`
in the job's shell command. Each refusal is one line, exit 2, before anything heavy loads, and
writes nothing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

from fake_store import build_store
from sweep_helpers import tiny_spec, write_spec
from test_cli_imports import cli


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("store"), "fake", trials=12)


def _refused(args, cwd, *expected):
    t0 = time.monotonic()
    rc, out, heavy = cli(args, cwd)
    seconds = time.monotonic() - t0
    assert rc == 2 and len(out.splitlines()) == 1, out
    for text in expected:
        assert text in out, out
    assert heavy == [], heavy
    assert seconds < 3, seconds  # about 0.5 s: the interpreter and the argument check
    return out


def test_a_name_that_leaves_the_root_is_refused_not_read(tmp_path):
    root = tmp_path / "root"
    (root / "specs").mkdir(parents=True)
    write_spec(tmp_path, tiny_spec("x"))  # ROOT/specs/../../x.yaml: what `status ../../x` read
    out = _refused(["status", "../../x", "--root", str(root)], tmp_path, "NAME: '../../x' must be 1-64 letters")
    assert "trials of" not in out


@pytest.mark.parametrize("args", [
    ["resume", "../x"], ["confirm", "a/b"], ["best", ".."], ["export", "../x", "--out", "o"], ["report", "/etc/x"],
    ["dashboard", "../x"], ["logs", "x y"], ["stop", "../x"], ["run", "mnist-quick", "--name", "../x"],
    ["submit", "mnist-quick", "--name", "a/b"],
], ids=lambda a: a[0])
def test_every_command_checks_its_sweep_name(args, tmp_path):
    _refused([*args, *(["--root", str(tmp_path / "root")] if args[0] not in ("logs", "stop", "submit") else [])],
             tmp_path, "must be 1-64 letters")
    assert not (tmp_path / "root").exists()


def test_best_and_report_do_not_overwrite_without_force(store, tmp_path):
    for command, name in (("best", "chosen.yaml"), ("report", "report.html")):
        out = tmp_path / name
        out.write_text("keep me")
        _refused([command, "fake", "--root", str(store), "--out", str(out)], tmp_path,
                 f"--out {out}: already exists", "--force")
        assert out.read_text() == "keep me"
    rc, text, _ = cli(["best", "fake", "--root", str(store), "--out", str(tmp_path / "chosen.yaml"), "--force"], tmp_path)
    assert rc == 0, text
    assert yaml.safe_load((tmp_path / "chosen.yaml").read_text())["source"]["sweep"] == "fake"
    default = tmp_path / "fake-best.yaml"  # the default name is checked too
    default.write_text("keep me")
    _refused(["best", "fake", "--root", str(store)], tmp_path, "--out fake-best.yaml: already exists")
    assert default.read_text() == "keep me"


def test_export_does_not_write_into_a_folder_that_holds_files(store, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "weights.pt").write_text("keep me")
    _refused(["export", "fake", "--root", str(store), "--out", str(folder)], tmp_path, "already exists", "--force")
    assert (folder / "weights.pt").read_text() == "keep me"


@pytest.mark.parametrize("extra,message", [
    (["--register", "../evil"], "--register: '../evil' must be"),
    (["--register", "net name"], "--register: 'net name' must be"),
    (["--register", "net", "--alias", "latest"], "--alias: 'latest'"),
    (["--register", "net", "--alias", "v3"], "--alias: 'v3'"),
    (["--register", "net", "--alias", "a/b"], "--alias: 'a/b'"),
])
def test_registry_names_and_aliases_are_checked(store, tmp_path, extra, message):
    _refused(["best", "fake", "--root", str(store), "--out", str(tmp_path / "b.yaml"), *extra], tmp_path, message)
    assert not (tmp_path / "b.yaml").exists()


def test_submit_quotes_the_root_in_the_jobs_shell_command(tmp_path):
    """The job's entrypoint, run by a shell as Ray runs it: a fake `python` records each call's
    arguments and working folder; the root reaches `sweeps run` as one argument, nothing else runs."""
    import json
    import subprocess

    from sweeps.run.jobs import entrypoint

    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls.jsonl"
    (fake / "python").write_text(f"""#!{sys.executable}
import json, os, sys
with open({str(calls)!r}, "a") as f:
    f.write(json.dumps([os.getcwd()] + sys.argv[1:]) + "\\n")
""")
    (fake / "python").chmod(0o755)
    home, job = tmp_path / "home", tmp_path / "job"
    home.mkdir()
    job.mkdir()
    root = "/mnt/sweeps; touch /tmp/pwned-by-sweeps #"
    for given, expected in ((root, root), ("~/my sweeps", str(home / "my sweeps")), (None, None)):
        calls.unlink(missing_ok=True)
        proc = subprocess.run(["sh", "-c", entrypoint(given)], cwd=job, capture_output=True, text=True, timeout=30,
                              env={"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        check, run = [json.loads(line) for line in calls.read_text().splitlines()]
        assert check == [str(job), "-m", "sweeps.run.headcheck"]
        assert run == [str(home), "-m", "sweeps.cli", "run", str(job / "spec.yaml")] + (
            ["--root", expected] if expected else [])
    assert not Path("/tmp/pwned-by-sweeps").exists()
