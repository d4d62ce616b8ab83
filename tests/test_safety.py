"""What a store or a command line hands the CLI is held at the edge: an http MLflow password goes
as a header to its own server and never into a child's environment; text read from a store is
printed as text; ``--out`` never follows a link nor clobbers a file; a saved spec's relative root
reads its own store from any folder; and a planted or corrupt store file is refused in one line.
Each probe was first tried as a user, or as someone who can write a copied store, would."""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

PASSWORD = "pw-9f/3#q?x@y:z%"  # every character a URL parser trips on
USER = "alice"


def _forms(password: str) -> set[str]:
    return {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}


def _no_password(text: str | bytes, where: str) -> None:
    data = text.decode(errors="replace") if isinstance(text, bytes) else text
    for form in _forms(PASSWORD):
        assert form not in data, f"{where} holds the password ({form!r})"


class _AuthServer:
    """An HTTP server on 127.0.0.1 that wants basic auth (alice and PASSWORD) on every path, as an
    MLflow server behind a login does; it records the Authorization header of each request and
    answers /health and MLflow's experiment search."""

    def __init__(self) -> None:
        seen: list[tuple[str, str | None]] = []
        self.seen = seen
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                header = self.headers.get("Authorization")
                seen.append((self.path, header))
                if header != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
                    self.end_headers()
                    return
                body = b"OK" if self.path.startswith("/health") else json.dumps({"experiments": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_server():
    server = _AuthServer()
    yield server
    server.close()


@pytest.fixture
def clean_secrets(monkeypatch):
    """This process's password memory as it was, and no MLflow credential variable set."""
    from sweeps.stores import secrets

    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_AUTH",
                "SPARSE_SWEEPS_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    saved = dict(secrets._PASSWORDS), set(secrets._RAW)
    yield secrets
    secrets._PASSWORDS.clear()
    secrets._PASSWORDS.update(saved[0])
    secrets._RAW.clear()
    secrets._RAW.update(saved[1])
    os.environ.pop("MLFLOW_TRACKING_AUTH", None)


def _uri(port: int, password: str = PASSWORD) -> str:
    return f"http://{USER}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{port}"


# -- secrets ---------------------------------------------------------------------------------------

def test_an_http_mlflow_password_reaches_no_child_environment(auth_server, clean_secrets):
    """The stores are read as `sweeps run` reads them, MLflow's auth is set up as the service sets
    it up; then a child started as Ray's processes are (inheriting os.environ) and one started as
    `sweeps dashboard` starts `mlflow server` read their own environment: no password in any form."""
    from sweeps.stores.config import Stores
    from sweeps.tracking.auth import use_store_credentials
    from sweeps.tracking.ui import child_env

    stores = Stores(mlflow_tracking_uri=_uri(auth_server.port))
    assert stores.mlflow_tracking_uri == f"http://{USER}@127.0.0.1:{auth_server.port}"
    assert use_store_credentials(stores.mlflow_tracking_uri)
    _no_password(repr(dict(os.environ)), "this process's environment")
    read = [sys.executable, "-c", "import sys; sys.stdout.buffer.write(open('/proc/self/environ', 'rb').read())"]
    inherited = subprocess.run(read, capture_output=True, timeout=30, check=True).stdout
    served = subprocess.run(read, capture_output=True, timeout=30, check=True,
                            env=child_env(stores.resolved().mlflow_tracking_uri)).stdout
    assert b"PATH=" in inherited and b"PATH=" in served  # the children's environments were read
    _no_password(inherited, "a child's environment")
    _no_password(served, "the dashboard server's environment")


def test_mlflow_sends_the_password_as_a_header_to_its_own_server_only(auth_server, clean_secrets):
    """MLflow's own client, with no credential variable set, authenticates to the server named by
    the tracking URI (the server checks the header), and sends nothing to another server."""
    from mlflow.tracking import MlflowClient

    from sweeps.stores.config import Stores
    from sweeps.tracking.auth import use_store_credentials

    uri = Stores(mlflow_tracking_uri=_uri(auth_server.port)).mlflow_tracking_uri
    assert use_store_credentials(uri)
    assert MlflowClient(uri).search_experiments() == []
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert auth_server.seen and all(h == expected for _, h in auth_server.seen), auth_server.seen
    other = _AuthServer()  # the same user at another port: no password known there
    try:
        with pytest.raises(Exception):
            MlflowClient(f"http://{USER}@127.0.0.1:{other.port}").search_experiments()
        assert other.seen and all(h is None for _, h in other.seen), other.seen
    finally:
        other.close()


def test_preflight_sends_the_password_as_a_header(auth_server, clean_secrets):
    """An http tracking URI with a password passes the store check (it used to hand urllib the
    stripped ``http://user@host`` and never passed); a wrong password is one line without it."""
    from sweeps.errors import StoreError
    from sweeps.stores.config import Stores
    from sweeps.stores.preflight import preflight

    preflight(Stores(root="/tmp/sweeps-safety-unused", mlflow_tracking_uri=_uri(auth_server.port)))
    assert auth_server.seen[-1][0] == "/health" and auth_server.seen[-1][1]
    wrong = "not-" + PASSWORD
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info:
        preflight(Stores(root="/tmp/sweeps-safety-unused", mlflow_tracking_uri=_uri(auth_server.port, wrong).replace(
            USER, "bob")))
    assert time.monotonic() - t0 < 1.5
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "refused the credentials (401" in message, message
    assert "bob:***@" in message
    for form in _forms(wrong):
        assert form not in message


def test_the_trace_file_holds_no_password_from_the_command_line(tmp_path, monkeypatch, capsys):
    """An unforeseen error under ``--address http://user:PASSWORD@...``: the trace file's first
    line (the command line) is redacted like the rest."""
    from sweeps.cli import commands as cli

    def broken(args):
        raise RuntimeError("the job server broke")

    monkeypatch.setitem(cli.RUNS, "jobs", broken)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    argv = ["jobs", "--address", f"http://{USER}:{PASSWORD}@127.0.0.1:8265"]
    monkeypatch.setattr(sys, "argv", ["sweeps", *argv])
    assert cli.main(argv) == 1
    _no_password(capsys.readouterr().out, "the error line")
    [trace] = (tmp_path / "state" / "sparse-sweeps").glob("error-*.log")
    body = trace.read_text()
    assert body.splitlines()[0] == f"sweeps jobs --address http://{USER}:***@127.0.0.1:8265"
    _no_password(body, "the trace file")


# -- store text ------------------------------------------------------------------------------------

ESCAPES = ("\x1b]0;pwned-title\x07", "\x1b[2J", "\x9b2J", "\u202e")
MARKUP = "[link=https://evil.example/x]click me[/link]"
EVIL = f"x{ESCAPES[0]}y{ESCAPES[1]}z{ESCAPES[2]}w{ESCAPES[3]}v {MARKUP} [bold red]loud[/]"


def _sweeps(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    repo = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "400", **env})


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory):
    """A finished sweep in whose store someone planted terminal escapes and rich markup: in a
    trial's parameters (what `status` lists) and in a baseline's name (what `best` says)."""
    import sqlite3

    from fake_store import build_store

    root = build_store(tmp_path_factory.mktemp("planted"), "planted", trials=40)
    with sqlite3.connect(root / "optuna.db") as db:  # written as anyone who can write the store would
        unfinished = [i for (i,) in db.execute("SELECT trial_id FROM trials WHERE state != 'COMPLETE'")]
        assert unfinished  # the fake store fails or stops some
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'baseline'", (json.dumps(EVIL),))
        for trial_id in unfinished:  # what `status` lists of a trial that did not finish
            db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE trial_id = ? AND key = 'config'",
                       (json.dumps({EVIL: EVIL}), trial_id))
    return root


@pytest.mark.parametrize("force_terminal", [False, True], ids=["piped", "terminal"])
def test_store_text_is_printed_as_text(planted_store, tmp_path, force_terminal):
    """`status` and `best` print what the store holds: no escape reaches the terminal (no title
    change, no screen clear, no reversed text), no markup is interpreted (no hyperlink, no style
    from the store), and the markup shows literally."""
    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if force_terminal else {"NO_COLOR": "1"}
    status = _sweeps(["status", "planted", "--root", str(planted_store)], tmp_path, **env)
    best = _sweeps(["best", "planted", "--root", str(planted_store), "--out", str(tmp_path / "b.yaml")], tmp_path,
                   **env)
    for proc in (status, best):
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        for esc in ESCAPES:
            assert esc not in out, (esc, out[:3000])
        assert "\x1b]8;" not in out  # no hyperlink (OSC 8)
        assert "\x07" not in out
        if not force_terminal:
            assert "\x1b" not in out
    shown = "x]0;pwned-titley[2Jz2Jwv"  # the planted text with its control characters dropped
    assert shown in status.stdout and "[link=https://evil.example/x]" in status.stdout, status.stdout[:3000]
    # `best` names configs by the spec's baselines and trial numbers: the planted name is not its to print.
    assert "pwned" not in best.stdout and "evil.example" not in best.stdout, best.stdout


def test_job_output_and_log_lines_lose_their_control_characters(capsys):
    """`sweeps logs` writes a job's output as text; a log line quoting a store too."""
    import logging

    from sweeps.cli import jobs
    from sweeps.cli.console import configure_logging

    jobs._write(f"line one {EVIL}\nline two\n")
    configure_logging()
    logging.getLogger("sweeps.test").warning("store said %s", EVIL)
    out = capsys.readouterr().out
    for esc in ESCAPES:
        assert esc not in out
    shown = "x]0;pwned-titley[2Jz2Jwv"
    assert f"line one {shown}" in out and "line two" in out and f"store said {shown}" in out
    assert MARKUP in out.replace("\n", "")


# -- files -----------------------------------------------------------------------------------------

def _refused(args: list[str], cwd: Path, *expected: str) -> str:
    """One line, exit 2, within 1.5 s, nothing heavy imported."""
    from test_cli_imports import cli

    t0 = time.monotonic()
    rc, out, heavy = cli(args, cwd)
    seconds = time.monotonic() - t0
    assert rc == 2 and len(out.splitlines()) == 1, out
    for text in expected:
        assert text in out, out
    assert heavy == [], heavy
    assert seconds < 1.5, seconds
    return out


@pytest.fixture(scope="module")
def fake_store(tmp_path_factory):
    from fake_store import build_store

    return build_store(tmp_path_factory.mktemp("store"), "fake", trials=12)


def test_out_never_follows_a_dangling_link(fake_store, tmp_path):
    """``best --out link.yaml`` with the link pointing nowhere used to create the link's target."""
    target = tmp_path / "elsewhere" / "created.yaml"
    target.parent.mkdir()
    for command, name in (("best", "b.yaml"), ("report", "r.html")):
        link = tmp_path / name
        link.symlink_to(target)
        for force in ([], ["--force"]):
            _refused([command, "fake", "--root", str(fake_store), "--out", str(link), *force], tmp_path,
                     f"--out {link}: is a symbolic link")
        assert not target.exists() and link.is_symlink()


def test_train_and_simulate_do_not_overwrite_without_force(tmp_path):
    out = tmp_path / "kept.json"
    out.write_text("keep me")
    _refused(["train", "--preset", "sparse-mlp", "--out", str(out)], tmp_path, f"--out {out}: already exists",
             "--force")
    _refused(["simulate", "mnist-quick", "--out", str(out)], tmp_path, f"--out {out}: already exists", "--force")
    default = tmp_path / "runs" / "train-mnist-sparse-mlp-seed3.json"  # train's default path is checked too
    default.parent.mkdir()
    default.write_text("keep me")
    _refused(["train", "--preset", "sparse-mlp", "--seed", "3"], tmp_path, "already exists")
    assert out.read_text() == default.read_text() == "keep me"


def test_export_onto_a_file_or_a_link_is_one_line(fake_store, tmp_path):
    file = tmp_path / "model"
    file.write_text("keep me")
    for force in ([], ["--force"]):
        _refused(["export", "fake", "--root", str(fake_store), "--out", str(file), *force], tmp_path,
                 "already exists and is not a folder")
    link = tmp_path / "linked"
    link.symlink_to(tmp_path / "nowhere")
    _refused(["export", "fake", "--root", str(fake_store), "--out", str(link)], tmp_path, "is a symbolic link")
    assert file.read_text() == "keep me" and not (tmp_path / "nowhere").exists()


def test_the_writer_creates_exclusively_and_replaces_only_with_force(tmp_path):
    from sparsity.errors import UserError
    from sweeps.files import new_folder, write_new

    path = write_new(tmp_path / "a" / "b.txt", "one")
    assert path.read_text() == "one"
    with pytest.raises(UserError, match="already exists"):
        write_new(path, "two")
    assert write_new(path, "two", force=True).read_text() == "two"
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "via-link").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        write_new(tmp_path / "via-link", "x", force=True)
    assert victim.read_text() == "keep me"
    folder = new_folder(tmp_path / "export")
    assert folder.is_dir()
    (folder / "f").write_text("x")
    with pytest.raises(UserError, match="holds files"):
        new_folder(folder)
    assert new_folder(folder, force=True) == folder


# -- Ray's token and session files -----------------------------------------------------------------

def test_ray_files_are_private_before_ray_starts(tmp_path, monkeypatch):
    """What `sweeps.run.ray_start` sets up before `ray.init`: ~/.ray at 0700, the session folder's
    parent at 0700 and named in $RAY_TMPDIR, and a umask under which what Ray writes (its token
    file first) is created 0600; the umask is back afterwards."""
    import stat as st

    from sweeps.run import ray_start

    import shutil
    import tempfile

    home = tmp_path / "home"
    home.mkdir()
    (home / ".ray").mkdir(mode=0o755)  # as an earlier Ray left it
    monkeypatch.setenv("HOME", str(home))
    short = Path(tempfile.mkdtemp(prefix=""))  # Ray's socket paths are short
    monkeypatch.setenv("RAY_TMPDIR", str(short))
    before = os.umask(0o022)
    try:
        with ray_start._private_files():
            token = ray_start.ray_token_file()
            with open(token, "w") as f:  # as Ray writes it
                f.write("t")
            assert st.S_IMODE(token.stat().st_mode) == 0o600  # from its first byte, not after the start
            assert st.S_IMODE(token.parent.stat().st_mode) == 0o700
            sessions = Path(os.environ["RAY_TMPDIR"])
            assert sessions == short / f"sweeps-ray-{os.getuid()}"
            assert st.S_IMODE(sessions.stat().st_mode) == 0o700
        assert os.umask(0o022) == 0o022
        with ray_start._private_files():  # a second start in the same process reuses the folder
            assert Path(os.environ["RAY_TMPDIR"]) == sessions
    finally:
        os.umask(before)
        shutil.rmtree(short)


def test_a_planted_or_too_long_ray_folder_is_refused(tmp_path, monkeypatch):
    import shutil
    import tempfile

    from sparsity.errors import UserError
    from sweeps.run import ray_start

    short = Path(tempfile.mkdtemp(prefix=""))
    try:
        monkeypatch.setenv("RAY_TMPDIR", str(short))
        (short / f"sweeps-ray-{os.getuid()}").symlink_to(tmp_path)
        with pytest.raises(UserError, match="is a link, a file, or another user's folder"):
            ray_start.ray_temp_folder()
    finally:
        shutil.rmtree(short)
    monkeypatch.setenv("RAY_TMPDIR", "/tmp/" + "x" * 40)
    with pytest.raises(UserError, match="too long for Ray's socket paths"):
        ray_start.ray_temp_folder()
    assert not Path("/tmp/" + "x" * 40).exists()


@pytest.mark.slow
def test_a_local_ray_keeps_its_token_and_sessions_private(tmp_path):
    """A real local Ray started by the service: the token file 0600 in a 0700 ~/.ray, its sessions
    below a 0700 folder of this user's, and no process of it starts with a store password."""
    home = tmp_path / "h"
    home.mkdir()
    probe = f"""
import os, stat, sys
from sweeps.stores.config import Stores
Stores(mlflow_tracking_uri={_uri(1)!r})
from sweeps.run.ray_start import _start_local, ray_token_file
import ray
_start_local(1)
try:
    mode = lambda p: oct(stat.S_IMODE(os.stat(p).st_mode))
    temp = ray.get_runtime_context().get_temp_dir() if hasattr(ray.get_runtime_context(), "get_temp_dir") else None
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    env_hits = 0
    for pid in pids:
        try:
            if {PASSWORD!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read():
                env_hits += 1
        except OSError:
            pass
    print("TOKEN", mode(ray_token_file()) if ray_token_file().exists() else "none", mode(ray_token_file().parent))
    print("TMP", os.environ["RAY_TMPDIR"], mode(os.environ["RAY_TMPDIR"]))
    print("ENV", env_hits)
finally:
    ray.shutdown()
"""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(repo)}
    env.pop("RAY_AUTH_MODE", None)
    for var in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line[:3] in ("TOK", "TMP", "ENV"))
    token_mode, folder_mode = lines["TOKEN"].split()
    assert token_mode in ("0o600", "none") and folder_mode == "0o700", lines
    folder, mode = lines["TMP"].split()
    assert Path(folder).name == f"sweeps-ray-{os.getuid()}" and mode == "0o700", lines
    assert any(Path(folder).glob("ray/session_*")), "Ray kept its sessions elsewhere"
    assert lines["ENV"] == "0", lines


# -- a saved spec's root ---------------------------------------------------------------------------

@pytest.mark.parametrize("written", ["relative-to-launch", "absolute", "saved-now"])
def test_a_copied_store_reads_its_own_trials_from_any_folder(tmp_path, written):
    """A sweep launched with a relative root kept that relative root in its saved spec, so `status`
    run from another folder read another (empty) store: 0 trials. A saved spec's relative root is
    the folder holding its specs folder: the store is copied, the original removed, and the copy
    read from a third folder finds every trial."""
    import shutil

    import yaml

    from fake_store import build_store
    from sweeps.spec_store import save_spec, saved_spec, spec_path

    original = build_store(tmp_path / "launch" / "sweeps-data", "fake", trials=12)
    path = spec_path(original, "fake")
    if written == "relative-to-launch":  # what `sweeps run` in ./launch wrote before
        doc = yaml.safe_load(path.read_text())
        doc["stores"]["root"] = "sweeps-data"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    elif written == "absolute":  # `--root /abs/path`: the copy must not read the original (or recreate it)
        assert yaml.safe_load(path.read_text())["stores"]["root"] == str(original)
    else:
        assert save_spec(saved_spec("fake", str(original)), original).resolve() == path.resolve()
        assert yaml.safe_load(path.read_text())["stores"]["root"] == ".."
    copy = tmp_path / "mounted" / "elsewhere"
    shutil.copytree(original, copy)
    shutil.rmtree(tmp_path / "launch")
    (tmp_path / "work").mkdir()
    spec = saved_spec("fake", str(copy))
    assert spec.stores.resolved().optuna_storage == f"sqlite:///{copy.resolve() / 'optuna.db'}"
    proc = _sweeps(["status", "fake", "--root", str(copy)], tmp_path / "work", NO_COLOR="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = next(line for line in proc.stdout.splitlines() if " complete, " in line)
    assert sum(int(word) for word in counts.replace(",", "").split() if word.isdigit()) == 12, counts
    assert not (tmp_path / "work" / "sweeps-data").exists()  # nothing made where it was run
    assert not (tmp_path / "launch").exists()  # nor where the original was


# -- planted or damaged store files ------------------------------------------------------------------

@pytest.mark.parametrize("plant", ["mlmodel-tag", "mlmodel-list", "network-json", "network-shape"])
def test_a_planted_model_file_is_one_line_and_runs_nothing(tmp_path, monkeypatch, plant):
    """A logged model whose MLmodel (YAML) or network.json (JSON) in the artifact store was
    replaced: a YAML tag that would run a command, a list, bad JSON, JSON of another shape. Loading
    it is refused in one line within 1.5 s; nothing runs."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from sparsity import build_network, preset
    from sweeps.results.deploy import load_model
    from sweeps.tracking import models

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        exp = client.create_experiment("planted", artifact_location=(tmp_path / "artifacts").as_uri())
        network = preset("sparse-mlp")
        model_id = models.log_model(build_network(network, seed=0), network, client.create_run(exp).info.run_id)
        stored = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
        marker = tmp_path / "payload-ran"
        files = {
            "mlmodel-tag": (models.MLMODEL, f"flavors: !!python/object/apply:os.system ['touch {marker}']\n"),
            "mlmodel-list": (models.MLMODEL, "- a\n- b\n"),
            "network-json": (models.NETWORK, "{not json"),
            "network-shape": (models.NETWORK, "[1, 2, 3]"),
        }
        name, text = files[plant]
        (stored / name).write_text(text)
        t0 = time.monotonic()
        with pytest.raises(models.UnsafeModelError) as info:
            load_model(f"models:/{model_id}")
        assert time.monotonic() - t0 < 1.5
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"models:/{model_id}: "), message
        assert name in message
        assert not marker.exists()
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.parametrize("damage", ["yaml-tag", "yaml-broken", "not-a-mapping", "wrong-type", "binary",
                                    "attr-json", "attr-type", "curve-shape", "not-a-database"])
def test_a_damaged_store_is_one_line_for_every_reader(tmp_path, damage):
    """A copied store with its saved spec or its Optuna database planted or damaged: `status`,
    `list` and `best` each refuse in one line, exit 2 (not a traceback), and nothing runs."""
    import shutil
    import sqlite3

    from fake_store import build_store

    root = build_store(tmp_path / "store", "fake", trials=12)
    spec = root / "specs" / "fake.yaml"
    text = spec.read_text()
    marker = tmp_path / "payload-ran"

    def sql(statement: str) -> None:
        with sqlite3.connect(root / "optuna.db") as db:
            assert db.execute(statement).rowcount > 0

    if damage == "yaml-tag":
        spec.write_text(text + f"\nextra: !!python/object/apply:os.system ['touch {marker}']\n")
    elif damage == "yaml-broken":
        spec.write_text(text.replace("budget:", "budget: [\n", 1))
    elif damage == "not-a-mapping":
        spec.write_text("- a\n- b\n")
    elif damage == "wrong-type":
        spec.write_text(text.replace("\nseed: 0", "\nseed: [1]"))
    elif damage == "binary":
        spec.write_bytes(b"\xff\xfe\x00" + text.encode())
    elif damage == "attr-json":
        sql("UPDATE trial_user_attributes SET value_json = '{not json' WHERE key = 'config'")
    elif damage == "attr-type":
        sql("UPDATE trial_user_attributes SET value_json = '[1, 2]' WHERE key = 'config'")
    elif damage == "curve-shape":
        sql("UPDATE trial_user_attributes SET value_json = '{\"levels\": 3}' WHERE key = 'val_curve'")
    else:
        (root / "optuna.db").write_bytes(b"not a database " * 200)
    outs = {}
    for args in (["status", "fake"], ["list"], ["best", "fake", "--out", str(tmp_path / "b.yaml")]):
        proc = _sweeps([*args, "--root", str(root)], tmp_path, NO_COLOR="1")
        outs[args[0]] = proc
        if (damage in ("attr-json", "attr-type", "curve-shape") and args[0] == "list"
                or damage == "curve-shape" and args[0] == "status"):
            continue  # `list` reads states and values only, `status` no curves
        out = (proc.stdout + proc.stderr).strip()
        assert proc.returncode == 2 and len(out.splitlines()) == 1, out
        assert out.startswith("error: ") and "Traceback" not in out, out
    assert not marker.exists()
    assert not (tmp_path / "b.yaml").exists()
    shutil.rmtree(root)
