"""Sweeps as Ray Jobs: `sweeps submit`, `jobs`, `logs`, `stop`, through Ray's job submission API.

A submitted sweep's driver runs on the cluster's head as a Ray job (``sweeps run SPEC`` there), so
it outlives the shell that submitted it. Its runtime environment carries the project: the
`sparsity`, `sweeps` and `dashboards` packages of this checkout (``py_modules``) and a working
folder holding only the spec, written password-free (store passwords stay in the cluster's own
environment: ``$PGPASSWORD`` and the ``$SPARSE_SWEEPS_*`` variables set on its nodes, never in the
job's runtime environment, which the job API shows). The job is named ``sweeps-NAME``.

The entrypoint runs under the Python the head's Ray runs under, checks it has every package a sweep
needs first (`sweeps.run.headcheck`; `submit` waits for that step and shows its one line when it
fails), and runs from the head's home folder: a submitted sweep lands under ``--root``, else the
spec's ``stores.root``, else the head's ``$SPARSE_SWEEPS_ROOT``, else ``~/sweeps-data`` on the head
(`job_root`), never in Ray's temporary runtime-environment folder.

`stop` asks Ray to stop the job: its driver gets SIGTERM, shuts Ray's trials down, marks what was
running (`sweeps.run.service._stopped`) and exits; Ray waits up to `STOP_WAIT_S` for that before it
kills the driver. `sweeps resume NAME` (on the head, or submitted again) continues the sweep.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from sweeps.errors import UnknownSweepError, UserError

__all__ = ["JOB_PREFIX", "job_name", "job_root", "runtime_env", "entrypoint", "submit", "jobs", "logs", "stop"]

log = logging.getLogger(__name__)

JOB_PREFIX = "sweeps-"
STOP_WAIT_S = 120  # Ray's default is 3 s: too short to mark the stores
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
SPEC_FILE = "spec.yaml"
AGENT_WAIT_S = 90  # a freshly started head answers before its job agent does
HEAD_CHECK_WAIT_S = 120  # for the job's first step (the head's Python checked): its runtime env set up first


def job_name(sweep: str) -> str:
    return f"{JOB_PREFIX}{sweep}"


def _client(address: str | None) -> Any:
    from ray.job_submission import JobSubmissionClient

    where = address or "$RAY_API_SERVER_ADDRESS / $RAY_ADDRESS"
    try:
        return JobSubmissionClient(address)
    except Exception as e:  # connection refused, not a job server, no token for an authenticated one
        reason = " ".join(str(e).split())[:300]
        raise UserError(
            f"--address {where}: no Ray job server answers ({reason}); give the head's dashboard address, "
            f"e.g. http://127.0.0.1:8265 through a tunnel (cluster/README.md), with $RAY_AUTH_TOKEN set when "
            f"the cluster uses token auth"
        ) from None


def _packages() -> list[str]:
    import dashboards
    import sparsity
    import sweeps

    return [str(Path(m.__file__).parent) for m in (sparsity, sweeps, dashboards)]


def runtime_env(folder: Path) -> dict[str, Any]:
    """The job's runtime environment: this checkout's packages, the folder holding the spec, and
    settings for the driver that are no secret."""
    return {
        "working_dir": str(folder),
        "py_modules": _packages(),
        "env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": str(STOP_WAIT_S), "PYTHONUNBUFFERED": "1"},
    }


def job_root(root: str | None, spec: Any) -> str | None:
    """Where a submitted sweep's stores go on the head, under the one rule
    (`sweeps.stores.paths.choose_root`, evaluated on the head): ``--root``, else the spec's own
    ``stores.root``; None leaves it to the head's $SPARSE_SWEEPS_ROOT, else ~/sweeps-data there.
    A relative folder is refused: the job runs in Ray's temporary runtime-environment folder, which
    Ray deletes, so what the sweep keeps would be lost."""
    import os

    from sweeps.stores.paths import DEFAULT_ROOT

    spec_root = spec.stores.root if spec.stores.root != DEFAULT_ROOT else None
    chosen, where = (root, "--root") if root else (spec_root, "stores.root")
    if chosen and not (os.path.isabs(chosen) or chosen == "~" or chosen.startswith("~/")):
        raise UserError(f"{where} {chosen}: a relative folder would be under the job's temporary folder on the head, "
                        f"which Ray deletes; give an absolute path on the head (e.g. /home/ray/{DEFAULT_ROOT}), or "
                        f"leave it out for the head's $SPARSE_SWEEPS_ROOT (else ~/{DEFAULT_ROOT} there)")
    return chosen or None


def entrypoint(root: str | None) -> str:
    """The job's command line, a shell's: it picks the Python the head's Ray runs under
    (`ray_private.ray_python_shell`; ``python`` on the PATH when it cannot tell), checks that Python
    has what a sweep needs (`sweeps.run.headcheck`: one line and exit 2 when not), then runs the
    sweep from the head's home folder, so that no relative path lands in the runtime
    environment's folder. ``root`` (absolute, or ``~/...`` for the head's home) is quoted."""
    import shlex

    from sweeps.run.ray_private import ray_python_shell

    if root is None:
        where = ""
    elif root == "~" or root.startswith("~/"):
        where = ' --root "$HOME"' + (shlex.quote(root[1:]) if len(root) > 1 else "")
    else:
        where = f" --root {shlex.quote(root)}"
    return (f'{ray_python_shell()}"$PY" -m sweeps.run.headcheck || exit 2; SPEC="$PWD/{SPEC_FILE}"; '
            f'cd "$HOME" && exec "$PY" -m sweeps.cli run "$SPEC"{where}')


def submit(spec: Any, address: str | None, root: str | None = None, wait_s: float = HEAD_CHECK_WAIT_S) -> str:
    """Submit ``spec`` (a `SweepSpec`, its stores password-free) as job ``sweeps-NAME``; returns its id
    once the job's first step found the head's Python ready (a `UserError` with its one line when
    not; after ``wait_s`` it returns anyway, the job going on)."""
    import yaml

    chosen = job_root(root, spec)  # refused before anything is sent
    client = _client(address)
    name = job_name(spec.name)
    existing = {j.submission_id for j in client.list_jobs()}
    if name in existing:
        raise UserError(f"a job named {name} already exists on that cluster; `sweeps logs {spec.name}` shows it, "
                        f"`sweeps resume {spec.name}` on the head continues a stopped sweep, or give the spec "
                        f"another name (--name)")
    doc = spec.to_dict()
    doc.get("stores", {}).pop("root", None)  # the job's --root (or the head's environment) decides
    folder = Path(tempfile.mkdtemp(prefix="sweeps-submit-"))
    try:
        (folder / SPEC_FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
        import time

        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                client.submit_job(entrypoint=entrypoint(chosen), submission_id=name,
                                  runtime_env=runtime_env(folder), metadata={"sweep": spec.name})
                break
            except (RuntimeError, OSError) as e:  # a head just started: its job agent is not up yet
                # (requests' ConnectionError is an OSError: the server dropped a request it could not place)
                if not ("No available agent" in str(e) or isinstance(e, OSError)) or time.monotonic() > deadline:
                    raise
                if name in {j.submission_id for j in client.list_jobs()}:
                    break  # the dropped request did create it
                log.info("the head's job agent is not ready yet; retrying")
                time.sleep(2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # uploaded by submit_job
    _wait_head_check(client, name, wait_s)
    return name


def _wait_head_check(client: Any, name: str, wait_s: float) -> None:
    """Wait for the job's first step (`sweeps.run.headcheck`): return once it passed; a job that
    failed before it passed raises its one line (`UserError`)."""
    import time

    from sweeps.run.headcheck import READY

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        text = client.get_job_logs(name) or ""
        if READY in text:
            return
        state = str(client.get_job_status(name).value)
        if state in TERMINAL:
            text = client.get_job_logs(name) or ""
            if READY in text:
                return
            errors = [line[len("error: "):] for line in text.splitlines() if line.startswith("error: ")]
            tail = " ".join(text.strip().splitlines()[-1:])[:300]
            raise UserError(errors[-1] if errors else
                            f"the job {name} {state.lower()} before the sweep started ({tail}); "
                            f"`sweeps logs {name[len(JOB_PREFIX):]}` shows its output")
        time.sleep(1)
    log.warning("the job %s has not started its sweep after %.0fs (runtime environment still being set up?); "
                "it goes on: `sweeps logs` follows it", name, wait_s)


def _known(client: Any, sweep: str) -> str:
    name = job_name(sweep)
    try:
        client.get_job_info(name)
    except Exception:
        raise UnknownSweepError(f"no sweep job {name} on that cluster; `sweeps jobs` lists them") from None
    return name


def jobs(address: str | None) -> list[dict[str, Any]]:
    """The cluster's sweep jobs, oldest first: name, status, start and end (ms since the epoch)."""
    client = _client(address)
    rows = [{"sweep": j.submission_id[len(JOB_PREFIX):], "status": str(j.status.value), "start": j.start_time,
             "end": j.end_time, "message": j.message or ""}
            for j in client.list_jobs() if (j.submission_id or "").startswith(JOB_PREFIX)]
    return sorted(rows, key=lambda r: r["start"] or 0)


def logs(address: str | None, sweep: str, follow: bool = False, write: Callable[[str], None] = print) -> str:
    """The job's output (`write` gets it piece by piece with ``follow``); returns its final status."""
    client = _client(address)
    name = _known(client, sweep)
    if not follow:
        write(client.get_job_logs(name))
        return str(client.get_job_status(name).value)
    import asyncio

    async def tail() -> None:
        async for piece in client.tail_job_logs(name):
            write(piece)

    asyncio.run(tail())  # ends when the job does
    return str(client.get_job_status(name).value)


def stop(address: str | None, sweep: str, wait_s: float = STOP_WAIT_S + 30) -> str:
    """Ask Ray to stop the job and wait until it has: its final status."""
    import time

    client = _client(address)
    name = _known(client, sweep)
    client.stop_job(name)
    deadline = time.monotonic() + wait_s
    state = str(client.get_job_status(name).value)
    while state not in TERMINAL and time.monotonic() < deadline:
        time.sleep(1)
        state = str(client.get_job_status(name).value)
    return state
