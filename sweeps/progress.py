"""Live sweep progress for the CLI: polls the Optuna study (the store every trial reports to)."""

from __future__ import annotations

import threading
from typing import Any

from optuna.trial import TrialState

from .console import console


class StudyProgress:
    """Prints a line whenever the counts change: trials done, running, failed, best so far."""

    def __init__(self, interval: float = 3.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, spec: Any) -> None:
        from . import search

        self._spec = spec
        self._url = spec.stores.resolved().optuna_storage
        self._search = search
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def detach(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._poll(force=True)

    def _loop(self) -> None:
        self._last = None
        while not self._stop.wait(self.interval):
            try:
                self._poll()
            except Exception:  # a busy SQLite file: try again next tick
                pass

    def _poll(self, force: bool = False) -> None:
        study = self._search.load_study(self._spec.name, self._url)
        if study is None:
            return
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        counts = (len(done), sum(t.state == TrialState.RUNNING for t in trials),
                  sum(t.state == TrialState.FAIL for t in trials), sum(t.state == TrialState.PRUNED for t in trials))
        if counts == getattr(self, "_last", None) and not force:
            return
        self._last = counts
        best = ""
        if done:
            acc = max(done, key=lambda t: t.values[0])
            noise = max(done, key=lambda t: t.values[1])
            best = (f"; best val acc {acc.values[0]:.4f} (#{acc.number}), "
                    f"best noise score {noise.values[1]:,.0f} (#{noise.number})")
        console.print(
            f"[{self._spec.name}] {counts[0]}/{self._spec.num_samples} done, {counts[1]} running, "
            f"{counts[2]} failed, {counts[3]} stopped early{best}"
        )
