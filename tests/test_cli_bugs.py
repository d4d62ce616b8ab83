"""Bugs of issue 11, each with the test that failed before its fix."""

from __future__ import annotations

from types import SimpleNamespace

from sweeps.cli.progress import progress_counts, progress_line


def _trial(number, state, values=None, **attrs):
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state), values=values, user_attrs=attrs)


def test_an_orphaned_trial_is_not_shown_as_running_after_a_resume():
    # All 8 samples finished; the 9th Optuna trial was asked by the killed driver and never ran.
    trials = [_trial(i, "COMPLETE", [0.9, 100.0 + i]) for i in range(8)] + [_trial(8, "RUNNING")]
    counts = progress_counts(trials, num_samples=8, max_concurrent=2)
    assert (counts.done, counts.running, counts.orphaned) == (8, 0, 1)
    line = progress_line("s", 8, counts, trials)
    assert "8/8 done, 0 running" in line and "1 orphaned" in line
    # Mid-run: two live trials (max_concurrent 2) and an orphan; reconciled orphans are not failures.
    mid = [_trial(0, "COMPLETE", [0.9, 1.0]), _trial(1, "FAIL", fail_reason="orphaned: the driver stopped"),
           *[_trial(i, "RUNNING") for i in (2, 3, 4)]]
    c = progress_counts(mid, num_samples=8, max_concurrent=2)
    assert (c.done, c.running, c.failed, c.orphaned) == (1, 2, 0, 2)


def test_unreachable_tracking_server_is_one_line_not_a_traceback(monkeypatch, capsys):
    """Wherever MLflow is first reached (resume, reconcile, export, dashboard), an unreachable
    server is a user error: one line, exit 2 (it was a ConnectionError the CLI let through)."""
    from sparsity.errors import UserError
    from sweeps.errors import TrackingUnreachableError
    from sweeps.cli import commands as cli
    from sweeps.tracking import runs as tracking

    def reach(args):
        tracking.check_reachable("http://127.0.0.1:9", timeout=2)

    monkeypatch.setitem(cli.RUNS, "status", reach)
    assert cli.main(["status", "any"]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MLflow tracking server http://127.0.0.1:9 is unreachable")
    assert issubclass(TrackingUnreachableError, UserError)
    assert issubclass(TrackingUnreachableError, ConnectionError)  # callers catching that keep working


class _Page(list):
    token = None


class _PagedClient:
    """MLflow's search_runs: at most ``max_results`` runs a call, and a token for the next page."""

    def __init__(self, n: int) -> None:
        self.runs = [f"run{i}" for i in range(n)]
        self.calls = 0

    def search_runs(self, experiment_ids, filter_string="", max_results=1000, page_token=None):
        self.calls += 1
        start = int(page_token or 0)
        page = _Page(self.runs[start:start + max_results])
        page.token = str(start + max_results) if start + max_results < len(self.runs) else None
        return page


def test_find_runs_reads_every_page():
    from sweeps.tracking import runs as tracking

    client = _PagedClient(2500)
    runs = tracking.find_runs(client, "1", {tracking.TAG_SWEEP: "s", tracking.TAG_KIND: "trial"})
    assert runs == client.runs and client.calls == 3


def test_snr_noise_curves_log_without_overflow():
    from sparsity.facts import PAPER_LEVELS, SNR_LEVELS
    from sparsity.noise import NoiseCurve
    from sweeps.run.trainable import noise_series

    snr = NoiseCurve("audio-snr", SNR_LEVELS, [0.5] * len(SNR_LEVELS), [5] * len(SNR_LEVELS), 10)
    paper = NoiseCurve("mnist-pixels", PAPER_LEVELS, [0.5] * 11, [5] * 11, 10)
    points = noise_series([("val", snr), ("test", paper)])  # raised OverflowError (inf * 100)
    snr_steps = [s for k, _, s in points if k == "val_noise_accuracy"]
    assert snr_steps == list(range(len(SNR_LEVELS)))
    assert [s for k, _, s in points if k == "test_noise_accuracy"] == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert all(isinstance(s, int) for _, _, s in points)
