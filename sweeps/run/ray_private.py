"""The one home of Ray's private internals the service relies on.

Each name here reaches into Ray's private parts because no public API gives the same thing;
`tests/test_ray_private.py` fails loudly when Ray changes one of them. (Optuna's live in
`sweeps.search.optuna_private`.)

* `loopback_only`: Ray turns a node IP of 127.0.0.1 into the machine's outward address when it may
  form a cluster (Linux), and its gRPC servers then listen on every interface; with
  ``ray._private.ray_constants.ENABLE_RAY_CLUSTER`` off while the local Ray starts, it keeps
  127.0.0.1 and binds there. `ray.init(_node_ip_address=...)` alone is not enough.
* `autoscaling_resources` / `autoscaling_gpus` / `has_autoscaler`: what a cluster's autoscaler can
  bring up (its node groups' maximum), and whether it has one, from ``ray._private.state.state``;
  Ray's public `cluster_resources` counts only nodes that are up.
* `ray_python_shell`: the head's Ray interpreter, read in a job's entrypoint from the raylet's
  command line (``--python_worker_command``).
* `actors_on_prestarted_workers`: Tune gives every trial actor ``env_vars={"PL_DISABLE_FORK": "1"}``
  (``ray.tune.execution.class_cache.DEFAULT_ENV_VARS``, a PyTorch Lightning setting meaningless
  here). A worker only hosts an actor whose runtime environment hashes like its own, so that alone
  makes Ray start a fresh worker, and pay its imports, for each actor. Without it the actors take
  the workers Ray prestarted (and preloaded, `sweeps.run.ray_start.WORKER_PRELOAD`).

Importing this module imports no Ray.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["loopback_only", "autoscaling_resources", "autoscaling_gpus", "has_autoscaler", "ray_python_shell",
           "actors_on_prestarted_workers"]


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While it is open, a starting local Ray keeps a 127.0.0.1 node address (see the module)."""
    from ray._private import ray_constants

    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved is not None:
            ray_constants.ENABLE_RAY_CLUSTER = saved


def autoscaling_resources() -> dict[str, float] | None:
    """The most of each resource (CPU, GPU, ...) the connected cluster's autoscaler can bring up, over
    its node types' maximum counts; None when the cluster has no autoscaler (a cluster of
    `ray start` nodes) or Ray's private state API moved (unknown rather than wrong)."""
    try:
        from ray._private.state import state

        limits = state.get_max_resources_from_cluster_config()
    except Exception:
        return None
    return None if limits is None else {k: float(v) for k, v in limits.items()}


def autoscaling_gpus() -> float | None:
    """GPUs the connected cluster's autoscaler can bring up, None if unknown (see `autoscaling_resources`)."""
    limits = autoscaling_resources()
    return None if limits is None else float(limits.get("GPU", 0))


def has_autoscaler() -> bool:
    """Whether the connected cluster has an autoscaler (a cluster config in its GCS): it can grow."""
    try:
        from ray._private.state import state

        return state.get_cluster_config() is not None
    except Exception:
        return False


def ray_python_shell() -> str:
    """A shell snippet, for a Ray job's entrypoint, that sets ``$PY`` to the Python the head's Ray
    runs its workers under (``python`` on the PATH when it cannot tell). The entrypoint's shell is
    a child of the job's supervisor, a worker of the head's raylet; the raylet's command line
    holds ``--python_worker_command=PYTHON ...`` (Ray's ``services.start_raylet``), where PYTHON is
    the interpreter of whoever ran ``ray start``. No public API names it. Linux (/proc) only."""
    return ("PY=python; G=$(sed -n 's/^[0-9]* (.*) [A-Za-z] \\([0-9]*\\) .*/\\1/p' /proc/$PPID/stat 2>/dev/null); "
            "W=$(tr '\\0' '\\n' < /proc/$G/cmdline 2>/dev/null | sed -n 's/^--python_worker_command=\\([^ ]*\\).*/\\1/p'); "
            "[ -x \"$W\" ] && PY=$W; ")


@contextlib.contextmanager
def actors_on_prestarted_workers() -> Iterator[None]:
    """While it is open, Tune's trial actors carry no ``PL_DISABLE_FORK`` (see the module); Ray's own
    list of variables to forward is otherwise kept. A Ray without that list: nothing changes."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:
        class_cache = None
    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if not isinstance(defaults, dict) or "PL_DISABLE_FORK" not in defaults:
        yield
        return
    value = defaults.pop("PL_DISABLE_FORK")
    try:
        yield
    finally:
        defaults["PL_DISABLE_FORK"] = value
