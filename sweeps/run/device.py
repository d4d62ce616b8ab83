"""The device a trial trains on, decided once per trial on its node, and said loudly.

A trial granted GPUs trains on CUDA or fails with one line (never a silent fall-back to the CPU:
Ray can see a GPU that torch cannot use, e.g. a driver too old for the installed wheels). Every
trial records what it ran on (`DeviceInfo.tags`): the device's name, torch's CUDA version and the
driver's, or "cpu".
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from sweeps.errors import UserError

__all__ = ["DeviceInfo", "NodeError", "trial_device"]

_SMI_TIMEOUT_S = 5


class NodeError(UserError):
    """A trial's node cannot run it (its data is missing, its GPU unusable): retrying it there cannot
    help, so the sweep ends with this one line, naming the node and the fix."""


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cuda" or "cpu", as `run_experiment` takes it
    name: str  # the GPU's name, or "cpu"
    cuda_version: str | None = None  # torch's build
    driver_version: str | None = None  # the NVIDIA driver's, when nvidia-smi answers

    def tags(self) -> dict[str, str]:
        out = {"sweeps.device": self.device, "sweeps.device_name": self.name}
        if self.cuda_version:
            out["sweeps.cuda_version"] = self.cuda_version
        if self.driver_version:
            out["sweeps.driver_version"] = self.driver_version
        return out


def _driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=_SMI_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def _why_no_cuda(torch) -> str:
    try:
        torch.cuda.init()
    except Exception as e:  # torch says why: no driver, a driver too old, no device visible
        return " ".join(str(e).split())[:200]
    return "torch.cuda.is_available() is False"


def trial_device(gpus: float, node: str) -> DeviceInfo:
    """The device of a trial granted ``gpus`` GPUs on ``node``: CUDA when it has GPUs (else
    `NodeError`: the node's torch cannot use them), the CPU when it has none."""
    import torch

    if gpus <= 0:
        return DeviceInfo("cpu", "cpu")
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise NodeError(
            f"resources.gpus: a trial was granted {gpus:g} GPU on node {node} (CUDA_VISIBLE_DEVICES={visible}), but "
            f"torch {torch.__version__} (built for CUDA {torch.version.cuda or 'none: a CPU-only build'}) cannot use "
            f"it: {_why_no_cuda(torch)}; install the torch build for that node's NVIDIA driver, or set "
            f"resources.gpus: 0 to train on CPUs"
        )
    index = torch.cuda.current_device()
    return DeviceInfo("cuda", torch.cuda.get_device_name(index), torch.version.cuda, _driver_version())
