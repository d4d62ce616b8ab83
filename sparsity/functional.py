"""Pure functions behind the k-winners layers: k rounding, boosting, selection, duty cycles.

Everything here is stateless; `sparsity.kwinners` wraps it in modules that own the state.
The rules follow the reference library (nupic.torch) so that its users get the same numbers:

* 1-D:        ``k = round(n * percent_on)``, ``k_inference = int(k * k_inference_factor)``
* 2-D global: ``k = round(C*H*W * percent_on)``, ``k_inference = round(C*H*W * (percent_on * factor))``
* 2-D local:  ``k = round(C * percent_on)``,     ``k_inference = round(C * (percent_on * factor))``

``round`` is Python's (half to even).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from .counts import k_for, k_inference_for  # re-exported: the rules live in counts (no torch)

__all__ = [
    "k_for",
    "k_inference_for",
    "boost_factors",
    "kwinners",
    "kwinners2d",
    "active_counts",
    "active_counts2d",
    "update_duty_cycle",
    "torch_selection",
]

# The k-th-largest selection on the CPU goes through numpy (faster there) unless this is set: then
# it is torch's ``topk`` everywhere, the one path that CUDA runs and that a traced graph (ONNX) holds.
_TORCH_SELECTION: contextvars.ContextVar[bool] = contextvars.ContextVar("sparsity_torch_selection", default=False)


@contextlib.contextmanager
def torch_selection(enabled: bool = True) -> Iterator[None]:
    """Within the block, k-winners select with ``torch.topk`` on every device (the CUDA path and the
    only one an exported graph can hold) instead of numpy's partition on the CPU. Both give the same
    winners (tests/test_kwinners.py compares them bit for bit)."""
    token = _TORCH_SELECTION.set(enabled)
    try:
        yield
    finally:
        _TORCH_SELECTION.reset(token)


def boost_factors(duty_cycle: Tensor, target_density: float, boost_strength: float | Tensor) -> Tensor:
    """``exp(beta * (k/n - d))``: units that fired less than their share rank higher."""
    return torch.exp((target_density - duty_cycle) * boost_strength)


def _numpy_ok(t: Tensor) -> bool:
    return (t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and not t.requires_grad
            and not _TORCH_SELECTION.get())


def _kth_largest(scores: Tensor, k: int) -> Tensor:
    """(rows, 1): the k-th largest of each row. On the CPU numpy's selection is about 7x faster than
    ``topk`` (0.45 ms against 3.2 ms for 64x4608, k=400, at 1 thread); elsewhere ``topk``."""
    if _numpy_ok(scores):
        return torch.from_numpy(_np_kth_largest(scores.contiguous().numpy(), k)[:, None])
    return scores.topk(k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)


def _np_kth_largest(rows: np.ndarray, k: int) -> np.ndarray:
    n = rows.shape[1]
    return np.partition(rows, n - k, axis=1)[:, n - k]


def _threshold2d(boosted: Tensor, k: int, local: bool) -> Tensor:
    """The k-th largest of each sample's C*H*W scores (global: (B, 1, 1, 1)) or of the C scores
    at each position (local: (B, 1, H, W)), to compare ``boosted`` with. The rows are taken in
    memory order (the k-th largest does not depend on the order), so a contiguous or channels-last
    tensor is not copied before the selection (numpy's, on the CPU, copies once itself)."""
    b, c, h, w = boosted.shape
    nhwc = local or (not boosted.is_contiguous() and boosted.is_contiguous(memory_format=torch.channels_last))
    if _numpy_ok(boosted):
        a = boosted.numpy()  # the tensor's strides: a view
        a = a.transpose(0, 2, 3, 1) if nhwc else a  # (B, H, W, C): contiguous when channels-last
        kth = _np_kth_largest(a.reshape(-1, c) if local else a.reshape(b, -1), k)
        return torch.from_numpy(kth.reshape((b, 1, h, w) if local else (b, 1, 1, 1)))
    rows = boosted.permute(0, 2, 3, 1) if nhwc else boosted
    rows = rows.reshape(-1, c) if local else rows.reshape(b, -1)
    kth = rows.topk(k, dim=1, sorted=False).values.amin(dim=1)
    return kth.view((b, 1, h, w) if local else (b, 1, 1, 1))


def _top_k_mask(boosted: Tensor, k: int) -> Tensor:
    """1 at exactly k winners of each row of a 2-D tensor (``topk`` indices: ties broken), 0 elsewhere."""
    n = boosted.shape[1]
    if _numpy_ok(boosted):
        idx = torch.from_numpy(np.argpartition(boosted.contiguous().numpy(), n - k, axis=1)[:, n - k :])
    else:
        idx = boosted.topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(boosted).scatter_(1, idx, 1.0)


def _winner_mask(boosted: Tensor, k: int, break_ties: bool) -> Tensor:
    """1 at the k winners along dim 1 of a 2-D tensor of ranking scores, 0 elsewhere, in the
    scores' dtype (multiplying by it then needs no bool-to-float pass). Overwrites ``boosted``."""
    if k >= boosted.shape[1]:
        return torch.ones_like(boosted)
    if break_ties:
        return _top_k_mask(boosted, k)
    # Every unit at least as large as the k-th largest wins (ties may give more than k).
    if torch.jit.is_tracing():  # an exported graph: the same values, without writing into ``boosted``
        return torch.ge(boosted, _kth_largest(boosted, k)).to(boosted.dtype)
    return torch.ge(boosted, _kth_largest(boosted, k), out=boosted)


class _Masked(torch.autograd.Function):
    """``x * mask`` whose gradient, ``mask * grad``, comes back in the mask's (= x's) memory format
    whatever format ``grad`` arrives in (channels-last activations flattened into a Linear get a
    contiguous gradient back): the layers below then get the layout they expect, without a copy."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor) -> Tensor:
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (mask,) = ctx.saved_tensors
        return mask * grad, None


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """``x * mask``; without autograd the product goes into the mask's own memory."""
    if torch.jit.is_tracing():  # an exported graph holds no in-place ops
        return x * mask
    if not (torch.is_grad_enabled() and x.requires_grad):
        return mask.mul_(x)
    return x * mask if x.is_contiguous() else _Masked.apply(x, mask)


def kwinners(
    x: Tensor,
    duty_cycle: Tensor,
    k: int,
    boost_strength: float | Tensor,
    break_ties: bool = False,
) -> Tensor:
    """Keep the k largest boosted activations of each row of ``x`` (B, n); zero the rest.

    Winners keep their raw values (boosting only ranks), so the gradient is 1 at winners and
    0 elsewhere, like ReLU's.
    """
    with torch.no_grad():
        # With boost_strength 0 the factors are exactly 1 and the ranking is the raw one; not
        # branching on the value keeps a GPU run free of host syncs.
        boosted = x * boost_factors(duty_cycle, k / x.shape[1], boost_strength)
        mask = _winner_mask(boosted, k, break_ties)
    return _masked(x, mask)


def kwinners2d(
    x: Tensor,
    duty_cycle: Tensor,
    k: int,
    boost_strength: float | Tensor,
    local: bool = False,
    break_ties: bool = False,
) -> Tensor:
    """k-winners of (B, C, H, W): over all C*H*W of a sample, or over C at each position (local).

    ``duty_cycle`` holds one value per channel, shape (C,). The output and every intermediate
    keep ``x``'s memory format (contiguous or channels-last): no copy to another layout, and the
    mask multiplies ``x`` element for element in the same order.
    """
    b, c, h, w = x.shape
    with torch.no_grad():
        n = c if local else c * h * w
        boosted = x * boost_factors(duty_cycle, k / n, boost_strength).view(1, c, 1, 1)
        if k >= n:
            mask = torch.ones_like(boosted)
        elif break_ties:  # which of tied units wins follows (C, H, W) order, whatever the layout
            rows = boosted.permute(0, 2, 3, 1).reshape(-1, c) if local else boosted.reshape(b, -1)
            top = _top_k_mask(rows, k)
            top = top.view(b, h, w, c).permute(0, 3, 1, 2) if local else top.view(b, c, h, w)
            mask = top if torch.jit.is_tracing() else boosted.copy_(top)
        elif torch.jit.is_tracing():  # an exported graph: the same values, without writing into ``boosted``
            mask = torch.ge(boosted, _threshold2d(boosted, k, local)).to(boosted.dtype)
        else:  # a threshold per sample (global) or per position (local), compared in place
            mask = torch.ge(boosted, _threshold2d(boosted, k, local), out=boosted)
    return _masked(x, mask)


def update_duty_cycle(
    duty_cycle: Tensor, counts: Tensor, batch_size: int, samples_seen: int | Tensor, period: int
) -> Tensor:
    """Running mean of activity: ``d <- (d * (p - B) + counts) / p`` with ``p = min(P, t)``.

    ``samples_seen`` (t) counts samples including this batch; it may be a 0-d tensor so that a GPU
    run never syncs. ``counts`` is per unit, summed over the batch (from `active_counts` or
    `active_counts2d`). An exact running mean until P samples, then a moving average of weight B/P.
    Returns a new tensor.
    """
    if isinstance(samples_seen, Tensor):
        p = samples_seen.clamp(max=period).to(duty_cycle.dtype)
    else:
        p = float(min(period, samples_seen))
    return (duty_cycle * (p - batch_size) + counts) / p


def active_counts(y: Tensor) -> Tensor:
    """Per-unit count of samples with output > 0: (B, n) -> (n,)."""
    if y.is_floating_point():  # comparing into a float buffer skips a bool-to-float pass
        return torch.gt(y, 0, out=torch.empty_like(y)).sum(dim=0)
    return y.gt(0).sum(dim=0, dtype=torch.float32)


def active_counts2d(y: Tensor) -> Tensor:
    """Per-channel activity of (B, C, H, W) outputs: samples' fraction of active positions, summed.
    Sums of 0s and 1s are exact in any order (below 2**24), so every memory format gives the same bits."""
    h, w = y.shape[2], y.shape[3]
    return torch.gt(y, 0, out=torch.empty_like(y)).sum(dim=(0, 2, 3)) / float(h * w)
