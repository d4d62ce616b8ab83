"""Set-up does the set-up (issue 13, point 7): system packages the tests need are installed by
`scripts/setup.sh --test` (which the README's test command runs), with a clear message when that is
impossible; the tests themselves never install anything."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A command line that installs: ["apt-get", ...], ["pip", "install", ...], [python, "-m", "pip", "install"].
INSTALLS = re.compile(r"""\[\s*["'](apt-get|apt|dnf|yum|apk|brew)["']|["']pip["']\s*,\s*["']install["']""")


def test_no_test_installs_anything():
    offenders = []
    for path in sorted((REPO / "tests").glob("*.py")):
        if path.name == Path(__file__).name:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if INSTALLS.search(code):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, "tests must not install packages (scripts/setup.sh --test does):\n" + "\n".join(offenders)


def test_the_test_command_runs_the_set_up_of_system_packages():
    text = (REPO / "scripts" / "test.sh").read_text()
    assert "bash scripts/setup.sh --test" in text
    assert "RAY_AUTH_MODE" not in text  # Ray's token authentication is not switched off
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "apt-get install" in setup and "chromium" in setup


def test_set_up_says_clearly_when_it_cannot_install(tmp_path):
    """Not root (a stand-in `id` says uid 1000) and no chromium on PATH: it names what it cannot
    install, why, and the command to run, and the rest of the set-up still succeeds. It runs on a
    copy of the checkout whose environment is up to date (a stand-in venv and its stamp)."""
    import hashlib

    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    for name in ("requirements.lock", "pyproject.toml", "scripts/uv.txt"):
        shutil.copy(REPO / name, repo / name)
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (repo / ".venv" / "bin" / "python").chmod(0o755)
    digest = hashlib.sha256(b"".join((repo / n).read_bytes() for n in ("requirements.lock", "pyproject.toml",
                                                                      "scripts/uv.txt")))
    (repo / ".venv" / ".installed").write_text(digest.hexdigest() + "\n")
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "cat", "sha256sum", "cut", "dirname", "env", "sed"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    (tools / "id").write_text("#!/bin/sh\necho 1000\n")
    (tools / "id").chmod(0o755)
    proc = subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), "--test"], capture_output=True, text=True,
                          timeout=120, env={"PATH": str(tools), "HOME": str(tmp_path)})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "setup: .venv is up to date" in out, out  # the set-up itself ran
    assert "setup: cannot install chromium (not root)" in out, out
    assert "apt-get install -y chromium" in out


def test_the_lock_and_uv_are_pinned_with_hashes_and_installed_hash_checked():
    """Supply chain (issue 19): every requirement of the lock (and uv) carries its files' sha256,
    and set-up installs both with --require-hashes."""
    for name in ("requirements.lock", "scripts/uv.txt"):
        text = (REPO / name).read_text()
        entries = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
        assert entries, name
        for entry in entries:
            assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==[^\s]+ \\$", entry), f"{name}: {entry!r} is not an exact pin"
        blocks = re.findall(r"^(\S+==\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n?)+)", text, flags=re.M)
        assert len(blocks) == len(entries), f"{name}: a pin without hashes"
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "--require-hashes -r requirements.lock" in setup and "--require-hashes -r scripts/uv.txt" in setup
    assert "pip install --quiet --disable-pip-version-check uv\n" not in setup  # no unpinned uv


def test_the_project_is_built_from_the_locked_toolchain(tmp_path):
    """`setup.sh` installs the project without build isolation, so no unpinned setuptools is
    fetched outside the hash-checked lock; the lock pins the build backend pyproject names, and
    that backend, as installed, builds the editable wheel offline (what --no-build-isolation runs)."""
    import sys
    import tomllib

    setup = (REPO / "scripts" / "setup.sh").read_text()
    installs = [line for line in setup.splitlines() if "pip install" in line and " -e ." in line]
    assert installs and all("--no-build-isolation" in line for line in installs), installs
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"
    lock = (REPO / "requirements.lock").read_text()
    pinned = re.search(r"^setuptools==([\d.]+) \\$", lock, re.MULTILINE)
    assert pinned, "setuptools is not pinned in requirements.lock"
    from packaging.requirements import Requirement

    for req in map(Requirement, build["requires"]):
        assert req.name == "setuptools" and req.specifier.contains(pinned.group(1)), req
    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                 "build", "dist", "data", "runs", "benchmarks",
                                                                 "sweeps-data", "node_modules", "site"))
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-c", "import sys, setuptools.build_meta as b; "
                           "print(b.build_editable(sys.argv[1]))", str(out)], cwd=project, capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(out.glob("sparse_sweeps-*.whl")), proc.stdout
