"""CUDA-only checks: a training step on CUDA matches the CPU's, and deterministic CUDA runs repeat
bit for bit. They skip, saying why, where torch sees no CUDA device (the hardware is absent); on a
GPU machine run them with ``python -m pytest -m gpu``."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsity.functional import torch_selection
from sparsity.kwinners import KWinners, KWinners2d
from sparsity.network import build_network
from sparsity.presets import preset
from sparsity.sparse_weights import sparse_weight_modules
from sparsity.train import train_step

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: run on a GPU machine (-m gpu)"),
]


def _step(model, x, y):
    winners = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: winners.append((out != 0).cpu()))
             for m in model.modules() if isinstance(m, (KWinners, KWinners2d))]
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    logits, loss = train_step(model, opt, sparse_weight_modules(model), x, y)
    for h in hooks:
        h.remove()
    grads = {k: p.grad.cpu() for k, p in model.named_parameters() if p.grad is not None}
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    return logits.detach().cpu(), loss.detach().cpu(), grads, state, winners


@pytest.mark.parametrize("dataset", ["mnist", "gsc"])
def test_a_cuda_step_matches_the_cpu_step(dataset, monkeypatch):
    """Same weights, masks and duty cycles; TF32 off: CUDA's step is the CPU's within float error."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    spec = preset("sparse-cnn2", dataset)
    reference = build_network(spec, seed=0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, *spec.input_shape, generator=g), torch.randint(0, spec.num_classes, (64,), generator=g)
    with torch_selection():  # the CPU on the topk path that CUDA runs (equal to numpy's bit for bit)
        cpu = _step(copy.deepcopy(reference), x, y)
    cuda = _step(copy.deepcopy(reference).cuda(), x.cuda(), y.cuda())
    torch.testing.assert_close(cuda[0], cpu[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cuda[1], cpu[1], rtol=1e-5, atol=1e-5)
    for name, grad in cpu[2].items():
        scale = float(grad.abs().max()) or 1.0
        assert float((cuda[2][name] - grad).abs().max()) <= 1e-3 * scale, name
    for name, value in cpu[3].items():
        if value.is_floating_point():
            torch.testing.assert_close(cuda[3][name], value, rtol=1e-4, atol=1e-5, msg=name)
    agree = sum(int((a == b).sum()) for a, b in zip(cpu[4], cuda[4])) / sum(a.numel() for a in cpu[4])
    assert agree >= 0.999


_RUN = """
import sys, torch
from sparsity.data.base import DataSplit, Dataset
from sparsity.data.gsc import GSCAugment, GSCFeaturizer, PCM_SCALE
from sparsity.presets import preset
from sparsity.recipe import Recipe
from sparsity.train import train
g = torch.Generator().manual_seed(0)
def split(n):
    raw = torch.randint(-8000, 8001, (n, 16000), generator=g, dtype=torch.int16)
    return DataSplit(raw, torch.randn(n, 1, 32, 32, generator=g), torch.randint(0, 12, (n,), generator=g), PCM_SCALE)
noise = [torch.rand(160000, generator=g) * 0.2 - 0.1]
data = Dataset("gsc", tuple(map(str, range(12))), (1, 32, 32), split(256), split(64), split(1),
               GSCFeaturizer(0.0, 1.0), GSCAugment(noise))
result = train(preset("sparse-cnn2", "gsc"), Recipe(epochs=2, batch_size=16), data, seed=0, device="cuda",
               deterministic=True)
torch.save({k: v.cpu() for k, v in result.model.state_dict().items()}, sys.argv[1])
"""


def test_deterministic_cuda_runs_repeat_bit_for_bit(tmp_path: Path):
    """Two processes (the cuBLAS workspace is fixed per process), GSC augmentation on CUDA tensors."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    outs = [tmp_path / f"run{i}.pt" for i in range(2)]
    for out in outs:
        proc = subprocess.run([sys.executable, "-c", _RUN, str(out)], env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (torch.load(out, weights_only=True) for out in outs)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
