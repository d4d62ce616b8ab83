"""k-winners-take-all activations with boosting, as modules that own their state.

State lives in registered buffers (``duty_cycle``, ``boost_strength``, ``samples_seen``), so a
``state_dict`` saved mid-training and loaded into a fresh module continues exactly where the
original would. Settings (percent_on, factors, period, ties) are constructor arguments shown in
``extra_repr``. Argument names follow nupic.torch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as F

__all__ = ["KWinners", "KWinners2d", "update_boost_strength"]


def _check_settings(
    k_inference_factor: float, boost_strength: float, boost_strength_factor: float, duty_cycle_period: int
) -> None:
    if k_inference_factor <= 0:
        raise ValueError(f"k_inference_factor={k_inference_factor!r} must be > 0")
    if boost_strength < 0:
        raise ValueError(f"boost_strength={boost_strength!r} must be >= 0 (0 turns boosting off)")
    if not 0 < boost_strength_factor <= 1:
        raise ValueError(f"boost_strength_factor={boost_strength_factor!r} must be in (0, 1]")
    if int(duty_cycle_period) < 1:
        raise ValueError(f"duty_cycle_period={duty_cycle_period!r} must be a positive number of samples")


class _KWinnersBase(nn.Module):
    def __init__(
        self,
        units: int,
        percent_on: float,
        k_inference_factor: float,
        boost_strength: float,
        boost_strength_factor: float,
        duty_cycle_period: int,
        break_ties: bool,
    ) -> None:
        super().__init__()
        if not 0.0 < percent_on <= 1.0:
            raise ValueError(f"percent_on={percent_on!r} must be in (0, 1]")
        _check_settings(k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period)
        self.percent_on = float(percent_on)
        self.k_inference_factor = float(k_inference_factor)
        self.boost_strength_factor = float(boost_strength_factor)
        self.duty_cycle_period = int(duty_cycle_period)
        self.break_ties = bool(break_ties)
        self.register_buffer("duty_cycle", torch.zeros(units))
        self.register_buffer("boost_strength", torch.tensor(float(boost_strength)))
        self.register_buffer("samples_seen", torch.tensor(0, dtype=torch.long))

    @torch.no_grad()
    def update_boost_strength(self) -> None:
        """Multiply ``boost_strength`` by ``boost_strength_factor`` (call once per epoch)."""
        self.boost_strength.mul_(self.boost_strength_factor)

    @torch.no_grad()
    def _record(self, y: Tensor, counts: Tensor) -> None:
        self.samples_seen.add_(y.shape[0])
        # On the CPU the count is read as a number (no device to wait for): fewer small tensor ops.
        seen = int(self.samples_seen) if self.samples_seen.device.type == "cpu" else self.samples_seen
        self.duty_cycle.copy_(F.update_duty_cycle(self.duty_cycle, counts, y.shape[0], seen, self.duty_cycle_period))

    def _settings_repr(self) -> str:
        return (
            f"boost_strength={float(self.boost_strength):.4g}, "
            f"boost_strength_factor={self.boost_strength_factor}, "
            f"k_inference_factor={self.k_inference_factor}, "
            f"duty_cycle_period={self.duty_cycle_period}, break_ties={self.break_ties}"
        )


class KWinners(_KWinnersBase):
    """k-winners of a (B, n) input: ``k = round(n * percent_on)`` in training,
    ``int(k * k_inference_factor)`` in eval mode; duty cycles per unit."""

    def __init__(
        self,
        n: int,
        percent_on: float,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
    ) -> None:
        super().__init__(
            n, percent_on, k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period, break_ties
        )
        self.n = int(n)
        self.k = F.k_for(self.n, self.percent_on)
        self.k_inference = F.k_inference_for(self.n, self.percent_on, self.k_inference_factor, one_d=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.n:
            raise ValueError(f"KWinners(n={self.n}) expects input (batch, {self.n}), got {tuple(x.shape)}")
        k = self.k if self.training else self.k_inference
        y = F.kwinners(x, self.duty_cycle, k, self.boost_strength, self.break_ties)
        if self.training:
            self._record(y, F.active_counts(y))
        return y

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, percent_on={self.percent_on:.4g}, k={self.k}, k_inference={self.k_inference}, "
            + self._settings_repr()
        )


class KWinners2d(_KWinnersBase):
    """k-winners of a (B, C, H, W) input; duty cycles per channel.

    Global (default): winners over the whole C*H*W of each sample, ``k = round(C*H*W * percent_on)``.
    Local: winners over the C channels at each position, ``k = round(C * percent_on)``.
    In eval mode k is ``round(n * (percent_on * k_inference_factor))``.
    """

    def __init__(
        self,
        channels: int,
        percent_on: float = 0.1,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
        local: bool = False,
    ) -> None:
        super().__init__(
            channels, percent_on, k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period,
            break_ties,
        )
        self.channels = int(channels)
        self.local = bool(local)
        if self.local:
            F.k_for(self.channels, self.percent_on)  # validate now: k does not depend on H, W
        self._k_cache: dict[tuple[int, int, bool], int] = {}

    def k_at(self, height: int, width: int, training: bool = True) -> int:
        """k for an input of this spatial size (training or eval mode)."""
        key = (height, width, training)
        k = self._k_cache.get(key)
        if k is None:
            n = self.channels if self.local else self.channels * height * width
            if training:
                k = F.k_for(n, self.percent_on)
            else:
                k = F.k_inference_for(n, self.percent_on, self.k_inference_factor, one_d=False)
            self._k_cache[key] = k
        return k

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"KWinners2d(channels={self.channels}) expects input (batch, {self.channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        k = self.k_at(int(x.shape[2]), int(x.shape[3]), self.training)  # ints when traced too (ONNX export)
        y = F.kwinners2d(x, self.duty_cycle, k, self.boost_strength, self.local, self.break_ties)
        if self.training:
            self._record(y, F.active_counts2d(y))
        return y

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, percent_on={self.percent_on:.4g}, local={self.local}, "
            + self._settings_repr()
        )


def update_boost_strength(model: nn.Module) -> None:
    """Decay the boost strength of every k-winners module in ``model`` (once per epoch)."""
    for m in model.modules():
        if isinstance(m, _KWinnersBase):
            m.update_boost_strength()
