"""Data on every node: `sweeps data verify | stage | fetch`, and a trial's own check on its node.

Checksums are computed here with hashlib from the bytes the test wrote (or compared with the
sha256 list shipped with the data); the downloads come from an HTTP server on 127.0.0.1 that this
test runs (this machine reaches no dataset host), serving small fake files whose checksums the
test passes with --checksums.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import shutil
import socket
import tarfile
import threading
from importlib.util import find_spec
from pathlib import Path

import pytest

from sweep_helpers import run_cli, tiny_spec, write_spec

MNIST_GZ = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mnist_root(tmp_path, data_dir) -> Path:
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    for name in MNIST_GZ:
        shutil.copyfile(data_dir / "MNIST" / "raw" / name, root / "MNIST" / "raw" / name)
    return root


def _one_line(proc) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


# -- verify ----------------------------------------------------------------------------------------

def test_the_pinned_mnist_checksums_are_the_shipped_ones(data_dir):
    from sweeps.data.catalog import DATASETS

    shipped = {}
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        shipped[path] = digest
    for f in DATASETS["mnist"].pinned:
        assert shipped[f.path] == f.sha256
        assert (data_dir / f.path).stat().st_size == f.size


def test_verify_passes_a_complete_set_and_names_a_missing_or_corrupt_file(mnist_root, tmp_path):
    ok = run_cli(["data", "verify", "mnist", "--data", str(mnist_root)], cwd=tmp_path)
    assert ok.returncode == 0 and "4 files checked" in ok.stdout, ok.stdout + ok.stderr

    (mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    raw = mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    data = bytearray(raw.read_bytes())
    data[100] ^= 0xFF  # one byte flipped: same size, another checksum
    raw.write_bytes(bytes(data))
    bad = run_cli(["data", "verify", "--data", str(mnist_root)], cwd=tmp_path)
    line = _one_line(bad)
    assert bad.returncode == 2
    assert "missing MNIST/raw/t10k-labels-idx1-ubyte.gz" in line
    assert "checksum mismatch in MNIST/raw/train-labels-idx1-ubyte.gz" in line
    assert "sweeps data fetch mnist" in line and "SPARSE_SWEEPS_DATA" in line


def test_verify_accepts_the_extracted_mnist_files(mnist_root):
    from sweeps.data.check import verify

    raw = mnist_root / "MNIST" / "raw"
    for name in MNIST_GZ:
        (raw / name[:-3]).write_bytes(gzip.decompress((raw / name).read_bytes()))
        (raw / name).unlink()
    result = verify("mnist", mnist_root)
    assert result.ok and len(result.checked) == 4 and all(not p.endswith(".gz") for p in result.checked)


def test_an_empty_root_and_an_unknown_dataset_are_one_line(tmp_path):
    empty = run_cli(["data", "verify", "--data", str(tmp_path)], cwd=tmp_path)
    assert empty.returncode == 2 and "no dataset under" in _one_line(empty)
    unknown = run_cli(["data", "stage", "cifar", str(tmp_path / "x"), "--data", str(tmp_path)], cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown; choose one of mnist, gsc" in _one_line(unknown)


def _fake_gsc(root: Path) -> dict[str, bytes]:
    """A tiny GSC folder: the two split lists and two clips (bytes need not be audio here)."""
    files = {
        "SpeechCommands/speech_commands_v0.02/validation_list.txt": b"yes/b_nohash_0.wav\n",
        "SpeechCommands/speech_commands_v0.02/testing_list.txt": b"",
        "SpeechCommands/speech_commands_v0.02/yes/a_nohash_0.wav": b"RIFF-a" * 50,
        "SpeechCommands/speech_commands_v0.02/yes/b_nohash_0.wav": b"RIFF-b" * 50,
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_gsc_is_checked_against_the_manifest(tmp_path):
    from sweeps.data.check import problem, verify

    files = _fake_gsc(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("".join(f"{_sha(d)}  {p}\n" for p, d in files.items()))
    assert verify("gsc", tmp_path).ok and len(verify("gsc", tmp_path).checked) == 4
    (tmp_path / "SpeechCommands/speech_commands_v0.02/yes/a_nohash_0.wav").write_bytes(b"other")
    (tmp_path / "SpeechCommands/speech_commands_v0.02/testing_list.txt").unlink()
    line = problem(verify("gsc", tmp_path))
    assert "checksum mismatch in SpeechCommands/speech_commands_v0.02/yes/a_nohash_0.wav" in line
    assert "missing SpeechCommands/speech_commands_v0.02/testing_list.txt" in line


# -- stage -----------------------------------------------------------------------------------------

def test_stage_to_a_folder_then_verify_there(mnist_root, tmp_path, data_dir):
    dest = tmp_path / "shared"
    proc = run_cli(["data", "stage", "mnist", str(dest), "--data", str(mnist_root)], cwd=tmp_path)
    assert proc.returncode == 0 and "4 files copied" in proc.stdout, proc.stdout + proc.stderr
    for name in MNIST_GZ:
        assert (dest / "MNIST/raw" / name).read_bytes() == (data_dir / "MNIST/raw" / name).read_bytes()
    there = run_cli(["data", "verify", "mnist"], cwd=tmp_path, SPARSE_SWEEPS_DATA=str(dest))
    assert there.returncode == 0, there.stdout + there.stderr
    again = run_cli(["data", "stage", str(dest), "--data", str(mnist_root)], cwd=tmp_path)  # every dataset found
    assert again.returncode == 0 and "0 files copied, 4 already there" in again.stdout, again.stdout


def test_stage_to_an_object_store_through_fsspec(tmp_path):
    import fsspec

    from sweeps.data.check import read_manifest
    from sweeps.data.transfer import stage

    files = _fake_gsc(tmp_path / "data")
    (tmp_path / "data" / "SHA256SUMS").write_text("".join(f"{_sha(d)}  {p}\n" for p, d in files.items()))
    fs = fsspec.filesystem("memory")
    try:
        copied = stage("gsc", "memory://bucket/data", tmp_path / "data", say=lambda _: None)
        assert sorted(copied) == sorted(files)
        for rel, data in files.items():
            assert fs.cat_file(f"/bucket/data/{rel}") == data
        assert read_manifest(fs.cat_file("/bucket/data/SHA256SUMS").decode()) == {p: _sha(d) for p, d in files.items()}
        assert stage("gsc", "memory://bucket/data", tmp_path / "data", say=lambda _: None) == []
    finally:
        if fs.exists("/bucket"):
            fs.rm("/bucket", recursive=True)


def test_stage_refuses_an_incomplete_set_and_a_missing_object_store_package(mnist_root, tmp_path):
    assert find_spec("s3fs") is None  # an optional extra, not installed with the project
    s3 = run_cli(["data", "stage", "mnist", "s3://bucket/data", "--data", str(mnist_root)], cwd=tmp_path)
    assert s3.returncode == 2 and "needs the s3fs package" in _one_line(s3) and "pip install s3fs" in s3.stdout
    (mnist_root / "MNIST/raw" / MNIST_GZ[0]).unlink()
    bad = run_cli(["data", "stage", "mnist", str(tmp_path / "shared"), "--data", str(mnist_root)], cwd=tmp_path)
    assert bad.returncode == 2 and "cannot stage" in _one_line(bad) and not (tmp_path / "shared").exists()


# -- fetch -----------------------------------------------------------------------------------------

class _Server:
    """Serves ``files`` ({name: bytes}) on 127.0.0.1, honouring a Range header when ``ranges``;
    records each request's Range header."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True) -> None:
        self.files, self.ranges, self.seen = files, ranges, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                outer.seen.append((name, self.headers.get("Range")))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data, status = outer.files[name], 200
                rng = self.headers.get("Range")
                if rng and outer.ranges:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    data, status = data[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _fake_mnist() -> dict[str, bytes]:
    return {name: (name.encode() * 997)[: 5000 + 17 * i] for i, name in enumerate(MNIST_GZ)}


def test_fetch_resumes_a_cut_download_and_checks_every_file(tmp_path):
    files = _fake_mnist()
    sums = tmp_path / "sums"
    sums.write_text("".join(f"{_sha(d)}  {n}\n" for n, d in files.items()))
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    cut = MNIST_GZ[0]
    (raw / (cut + ".part")).write_bytes(files[cut][:1234])  # a download cut at 1,234 bytes
    server = _Server(files)
    try:
        proc = run_cli(["data", "fetch", "mnist", "--data", str(root), "--mirror", server.url, "--checksums",
                        str(sums)], cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resuming train-images-idx3-ubyte.gz at 1,234 bytes" in proc.stdout
    assert (cut, "bytes=1234-") in server.seen  # only the rest was asked for
    assert sorted(n for n, _ in server.seen) == sorted(MNIST_GZ)  # each file once
    for name, data in files.items():
        assert (raw / name).read_bytes() == data
    assert not list(raw.glob("*.part"))
    from sweeps.data.check import read_manifest

    assert read_manifest((root / "SHA256SUMS").read_text())[f"MNIST/raw/{cut}"] == _sha(files[cut])


def test_fetch_refuses_a_file_that_fails_its_checksum(tmp_path):
    files = _fake_mnist()
    sums = tmp_path / "sums"
    sums.write_text("".join(f"{_sha(d)}  {n}\n" for n, d in files.items()))
    served = dict(files, **{MNIST_GZ[1]: b"tampered" + files[MNIST_GZ[1]]})
    server = _Server(served, ranges=False)
    try:
        proc = run_cli(["data", "fetch", "mnist", "--data", str(tmp_path / "data"), "--mirror", server.url,
                        "--checksums", str(sums)], cwd=tmp_path)
    finally:
        server.close()
    line = [x for x in proc.stdout.splitlines() if x.startswith("error:")]
    assert proc.returncode == 2 and len(line) == 1, proc.stdout + proc.stderr
    assert f"could not fetch {MNIST_GZ[1]}" in line[0] and "is not the pinned" in line[0]
    assert not (tmp_path / "data/MNIST/raw" / MNIST_GZ[1]).exists()  # nothing unchecked left in place


def test_fetch_of_the_gsc_archive_extracts_it_and_verifies(tmp_path):
    src = tmp_path / "src"
    files = _fake_gsc(src)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # the archive holds the folder's content
        for rel in files:
            tar.add(src / rel, arcname=rel.split("speech_commands_v0.02/", 1)[1])
    archive = buf.getvalue()
    sums = tmp_path / "sums"
    sums.write_text(f"{_sha(archive)}  speech_commands_v0.02.tar.gz\n")
    server = _Server({"speech_commands_v0.02.tar.gz": archive})
    try:
        proc = run_cli(["data", "fetch", "gsc", "--data", str(tmp_path / "data"), "--mirror", server.url,
                        "--checksums", str(sums)], cwd=tmp_path)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rel, data in files.items():
        assert (tmp_path / "data" / rel).read_bytes() == data
    assert not (tmp_path / "data" / ".downloads").exists()
    verify = run_cli(["data", "verify", "gsc", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert verify.returncode == 0 and "4 files checked" in verify.stdout, verify.stdout


def test_the_gsc_archive_has_no_invented_checksum():
    from sweeps.data.catalog import DATASETS

    assert DATASETS["gsc"].archive_sha256 is None and not DATASETS["gsc"].pinned


# -- a trial's own check on its node ---------------------------------------------------------------

def test_the_node_check_names_the_node_and_the_fix(tmp_path):
    from sweeps.data.check import check_on_node
    from sweeps.errors import DataError

    with pytest.raises(DataError) as e:
        check_on_node("mnist", tmp_path, address="10.0.0.7")
    line = str(e.value)
    assert "\n" not in line and f"{socket.gethostname()} (10.0.0.7)" in line
    assert "sweeps data stage mnist" in line and "SPARSE_SWEEPS_DATA" in line


@pytest.mark.slow
def test_a_node_without_the_data_ends_the_sweep_in_one_line_without_retries(tmp_path, data_dir):
    """The driver reads the data from a relative root (its own working folder), while every trial
    runs in its trial folder, where that root holds nothing: the trials' nodes lack the data. The
    first trial to find so ends the sweep with one line (its node, the fix), exit 2, no retries."""
    (tmp_path / "data").symlink_to(data_dir)
    spec = tiny_spec("nodata", dataset={"name": "mnist", "root": "data", "train_limit": 600, "eval_limit": 200},
                     budget={"trials": 1, "max_concurrent": 1, "max_failures": 3})
    path = write_spec(tmp_path, spec)
    proc = run_cli(["run", str(path), "--root", str(tmp_path / "store")], cwd=tmp_path, timeout=400,
                   SPARSE_SWEEPS_DATA="")
    errors = [x for x in proc.stdout.splitlines() if x.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"is not on node {socket.gethostname()} (127.0.0.1)" in errors[0]
    assert "sweeps data stage mnist" in errors[0]
    from sweep_helpers import study, trial_runs

    trials = study(tmp_path / "store", "nodata").get_trials()
    states = [t.state.name for t in trials]
    assert states.count("FAIL") == 1 and "COMPLETE" not in states, states  # one attempt, not retried
    assert trial_runs(tmp_path / "store", "nodata") == []  # no MLflow run was opened for it
