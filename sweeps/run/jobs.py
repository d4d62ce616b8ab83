"""Sweeps as Ray Jobs: `sweeps submit`, `jobs`, `logs`, `stop`, through Ray's job submission API.

A submitted sweep's driver runs on the cluster's head as a Ray job (``sweeps run SPEC`` there), so
it outlives the shell that submitted it. Its runtime environment carries the project: the
`sparsity`, `sweeps` and `dashboards` packages of this checkout (``py_modules``) and a working
folder holding only the spec, written password-free (store passwords stay in the cluster's own
environment: ``$PGPASSWORD`` and the ``$SPARSE_SWEEPS_*`` variables set on its nodes, never in the
job's runtime environment, which the job API shows). The job is named ``sweeps-NAME``.

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

__all__ = ["JOB_PREFIX", "job_name", "runtime_env", "submit", "jobs", "logs", "stop"]

log = logging.getLogger(__name__)

JOB_PREFIX = "sweeps-"
STOP_WAIT_S = 120  # Ray's default is 3 s: too short to mark the stores
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
SPEC_FILE = "spec.yaml"
AGENT_WAIT_S = 90  # a freshly started head answers before its job agent does


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


def entrypoint(root: str | None) -> str:
    """The job's command line (Ray runs it through a shell: ``--root`` is quoted)."""
    import shlex

    cmd = f"python -m sweeps.cli run {SPEC_FILE}"
    return cmd + (f" --root {shlex.quote(root)}" if root else "")


def submit(spec: Any, address: str | None, root: str | None = None) -> str:
    """Submit ``spec`` (a `SweepSpec`, its stores password-free) as job ``sweeps-NAME``; returns its id."""
    import yaml

    client = _client(address)
    name = job_name(spec.name)
    existing = {j.submission_id for j in client.list_jobs()}
    if name in existing:
        raise UserError(f"a job named {name} already exists on that cluster; `sweeps logs {spec.name}` shows it, "
                        f"`sweeps resume {spec.name}` on the head continues a stopped sweep, or give the spec "
                        f"another name (--name)")
    doc = spec.to_dict()
    if doc.get("stores", {}).get("root") == "sweeps-data" and root is None:
        doc["stores"].pop("root")  # the head's $SPARSE_SWEEPS_ROOT (or its default) decides
    folder = Path(tempfile.mkdtemp(prefix="sweeps-submit-"))
    try:
        (folder / SPEC_FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
        import time

        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                return client.submit_job(entrypoint=entrypoint(root), submission_id=name,
                                         runtime_env=runtime_env(folder), metadata={"sweep": spec.name})
            except (RuntimeError, OSError) as e:  # a head just started: its job agent is not up yet
                # (requests' ConnectionError is an OSError: the server dropped a request it could not place)
                if not ("No available agent" in str(e) or isinstance(e, OSError)) or time.monotonic() > deadline:
                    raise
                if name in {j.submission_id for j in client.list_jobs()}:
                    return name  # the dropped request did create it
                log.info("the head's job agent is not ready yet; retrying")
                time.sleep(2)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # uploaded by submit_job


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
