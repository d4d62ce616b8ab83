"""benchmarks/bench_gpu.py on a machine without CUDA: its CPU half runs, records that CUDA was
absent, and its comparison helpers report differences as computed by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from bench_scripts import load

REPO = Path(__file__).resolve().parents[1]


def test_compare_reports_relative_differences_and_winner_agreement() -> None:
    bench = load("bench_gpu")
    cpu = {"grad/w": torch.tensor([1.0, -4.0]), "loss": torch.tensor(2.0), "winners/k": torch.tensor([True, False, True, True])}
    other = {"grad/w": torch.tensor([1.5, -4.0]), "loss": torch.tensor(2.0), "winners/k": torch.tensor([True, True, True, False])}
    diff = bench._compare(cpu, other)
    assert diff["max_relative_difference"] == {"grad": 0.5 / 4.0, "loss": 0.0}
    assert diff["winner_agreement"] == 2 / 4
    assert bench._bit_identical(cpu, {k: v.clone() for k, v in cpu.items()})
    assert not bench._bit_identical(cpu, other)


def test_cpu_half_runs_and_says_cuda_was_absent(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}  # as on a machine without CUDA
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--sections", "parity", "concurrency",
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["device"] == "cpu" and record["cuda"].startswith("absent")
    assert record["sections"]["env"]["result"]["cuda_available"] is False
    assert record["sections"]["concurrency"] == {"skipped": "CUDA absent"}
    parity = record["sections"]["parity"]["result"]
    for net in ("sparse-cnn2/mnist", "sparse-cnn2/gsc"):
        assert parity[net] == {"cpu_topk_equals_numpy_bit_for_bit": True}
    assert record["machine"]["commit"]


def test_determinism_section_kills_resumes_and_compares_runs_bit_for_bit(tmp_path: Path) -> None:
    """The section's plumbing on the CPU (where runs are deterministic either way): two runs, a run
    SIGKILLed after epoch 1 and its resumption, with the setting off and on."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--section", "determinism", "--device", "cpu",
                           "--budget", "400", "--clips", "32"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])["result"]
    for mode, flag in (("off", "0"), ("on", "1")):
        row = result[f"deterministic_{mode}"]
        assert row["killed_run_was_killed"] and row["runs"]["killed"]["returncode"] == -9
        assert row["two_runs_bit_identical"] and row["resume_bit_identical"]
        assert row["resumed_from_epoch"] == 1 and row["runs"]["a"]["result"]["resumed_from_epoch"] == 0
        assert row["runs"]["a"]["result"]["deterministic_env"] == flag
    assert result["cost_on_over_off"] > 0


def test_a_section_past_its_time_box_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_gpu", "--device", "cpu", "--sections", "parity",
                           "gsc_memory", "--budget-scale", "0.05", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sections = json.loads(out.read_text())["sections"]
    # 2.25 s for parity, 2.5 s for the GSC section: neither can import torch and finish in that
    assert sections["parity"]["timed_out"].startswith("stopped after")
    assert sections["gsc_memory"]["timed_out"].startswith("stopped after")
