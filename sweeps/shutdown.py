"""What a command starts, it stops: SIGTERM and SIGHUP end a `sweeps` command as Ctrl-C does.

The CLI runs every command inside `stop_on_signals`: SIGINT, SIGTERM and SIGHUP (a closed terminal,
a `kill`, a stopped container) raise `KeyboardInterrupt` in the main thread, so the command's own
``finally`` blocks stop what it started (a local Ray through ``ray.shutdown``, the dashboard's
`mlflow server` through its process group). A signal arriving while that clean-up runs is ignored:
the clean-up is bounded by its own timeouts and must not be cut short.

`ray.init` replaces the SIGTERM handler with its own (``sys.exit``); `rearm` puts ours back.
Whatever way the command ends, any process still below it (a local Ray's agents outlive its
``ray.shutdown`` by a while; a signal during ``ray.init`` leaves its servers) is then stopped:
SIGTERM, and SIGKILL for what is left after a grace period. A command starts no process meant to
outlive it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Iterator

__all__ = ["SIGNALS", "stop_on_signals", "rearm", "descendants", "alive", "stop_processes"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_active: list["_Handler"] = []


class _Handler:
    def __init__(self) -> None:
        self.fired: str | None = None
        self.seen: dict[int, str] = {}  # the processes below this one when the signal came

    def __call__(self, signum: int, frame: object) -> None:
        if self.fired is not None:
            return  # clean-up under way: let it finish
        self.fired = signal.Signals(signum).name
        # Ray's workers are re-parented once its raylet stops: remember them now, to stop them later.
        self.seen = {p: _started(p) for p in descendants(os.getpid())}
        raise KeyboardInterrupt(self.fired)


@contextlib.contextmanager
def stop_on_signals(grace: float = 5.0) -> Iterator[None]:
    """For the duration: SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt once (main thread only).
    At the end, every process still below this one is stopped (`stop_processes`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler()
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    _active.append(handler)
    try:
        yield
    finally:
        handler.fired = handler.fired or "done"  # from here on a signal does not cut the clean-up short
        still = {p for p, started in handler.seen.items() if started and _started(p) == started}
        stop_processes(descendants(os.getpid()) | still, grace=grace)
        _active.remove(handler)
        for s, h in previous.items():
            signal.signal(s, h)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _started(pid: int) -> str:
    """The process's start time (a pid reused by a later process has another), "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (not exited, not zombies)."""
    out = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.add(p)
    return out


def _signal(pids: set[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, sig)


def stop_processes(pids: set[int], grace: float = 5.0) -> None:
    """SIGTERM to ``pids``, then SIGKILL to those still running after ``grace`` seconds."""
    if not alive(pids):
        return
    _signal(alive(pids), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(alive(pids), signal.SIGKILL)


def rearm() -> None:
    """Reinstall the active handler for every signal (after a library replaced one, as `ray.init` does)."""
    if _active and threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, _active[-1])
