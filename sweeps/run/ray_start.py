"""Ray start-up for a sweep, once per command: a local Ray on 127.0.0.1 only, or a cluster that is
checked against the spec (stores every node reaches, GPUs) before anything is written."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from sweeps import shutdown
from sweeps.errors import SpecError, UserError
from sweeps.run import ray_private
from sweeps.spec import SweepSpec

__all__ = ["start_ray", "growth", "trial_slots", "concurrency", "LOOPBACK", "WORKER_PRELOAD"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# A local Ray starts one idle worker per CPU with `ray.init`, and Tune's trial actors take those
# workers: they import what a trial needs as they start (sweeps.run.worker), while the driver sets up
# the sweep. Not for cluster nodes: there a fresh worker is not ready until its imports end, and in
# the two-node test Ray stopped such workers while the head's actor took every trial (cluster/).
WORKER_PRELOAD = ("sweeps.run.worker",)

# The local Ray never kills idle workers. Its raylet kills (every 200 ms) the idle workers that have
# been idle over 1 s beyond as many as there are *available* CPUs, and Tune reserves a trial's CPU (a
# placement group) before it asks for the trial's actor: each reservation made a prestarted worker
# still waiting for its actor surplus, Ray killed it and started a fresh worker for the actor, which
# paid the imports again (Ray 2.60, raylet debug log: "Number of idle workers 2 is larger than the
# number of desired workers 1 killing idle worker"; worker log: "idle for a long time"). It hit
# whenever the workers had been idle over 1 s when Tune started (a sweep's set-up takes longer), and
# on a busy machine even in the bare probe of tests/test_worker_start.py. The cost: idle workers
# stay until the sweep ends (with resources.cpus > 1 some prestarted ones are never used).
_LOCAL_RAY_CONFIG: dict[str, Any] = {
    "preload_python_modules": list(WORKER_PRELOAD),
    "kill_idle_workers_interval_ms": 0,
}


def start_ray(address: str | None, spec: SweepSpec) -> None:
    """Connect to the cluster at ``address`` (or $RAY_ADDRESS), else start a local Ray sized for
    the spec's concurrency. Refuses (SpecError, Ray shut down) a spec the cluster cannot run."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) connected already: its Ray is used
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        shutdown.rearm()  # ray.init took SIGTERM over: a signal stops the command as Ctrl-C does
        try:
            gpus = _check_cluster(address, spec)
        except SpecError:
            ray.shutdown()
            raise
    else:
        _start_local(num_cpus=_local_cpus(spec))
        gpus = ray.cluster_resources().get("GPU", 0)
    if spec.resources.gpus > 0 and gpus == 0:
        ray.shutdown()
        raise SpecError(
            f"resources.gpus: {spec.resources.gpus} GPU per trial requested, but the Ray cluster has no GPU; "
            f"set resources.gpus: 0 or connect to a GPU cluster with --address"
        )


def growth(address: str, nodes: list[dict]) -> str | None:
    """Why the connected cluster has, or can get, more than one node (its trials then run beyond
    this machine), None when it is one node that cannot grow: several nodes alive, an autoscaler,
    or a head with no CPU (it runs no trial itself: its workers are elsewhere, or are to come)."""
    if len(nodes) > 1:
        return f"the cluster at {address} has {len(nodes)} nodes"
    if ray_private.has_autoscaler():
        return f"the cluster at {address} has an autoscaler (it adds nodes)"
    if nodes and not nodes[0].get("Resources", {}).get("CPU", 0):
        return f"the cluster at {address} has a head with 0 CPUs (its trials run on other nodes)"
    return None


def _check_cluster(address: str, spec: SweepSpec) -> float:
    """The connected cluster's GPUs (with what its autoscaler can add); refuses stores that only this
    machine reaches when the cluster has, or can get, more than one node (`growth`)."""
    import ray

    from sweeps.stores.preflight import shared_store_problems

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    why = growth(address, nodes)
    if why is not None:
        problems = shared_store_problems(spec.stores, why)
        if problems:
            raise SpecError("; ".join(problems))
    gpus = sum(n.get("Resources", {}).get("GPU", 0) for n in nodes)
    if spec.resources.gpus > 0 and gpus == 0:
        # GPU workers may autoscale from zero: count what the autoscaler can add.
        gpus = ray_private.autoscaling_gpus()
        if gpus is None:  # no autoscaler config to ask: do not refuse what may come
            log.warning("resources.gpus: no GPU node is up in the cluster at %s; trials wait for one", address)
            gpus = spec.resources.gpus
    return gpus


def trial_slots(spec: SweepSpec) -> int:
    """How many trials the connected Ray can run at once, given each trial's resources: its GPUs
    when trials take GPUs, else its CPUs; on a cluster with an autoscaler, what it can bring up
    counts too (GPU workers that autoscale from zero included). At least 1."""
    import ray

    up = ray.cluster_resources()
    most = ray_private.autoscaling_resources() or {}

    def total(key: str) -> float:
        return max(float(up.get(key, 0)), float(most.get(key, 0)))

    if spec.resources.gpus > 0:
        return max(1, int(total("GPU") // spec.resources.gpus + 1e-9))
    return max(1, int(total("CPU") // spec.resources.cpus + 1e-9))


def concurrency(spec: SweepSpec) -> int:
    """Trials at once: ``budget.max_concurrent``, or with ``auto`` what the Ray it runs on fits."""
    return spec.budget.concurrency(trial_slots(spec) if spec.budget.is_auto else 0)


def _local_cpus(spec: SweepSpec) -> int:
    """The local Ray's CPUs: this machine's with ``max_concurrent: auto``, else the fixed number of
    trials times each trial's CPUs."""
    per_trial = max(1, int(spec.resources.cpus))
    if spec.budget.is_auto:
        return max(os.cpu_count() or 1, per_trial)
    return max(spec.budget.max_concurrent, 1) * per_trial


def _start_local(num_cpus: int) -> None:
    """Start a local Ray whose every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only
    (`ray_private.loopback_only`). Ray's token authentication (on by default) stays as it is.
    Refuses to run if Ray did not take the loopback address (nothing open by default)."""
    import ray

    with ray_private.loopback_only(), _private_files():
        for attempt in (1, 2):
            try:
                # address="local": always a new Ray of its own, whatever a `ray_current_cluster` file
                # (left by a `ray start`, live or not) or a head running on this machine say.
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False,
                         _node_ip_address=LOOPBACK, _system_config=_local_system_config())
                break
            except Exception as e:
                # Ray gives a starting node 30 s to register (fixed); on a busy machine its raylet, waiting
                # for its agents, can miss that once. A second start finds their imports cached.
                if attempt == 2 or "timed out during startup" not in str(e):
                    raise
                log.warning("the local Ray did not start in time (a busy machine?); starting it again")
                ray.shutdown()
    shutdown.rearm()  # ray.init took SIGTERM over: a signal stops the command as Ctrl-C does
    node_ip = ray.util.get_node_ip_address()
    if node_ip != LOOPBACK:
        ray.shutdown()
        raise RuntimeError(f"the local Ray took node address {node_ip}, not {LOOPBACK}: it would listen beyond "
                           f"this machine; refusing to run (this Ray version binds differently: report it)")


def ray_token_file() -> Path:
    """Where Ray keeps the token a local Ray generates (token auth on by default): ~/.ray/auth_token."""
    return Path.home() / ".ray" / "auth_token"


# Ray's Unix sockets live at TEMP/ray/session_<date>_<time>_<us>_<pid>/sockets/plasma_store, and a
# socket path holds at most 107 bytes on Linux: what is left for TEMP (a 7-digit pid, some margin).
SOCKET_PATH_MAX = 107
_SOCKET_TAIL = len("/ray/session_2026-01-01_00-00-00_000000_1234567/sockets/plasma_store")


def ray_temp_folder() -> Path:
    """The folder this user's local Rays keep their sessions in: ``sweeps-ray-UID`` under
    $RAY_TMPDIR (else the system's temp folder), this user's alone (0700). Ray makes its own
    ``ray`` folder and sessions world-writable (0777) inside; this folder keeps others out of them.
    Refuses (one line) a path another user holds or a link, and one too long for Ray's sockets."""
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    name = f"sweeps-ray-{os.getuid()}"
    folder = Path(base) if Path(base).name == name else Path(base) / name  # set by an earlier start
    if len(str(folder)) + _SOCKET_TAIL > SOCKET_PATH_MAX:
        raise UserError(f"$RAY_TMPDIR {base}: too long for Ray's socket paths ({SOCKET_PATH_MAX} bytes at most); "
                        f"set RAY_TMPDIR to a short folder such as /tmp")
    _private_folder(folder, "$RAY_TMPDIR")
    return folder


def _private_folder(folder: Path, setting: str) -> None:
    """``folder`` made (0700; its missing parents too, as Ray would make them), or checked to be
    this user's own folder and made 0700."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise UserError(f"{setting}: cannot make {folder} ({e.strerror}); set it to a writable folder") from None
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise UserError(f"{setting}: {folder} is a link, a file, or another user's folder; remove it or set "
                        f"{setting} to a folder of your own")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(folder, 0o700)


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    """While a local Ray starts: its token and session files are its owner's alone from the first
    byte. ~/.ray (where Ray writes its token) is made 0700 first, the sessions go under
    `ray_temp_folder` ($RAY_TMPDIR, which Ray and its processes read), and the umask is 077, so the
    token file and whatever Ray's processes write are created private; the token file is then
    checked to be 0600 (`_token_protected`)."""
    _private_folder(ray_token_file().parent, "~/.ray")
    os.environ["RAY_TMPDIR"] = str(ray_temp_folder())
    umask = os.umask(0o077)
    try:
        with _token_protected():
            yield
    finally:
        os.umask(umask)


@contextlib.contextmanager
def _token_protected() -> Iterator[None]:
    """Once the local Ray started (or failed to), its token file is readable by its owner alone: Ray
    writes it with the process's umask, and the token lets anyone who reads it run code through
    this user's Ray."""
    try:
        yield
    finally:
        path = ray_token_file()
        try:
            if path.is_file() and path.stat().st_uid == os.getuid():
                os.chmod(path, 0o600)
                os.chmod(path.parent, 0o700)
        except OSError as e:  # a read-only home: say so, never fail the sweep on it
            log.warning("could not make %s readable by its owner alone (%s); run chmod 600 on it", path, e)


def _local_system_config() -> dict[str, Any]:
    """Ray settings for the local Ray; one set in the environment (RAY_<name>) is left to it."""
    return {k: v for k, v in _LOCAL_RAY_CONFIG.items() if not os.environ.get(f"RAY_{k}")}
