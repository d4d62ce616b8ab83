"""Live sweep progress for the CLI: polls the Optuna study (the store every trial reports to)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from sweeps.cli.console import console
from sweeps.search.record import FAIL_REASON, REPLICATE_OF, is_orphaned, is_replicate



@dataclass(frozen=True)
class ProgressCounts:
    done: int
    running: int
    failed: int
    pruned: int
    orphaned: int  # lost by a stopped driver: never to finish (reconciled to FAIL when Ray ends)


def progress_counts(trials: Sequence[Any], num_samples: int, max_concurrent: int) -> ProgressCounts:
    """What a sweep's trials say about its progress. Ray runs ``num_samples`` trials; a trial Optuna
    holds as RUNNING beyond what can still be running (the samples not yet ended, at most
    ``max_concurrent``) was lost by an earlier, stopped driver and is counted as orphaned, not
    running. Trials already reconciled as orphaned count as orphaned, not failed."""
    states = [getattr(t.state, "name", str(t.state)) for t in trials]
    orphans = sum(is_orphaned(t) for t in trials)
    done, failed, pruned = states.count("COMPLETE"), states.count("FAIL") - orphans, states.count("PRUNED")
    pending = states.count("RUNNING") + states.count("WAITING")
    can_run = max(0, min(max_concurrent, num_samples - done - failed - pruned))
    running = min(pending, can_run)
    return ProgressCounts(done, running, failed, pruned, orphans + pending - running)


class StudyProgress:
    """Prints a line whenever the counts change: trials done, running, failed, best so far."""

    def __init__(self, interval: float = 3.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, spec: Any) -> None:
        """The sweep passed its checks and starts: say what it will run."""
        confirm = f" (+ up to {spec.total_trials - spec.budget.trials - len(spec.baselines)} seed replicates)" \
            if spec.confirm else ""
        at_once = "as many as the cluster fits" if spec.budget.is_auto else spec.budget.max_concurrent
        console.print(f"sweep [bold]{spec.name}[/]: {spec.budget.trials} searched trials + {len(spec.baselines)} "
                      f"baselines{confirm}, {spec.epochs} epochs each, {at_once} at a time")

    def attach(self, spec: Any) -> None:
        self._spec = spec.resolved()  # polled every few seconds: its stores resolved once
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def detach(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._poll(force=True)

    def _loop(self) -> None:
        self._last = None
        wait = self.interval
        while not self._stop.wait(wait):
            t0 = time.perf_counter()
            try:
                self._poll()
            except Exception:  # a busy SQLite file: try again next tick
                pass
            # A poll reads every trial: at most a twentieth of the driver's time goes to it, however
            # large the sweep grows (a line every 3 s at first, less often past a few thousand trials).
            wait = max(self.interval, 19 * (time.perf_counter() - t0))

    def _poll(self, force: bool = False) -> None:
        from sweeps.results.read import sweep_trials

        # States, values and fail reasons only: reading every trial in full through Optuna, every
        # few seconds, cost the driver about a CPU core at 2,000 trials.
        trials = sweep_trials(self._spec, attrs=(FAIL_REASON, REPLICATE_OF), params=False)
        if trials is None:
            return
        counts = progress_counts(trials, self._spec.total_trials, self._spec.budget.concurrency(self._spec.total_trials))
        if counts == getattr(self, "_last", None) and not force:
            return
        self._last = counts
        console.print(progress_line(self._spec.name, self._spec.total_trials, counts, trials))


def progress_line(name: str, num_samples: int, counts: ProgressCounts, trials: Sequence[Any]) -> str:
    """One progress line: counts, and the best of each objective so far."""
    done = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE" and t.values]
    best = ""
    if done:
        acc = max(done, key=lambda t: t.values[0])
        noise = max(done, key=lambda t: t.values[1])
        best = (f"; best val acc {acc.values[0]:.4f} (#{acc.number}), "
                f"best noise score {noise.values[1]:,.0f} (#{noise.number})")
    orphaned = f", {counts.orphaned} orphaned by a stopped driver" if counts.orphaned else ""
    replicates = sum(is_replicate(t) for t in done)
    confirming = f" ({replicates} of them seed replicates)" if replicates else ""
    return (
        f"[{name}] {counts.done}/{num_samples} done{confirming}, {counts.running} running, "
        f"{counts.failed} failed, {counts.pruned} stopped early{orphaned}{best}"
    )
