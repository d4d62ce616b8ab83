"""The reference library's k-winners and sparse weights, for parity tests only.

Provenance and licence
----------------------
This module reproduces the *behaviour* of Numenta's nupic.torch (numenta/nupic.torch,
"Numenta Platform for Intelligent Computing (NuPIC), Copyright (C) 2019, Numenta, Inc.",
GNU Affero General Public License v3, http://numenta.org/licenses/), read from:

* ``nupic/torch/functions/k_winners.py``  (``kwinners``, ``kwinners2d``, ``boost_activations``:
  the version with ``break_ties``/``relu``/``inplace``)
* ``nupic/torch/modules/k_winners.py``    (``KWinnersBase``, ``KWinners``, ``KWinners2d``,
  ``update_boost_strength``; the version with ``_cached_boost_strength``)
* ``nupic/torch/modules/sparse_weights.py`` (``SparseWeights``, ``SparseWeights2d``, ``rezero_weights``;
  the version with a ``zero_mask`` buffer and ``sparsity`` = fraction of zero weights)
* ``nupic/torch/duty_cycle_metrics.py``    (``binary_entropy``, ``max_entropy``)

It is written here from that reading rather than pasted (this project is Apache-2.0 and the
original is AGPL-3.0), keeping every numerical step the same -- the same tensor operations in the
same order -- so that outputs, gradients and duty cycles can be compared bit for bit. nupic.torch
is not installable in this environment, hence this stand-in. It is test code: nothing in
``sparsity`` imports it.

Reference behaviour worth knowing (each is exercised by the tests):

* Boosting ranks by ``x * exp(-boost_strength * duty_cycle)`` (a positive constant times the
  documented ``exp(boost_strength * (k/n - duty_cycle))``, so the same order).
  ``boost_strength`` is used as a Python float (``_cached_boost_strength``); 0 skips boosting.
* ``break_ties=False``: threshold = ``kthvalue(n - k + 1)`` of the boosted row, every unit with
  ``boosted >= threshold`` wins (ties can give more than k). ``break_ties=True``: ``topk`` indices.
  Losers are zeroed with ``masked_fill``; winners keep raw values; gradient flows to winners only.
* Duty cycles: ``learning_iterations`` is a plain attribute, *not* in the state_dict.
  ``period = min(duty_cycle_period, learning_iterations)``;
  ``d.mul_(period - B); d.add_(counts); d.div_(period)``. 2-D counts per channel are the number of
  active (batch, position) pairs divided by ``H * W``. 2-D duty cycles have shape (1, C, 1, 1).
* k: 1-D ``k = int(round(n * percent_on))``, ``k_inference = int(k * k_inference_factor)``;
  2-D ``percent_on_inference = percent_on * k_inference_factor`` (computed first) and
  global ``k = int(round(C*H*W * percent_on))``, ``k_inference = int(round(C*H*W * percent_on_inference))``
  (C*H*W fixed at the first forward); local the same with C.
* Sparse weights: ``sparsity`` is the fraction of *zero* weights; each unit keeps
  ``int(round((1 - sparsity) * fan_in))`` weights chosen with ``np.random.choice`` (global NumPy
  RNG); the zero mask is a float16 buffer; ``SparseWeights2d`` takes fan_in as
  ``in_channels * kH * kW`` (it ignores ``groups``). ``rezero_weights(m)`` acts only in training mode.
"""

from __future__ import annotations

import abc
import math
import warnings

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "boost_activations",
    "kwinners",
    "kwinners2d",
    "KWinnersBase",
    "KWinners",
    "KWinners2d",
    "update_boost_strength",
    "SparseWeightsBase",
    "SparseWeights",
    "SparseWeights2d",
    "rezero_weights",
    "binary_entropy",
    "max_entropy",
]


# --------------------------------------------------------------------------- duty_cycle_metrics


def max_entropy(n, k):
    """Maximum total entropy of n binary units with k of them on."""
    s = float(k) / n
    if 0.0 < s < 1.0:
        entropy = -s * math.log(s, 2) - (1 - s) * math.log(1 - s, 2)
    else:
        entropy = 0
    return n * entropy


def binary_entropy(x):
    """Entropy of binary variables with P(1) = x: (per-variable entropy, total)."""
    entropy = -x * x.log2() - (1 - x) * (1 - x).log2()
    entropy[x * (1 - x) == 0] = 0
    return entropy, entropy.sum()


# --------------------------------------------------------------------------- functions/k_winners


def boost_activations(x, duty_cycles, boost_strength):
    """Ranking scores: ``x * exp(-boost_strength * duty_cycles)`` (detached), or x if strength is 0."""
    if boost_strength > 0.0:
        return x.detach() * torch.exp(-boost_strength * duty_cycles)
    return x.detach()


def kwinners(x, duty_cycles, k, boost_strength, break_ties=False, relu=False, inplace=False):
    """k-winners of each row of a (B, n) tensor; losers set to 0, winners keep raw values."""
    if k == 0:
        return torch.zeros_like(x)

    boosted = boost_activations(x, duty_cycles, boost_strength)

    if break_ties:
        indices = boosted.topk(k=k, dim=1, sorted=False)[1]
        off_mask = torch.ones_like(boosted, dtype=torch.bool)
        off_mask.scatter_(1, indices, False)
        if relu:
            off_mask |= boosted <= 0
    else:
        threshold = boosted.kthvalue(x.shape[1] - k + 1, dim=1, keepdim=True)[0]
        if relu:
            threshold.clamp_(min=0)
        off_mask = boosted < threshold

    if inplace:
        return x.masked_fill_(off_mask, 0)
    return x.masked_fill(off_mask, 0)


def kwinners2d(x, duty_cycles, k, boost_strength, local=True, break_ties=False, relu=False, inplace=False):
    """k-winners of a (B, C, H, W) tensor: over C at each position (local) or over C*H*W (global)."""
    if k == 0:
        return torch.zeros_like(x)

    boosted = boost_activations(x, duty_cycles, boost_strength)

    if break_ties:
        if local:
            indices = boosted.topk(k=k, dim=1, sorted=False)[1]
            off_mask = torch.ones_like(boosted, dtype=torch.bool)
            off_mask.scatter_(1, indices, False)
        else:
            shape2 = (x.shape[0], x.shape[1] * x.shape[2] * x.shape[3])
            indices = boosted.view(shape2).topk(k, dim=1, sorted=False)[1]
            off_mask = torch.ones(shape2, dtype=torch.bool, device=x.device)
            off_mask.scatter_(1, indices, False)
            off_mask = off_mask.view(x.shape)
        if relu:
            off_mask |= boosted <= 0
    else:
        if local:
            threshold = boosted.kthvalue(x.shape[1] - k + 1, dim=1, keepdim=True)[0]
        else:
            threshold = boosted.view(x.shape[0], -1).kthvalue(x.shape[1] * x.shape[2] * x.shape[3] - k + 1, dim=1)[0]
            threshold = threshold.view(x.shape[0], 1, 1, 1)
        if relu:
            threshold.clamp_(min=0)
        off_mask = boosted < threshold

    if inplace:
        return x.masked_fill_(off_mask, 0)
    return x.masked_fill(off_mask, 0)


# --------------------------------------------------------------------------- modules/k_winners


def update_boost_strength(m):
    """For ``model.apply(update_boost_strength)``: decay one k-winners module's boost strength."""
    if isinstance(m, KWinnersBase):
        m.update_boost_strength()


class KWinnersBase(nn.Module, metaclass=abc.ABCMeta):
    def __init__(
        self,
        percent_on,
        k_inference_factor=1.0,
        boost_strength=1.0,
        boost_strength_factor=1.0,
        duty_cycle_period=1000,
    ):
        super().__init__()
        assert boost_strength >= 0.0
        assert 0.0 <= boost_strength_factor <= 1.0
        assert 0.0 < percent_on < 1.0
        assert 0.0 < percent_on * k_inference_factor < 1.0

        self.percent_on = percent_on
        self.percent_on_inference = percent_on * k_inference_factor
        self.k_inference_factor = k_inference_factor
        self.learning_iterations = 0  # plain attribute: not saved in the state_dict
        self.n = 0
        self.k = 0
        self.k_inference = 0

        # Saved in the state_dict; the Python-float copy is what forward uses.
        self.register_buffer("boost_strength", torch.tensor(boost_strength, dtype=torch.float))
        self._cached_boost_strength = boost_strength

        self.boost_strength_factor = boost_strength_factor
        self.duty_cycle_period = duty_cycle_period

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._cached_boost_strength = self.boost_strength.item()

    def extra_repr(self):
        return (
            f"n={self.n}, percent_on={self.percent_on}, boost_strength={self._cached_boost_strength}, "
            f"boost_strength_factor={self.boost_strength_factor}, "
            f"k_inference_factor={self.k_inference_factor}, duty_cycle_period={self.duty_cycle_period}"
        )

    @abc.abstractmethod
    def update_duty_cycle(self, x):
        raise NotImplementedError

    def update_boost_strength(self):
        self._cached_boost_strength *= self.boost_strength_factor
        self.boost_strength.fill_(self._cached_boost_strength)

    def entropy(self):
        _, entropy = binary_entropy(self.duty_cycle)
        return entropy

    def max_entropy(self):
        return max_entropy(self.n, int(self.n * self.percent_on))


class KWinners(KWinnersBase):
    def __init__(
        self,
        n,
        percent_on,
        k_inference_factor=1.5,
        boost_strength=1.0,
        boost_strength_factor=0.9,
        duty_cycle_period=1000,
        break_ties=False,
        relu=False,
        inplace=False,
    ):
        super().__init__(
            percent_on=percent_on,
            k_inference_factor=k_inference_factor,
            boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor,
            duty_cycle_period=duty_cycle_period,
        )
        self.break_ties = break_ties
        self.inplace = inplace
        self.relu = relu

        self.n = n
        self.k = int(round(n * percent_on))
        self.k_inference = int(self.k * self.k_inference_factor)
        self.register_buffer("duty_cycle", torch.zeros(self.n))

    def forward(self, x):
        if self.training:
            x = kwinners(x, self.duty_cycle, self.k, self._cached_boost_strength,
                         self.break_ties, self.relu, self.inplace)
            self.update_duty_cycle(x)
        else:
            x = kwinners(x, self.duty_cycle, self.k_inference, self._cached_boost_strength,
                         self.break_ties, self.relu, self.inplace)
        return x

    def update_duty_cycle(self, x):
        batch_size = x.shape[0]
        self.learning_iterations += batch_size
        period = min(self.duty_cycle_period, self.learning_iterations)
        self.duty_cycle.mul_(period - batch_size)
        self.duty_cycle.add_(x.gt(0).sum(dim=0, dtype=torch.float))
        self.duty_cycle.div_(period)


class KWinners2d(KWinnersBase):
    def __init__(
        self,
        channels,
        percent_on=0.1,
        k_inference_factor=1.5,
        boost_strength=1.0,
        boost_strength_factor=0.9,
        duty_cycle_period=1000,
        local=False,
        break_ties=False,
        relu=False,
        inplace=False,
    ):
        super().__init__(
            percent_on=percent_on,
            k_inference_factor=k_inference_factor,
            boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor,
            duty_cycle_period=duty_cycle_period,
        )
        self.channels = channels
        self.local = local
        self.break_ties = break_ties
        self.inplace = inplace
        self.relu = relu
        if local:
            self.k = int(round(self.channels * self.percent_on))
            self.k_inference = int(round(self.channels * self.percent_on_inference))

        self.register_buffer("duty_cycle", torch.zeros((1, channels, 1, 1)))

    def forward(self, x):
        if self.n == 0:
            self.n = np.prod(x.shape[1:])
            if not self.local:
                self.k = int(round(self.n * self.percent_on))
                self.k_inference = int(round(self.n * self.percent_on_inference))

        if self.training:
            x = kwinners2d(x, self.duty_cycle, self.k, self._cached_boost_strength, self.local,
                           self.break_ties, self.relu, self.inplace)
            self.update_duty_cycle(x)
        else:
            x = kwinners2d(x, self.duty_cycle, self.k_inference, self._cached_boost_strength, self.local,
                           self.break_ties, self.relu, self.inplace)
        return x

    def update_duty_cycle(self, x):
        batch_size = x.shape[0]
        self.learning_iterations += batch_size

        scale_factor = float(x.shape[2] * x.shape[3])
        period = min(self.duty_cycle_period, self.learning_iterations)
        self.duty_cycle.mul_(period - batch_size)
        s = x.gt(0).sum(dim=(0, 2, 3), dtype=torch.float) / scale_factor
        self.duty_cycle.reshape(-1).add_(s)
        self.duty_cycle.div_(period)

    def entropy(self):
        entropy = super().entropy()
        return entropy * self.n / self.channels

    def extra_repr(self):
        return f"channels={self.channels}, local={self.local}, break_ties={self.break_ties}, {super().extra_repr()}"


# --------------------------------------------------------------------------- modules/sparse_weights


def rezero_weights(m):
    """For ``model.apply(rezero_weights)``: re-zero one sparse module (training mode only)."""
    if isinstance(m, SparseWeightsBase):
        if m.training:
            m.rezero_weights()


class SparseWeightsBase(nn.Module, metaclass=abc.ABCMeta):
    """``sparsity`` = fraction of zero weights (``weight_sparsity`` = density, deprecated)."""

    def __init__(self, module, weight_sparsity=None, sparsity=None):
        super().__init__()
        assert weight_sparsity is not None or sparsity is not None
        if weight_sparsity is not None and sparsity is None:
            sparsity = 1.0 - weight_sparsity
            warnings.warn("Parameter `weight_sparsity` is deprecated. Use `sparsity` instead.", DeprecationWarning)
        self.module = module
        self.sparsity = sparsity

    def extra_repr(self):
        return f"sparsity={self.sparsity}"

    def forward(self, x):
        return self.module(x)

    @property
    def weight(self):
        return self.module.weight

    @abc.abstractmethod
    def rezero_weights(self):
        raise NotImplementedError


class SparseWeights(SparseWeightsBase):
    def __init__(self, module, weight_sparsity=None, sparsity=None, allow_extremes=False):
        assert len(module.weight.shape) == 2, "Should resemble a nn.Linear"
        super().__init__(module, weight_sparsity=weight_sparsity, sparsity=sparsity)
        if allow_extremes:
            assert 0 <= self.sparsity <= 1
        else:
            assert 0 < self.sparsity < 1

        in_features = self.module.in_features
        out_features = self.module.out_features
        num_nz = int(round((1 - self.sparsity) * in_features))
        zero_mask = torch.ones(out_features, in_features, dtype=torch.bool)
        for out_feature in range(out_features):
            in_indices = np.random.choice(in_features, num_nz, replace=False)
            zero_mask[out_feature, in_indices] = False
        self.register_buffer("zero_mask", zero_mask.half())  # float16: NCCL has no bool
        self.rezero_weights()

    def rezero_weights(self):
        self.module.weight.data[self.zero_mask.bool()] = 0


class SparseWeights2d(SparseWeightsBase):
    def __init__(self, module, weight_sparsity=None, sparsity=None, allow_extremes=False):
        assert len(module.weight.shape) == 4, "Should resemble a nn.Conv2d"
        super().__init__(module, weight_sparsity=weight_sparsity, sparsity=sparsity)
        if allow_extremes:
            assert 0 <= self.sparsity <= 1
        else:
            assert 0 < self.sparsity < 1

        in_channels = self.module.in_channels
        out_channels = self.module.out_channels
        kernel_size = self.module.kernel_size

        input_size = in_channels * kernel_size[0] * kernel_size[1]  # ignores groups
        num_nz = int(round((1 - self.sparsity) * input_size))
        zero_mask = torch.ones(out_channels, input_size, dtype=torch.bool)
        for out_channel in range(out_channels):
            in_indices = np.random.choice(input_size, num_nz, replace=False)
            zero_mask[out_channel, in_indices] = False
        zero_mask = zero_mask.view(out_channels, in_channels, *kernel_size)
        self.register_buffer("zero_mask", zero_mask.half())
        self.rezero_weights()

    def rezero_weights(self):
        self.module.weight.data[self.zero_mask.bool()] = 0
