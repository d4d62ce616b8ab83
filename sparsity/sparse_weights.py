"""Fixed random sparse connectivity for Linear and Conv2d layers.

Each output unit (each output channel of a convolution, over in_channels/groups x kH x kW)
keeps exactly ``round(weight_density * fan_in)`` weights, at positions drawn once from a
``torch.Generator``. The mask is a bool buffer (``weight_mask``, True where a weight may be
nonzero). The masked weights are zeroed at construction; optimizers move them again (momentum,
weight decay), so the training loop calls `rezero_weights(model)` after every optimizer step.
The forward pass is the wrapped module's own, so a sparse layer costs the same as a dense one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .counts import nonzero_per_unit  # re-exported: the rule lives in counts (no torch)

__all__ = ["SparseWeights", "SparseWeights2d", "nonzero_per_unit", "random_mask", "rezero_weights"]


def random_mask(out_units: int, fan_in: int, nnz: int, generator: torch.Generator | None = None) -> Tensor:
    """Bool (out_units, fan_in) with exactly ``nnz`` True per row at uniformly random positions."""
    keys = torch.rand(out_units, fan_in, generator=generator)
    idx = keys.argsort(dim=1)[:, :nnz]
    return torch.zeros(out_units, fan_in, dtype=torch.bool).scatter_(1, idx, True)


class _SparseWeightsBase(nn.Module):
    def __init__(self, module: nn.Module, weight_density: float, generator: torch.Generator | None) -> None:
        super().__init__()
        self.module = module
        weight = module.weight
        out_units = weight.shape[0]
        fan_in = weight[0].numel()
        self.weight_density = float(weight_density)
        self.nonzero_per_unit = nonzero_per_unit(weight_density, fan_in)
        mask = random_mask(out_units, fan_in, self.nonzero_per_unit, generator).view_as(weight)
        self.register_buffer("weight_mask", mask.to(weight.device))
        self._mask_cache: tuple[tuple, Tensor] | None = None
        self.rezero_weights()

    @property
    def weight(self) -> Tensor:
        return self.module.weight

    @property
    def bias(self) -> Tensor | None:
        return self.module.bias

    @torch.no_grad()
    def rezero_weights(self) -> None:
        # mul_ by a bool tensor converts it on every call (0.3 ms for 700x1024): keep a float copy,
        # refreshed when the mask is replaced (.to()) or rewritten in place (load_state_dict bumps _version).
        w, mask = self.module.weight, self.weight_mask
        key = (id(mask), mask._version, w.dtype, w.device)
        if self._mask_cache is None or self._mask_cache[0] != key:
            self._mask_cache = (key, mask.to(w.dtype))
        w.mul_(self._mask_cache[1])

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)

    def extra_repr(self) -> str:
        return f"weight_density={self.weight_density:.4g}, nonzero_per_unit={self.nonzero_per_unit}"


class SparseWeights(_SparseWeightsBase):
    """Sparse weights for an ``nn.Linear``: each output unit keeps round(density * in_features)."""

    def __init__(self, module: nn.Linear, weight_density: float, generator: torch.Generator | None = None) -> None:
        if not isinstance(module, nn.Linear):
            raise TypeError(f"SparseWeights wraps nn.Linear, got {type(module).__name__}; use SparseWeights2d for Conv2d")
        super().__init__(module, weight_density, generator)


class SparseWeights2d(_SparseWeightsBase):
    """Sparse weights for an ``nn.Conv2d`` (grouped too): each output channel keeps
    round(density * in_channels/groups * kH * kW)."""

    def __init__(self, module: nn.Conv2d, weight_density: float, generator: torch.Generator | None = None) -> None:
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f"SparseWeights2d wraps nn.Conv2d, got {type(module).__name__}; use SparseWeights for Linear")
        super().__init__(module, weight_density, generator)


def sparse_weight_modules(model: nn.Module) -> list[_SparseWeightsBase]:
    """Every `SparseWeights` and `SparseWeights2d` module in ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, _SparseWeightsBase)]


def rezero_weights(model: nn.Module) -> None:
    """Zero the masked weights of every sparse-weight module (call after each optimizer step)."""
    for m in sparse_weight_modules(model):
        m.rezero_weights()
