"""Noise robustness: the paper's noise protocols, a few extra kinds, and the noise curve/score.

Noise is applied to a split's RAW signal (MNIST pixels in [0, 1], GSC waveforms in [-1, 1]) and
the noisy signal is featurized; the clean level reuses the cached ``split.inputs``.

Every kind draws its randomness once per batch and reuses it at every level (common random
numbers): "mnist-pixels" and "salt-pepper" rank the pixel positions of each image once and take
the first ``int(H * W * level)``, so the noisy pixel sets are nested across levels and a curve is
scored on strictly growing corruption; "gsc-white", "gaussian" and "audio-snr" scale one noise
draw. The noise of batch ``b`` comes from ``generator(seed, "noise", kind, b)`` on the CPU, so
every network scored with the same seed and batch size sees identical noisy inputs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .data.base import DataSplit
from .facts import NOISE_FACTS, PAPER_LEVELS, SNR_LEVELS, DataKind, NoiseFacts, noise_facts  # noqa: F401 (SNR_LEVELS re-exported)
from .seeding import generator as make_generator

__all__ = [
    "NoiseKind",
    "NoiseCurve",
    "NOISE_KINDS",
    "PAPER_LEVELS",
    "MNIST_NOISE_VALUE",
    "get_noise",
    "noise_curve",
]

log = logging.getLogger(__name__)

Sampler = Callable[[float], Tensor]  # level -> noisy copy of the raw batch

MNIST_NOISE_VALUE = 0.1307 + 2 * 0.3081  # MNIST mean + 2 std, in [0, 1] pixel units


# -- the kinds -------------------------------------------------------------------------------------


def _rand(shape: Sequence[int], g: torch.Generator, like: Tensor) -> Tensor:
    """U[0, 1) drawn on the CPU from ``g`` (device-independent), then moved next to ``like``."""
    return torch.rand(tuple(shape), generator=g).to(device=like.device, dtype=like.dtype)


def _pixel_ranks(raw: Tensor, g: torch.Generator) -> Tensor:
    """A random rank 0..H*W-1 of every pixel position of every image, shape (N, 1, H, W)
    (or (N, H, W) for 3-D input); ``ranks < n`` marks n distinct random positions per image."""
    n, (h, w) = raw.shape[0], raw.shape[-2:]
    order = torch.rand(n, h * w, generator=g).argsort(dim=1)
    ranks = torch.empty(n, h * w, dtype=torch.int32)
    ranks.scatter_(1, order, torch.arange(h * w, dtype=torch.int32).expand(n, -1))
    shape = (n, 1, h, w) if raw.dim() == 4 else (n, h, w)
    return ranks.view(shape).to(raw.device)


def _count(raw: Tensor, level: float) -> int:
    """Pixels per image a ``level`` fraction corrupts: ``int(H * W * level)``, as the paper."""
    h, w = raw.shape[-2:]
    return int(h * w * level)


def _mnist_pixels(raw: Tensor, g: torch.Generator) -> Sampler:
    ranks = _pixel_ranks(raw, g)

    def at(level: float) -> Tensor:
        n = _count(raw, level)
        return raw.clone() if n == 0 else raw.masked_fill(ranks < n, MNIST_NOISE_VALUE)

    return at


def _salt_pepper(raw: Tensor, g: torch.Generator) -> Sampler:
    ranks = _pixel_ranks(raw, g)
    salt = _rand(ranks.shape, g, raw) < 0.5  # each chosen pixel: 1 (salt) or 0 (pepper)

    def at(level: float) -> Tensor:
        n = _count(raw, level)
        if n == 0:
            return raw.clone()
        chosen = ranks < n
        return raw.masked_fill(chosen & salt, 1.0).masked_fill_(chosen & ~salt, 0.0)

    return at


def _gaussian(raw: Tensor, g: torch.Generator) -> Sampler:
    z = torch.randn(raw.shape, generator=g).to(device=raw.device, dtype=raw.dtype)
    return lambda level: raw.clone() if level == 0 else (raw + level * z).clamp_(0.0, 1.0)


def _gsc_white(raw: Tensor, g: torch.Generator) -> Sampler:
    u = _rand(raw.shape, g, raw).mul_(2).sub_(1)  # U(-1, 1)
    return lambda level: raw.clone() if level == 0 else (1 - level) * raw + level * u


def _audio_snr(raw: Tensor, g: torch.Generator) -> Sampler:
    import torchaudio.functional as AF  # only this kind needs torchaudio

    noise = _rand(raw.shape, g, raw).mul_(2).sub_(1)

    def at(snr_db: float) -> Tensor:
        if math.isinf(snr_db):
            return raw.clone()
        snr = torch.full(raw.shape[:-1], float(snr_db), dtype=raw.dtype, device=raw.device)
        return AF.add_noise(raw, noise, snr)

    return at


@dataclass(frozen=True)
class NoiseKind:
    """A named noise protocol on raw signal: its fixed facts (`sparsity.facts.NoiseFacts`: the data
    it applies to, default levels, clean level, level rule) and how its noise is drawn.

    ``apply(raw, level, generator)`` returns a noisy copy (never in place) of a batch of ``data``
    ("image": (N, C, H, W) or (N, H, W) pixels in [0, 1]; "audio": (N, T) waveforms in [-1, 1]).
    """

    facts: NoiseFacts
    prepare: Callable[[Tensor, torch.Generator], Sampler]

    @property
    def name(self) -> str:
        return self.facts.name

    @property
    def data(self) -> DataKind:
        return self.facts.data

    @property
    def levels(self) -> tuple[float, ...]:
        return self.facts.levels

    @property
    def description(self) -> str:
        return self.facts.description

    @property
    def clean_level(self) -> float:
        return self.facts.clean_level

    def apply(self, raw: Tensor, level: float, generator: torch.Generator) -> Tensor:
        """A noisy copy of ``raw`` at ``level``."""
        self.check_level(level)
        return self.sampler(raw, generator)(level)

    def sampler(self, raw: Tensor, generator: torch.Generator) -> Sampler:
        """Draw this batch's noise once; the returned function gives the noisy copy at any level
        (``sampler(raw, g)(level)`` equals ``apply(raw, level, g)`` for a same-seeded ``g``)."""
        self.check_data(raw)
        return self.prepare(raw, generator)

    def is_clean(self, level: float) -> bool:
        return self.facts.is_clean(level)

    def check_level(self, level: float) -> None:
        self.facts.check_level(level)

    def check_data(self, raw: Tensor) -> None:
        """Raise ValueError when ``raw`` is not the kind of data this noise applies to."""
        if not torch.is_floating_point(raw):
            raise ValueError(f"noise kind {self.name!r} needs floating-point raw signal, got {raw.dtype}")
        ok = raw.dim() in (3, 4) if self.data == "image" else raw.dim() == 2
        if not ok:
            want = "image batches (N, C, H, W) or (N, H, W)" if self.data == "image" else "audio batches (N, T)"
            other = [k for k, v in NOISE_KINDS.items() if v.data != self.data]
            raise ValueError(
                f"noise kind {self.name!r} applies to {want}, got raw shape {tuple(raw.shape)}; "
                f"kinds for the other data type: {other}"
            )


_PREPARE: Mapping[str, Callable[[Tensor, torch.Generator], Sampler]] = {
    "mnist-pixels": _mnist_pixels,
    "gsc-white": _gsc_white,
    "gaussian": _gaussian,
    "salt-pepper": _salt_pepper,
    "audio-snr": _audio_snr,
}
NOISE_KINDS: Mapping[str, NoiseKind] = MappingProxyType(
    {name: NoiseKind(facts, _PREPARE[name]) for name, facts in NOISE_FACTS.items()}
)


def get_noise(name: str) -> NoiseKind:
    """The noise kind called ``name``; ValueError naming the choices if there is none."""
    return NOISE_KINDS[noise_facts(name).name]


# -- curves and scores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseCurve:
    """Accuracy of one network at each noise level of one kind, on ``total`` samples per level."""

    kind: str
    levels: tuple[float, ...]
    accuracies: tuple[float, ...]
    correct: tuple[int, ...]
    total: int
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
        object.__setattr__(self, "accuracies", tuple(float(v) for v in self.accuracies))
        object.__setattr__(self, "correct", tuple(int(v) for v in self.correct))
        if not (len(self.levels) == len(self.accuracies) == len(self.correct)):
            raise ValueError(
                f"noise curve lengths differ: levels {len(self.levels)}, accuracies {len(self.accuracies)}, "
                f"correct {len(self.correct)}"
            )
        if self.total < 1:
            raise ValueError(f"total={self.total!r}: must be >= 1 sample per level")
        for c, a in zip(self.correct, self.accuracies):
            if not 0 <= c <= self.total:
                raise ValueError(f"correct={c}: must be in [0, total={self.total}]")
            if abs(a - c / self.total) > 1e-9:
                raise ValueError(f"accuracy {a} does not match correct/total = {c}/{self.total}")

    @property
    def noise_score(self) -> int:
        """Total correct summed over all levels (the paper's noise score)."""
        return sum(self.correct)

    @property
    def mean_accuracy(self) -> float:
        """Accuracy over all levels together, in [0, 1]."""
        return self.noise_score / (self.total * len(self.levels)) if self.levels else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data (an infinite level is written as the string "inf")."""
        return {
            "kind": self.kind,
            "levels": [v if math.isfinite(v) else str(v) for v in self.levels],
            "accuracies": list(self.accuracies),
            "correct": list(self.correct),
            "total": self.total,
            "seed": self.seed,
            "noise_score": self.noise_score,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NoiseCurve":
        """Inverse of `to_dict`; ``noise_score`` is derived, and checked when present."""
        data = dict(data)
        score = data.pop("noise_score", None)
        known = {"kind", "levels", "accuracies", "correct", "total", "seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"noise curve: unknown key(s) {unknown}; known keys are {sorted(known | {'noise_score'})}")
        curve = cls(
            kind=str(data["kind"]),
            levels=tuple(float(v) for v in data["levels"]),
            accuracies=tuple(data["accuracies"]),
            correct=tuple(data["correct"]),
            total=int(data["total"]),
            seed=int(data.get("seed", 0)),
        )
        if score is not None and int(score) != curve.noise_score:
            raise ValueError(f"noise_score={score!r} does not match the sum of correct ({curve.noise_score})")
        return curve


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return fallback


def noise_curve(
    model: nn.Module,
    split: DataSplit,
    featurize: Callable[[Tensor], Tensor],
    kind: str = "mnist-pixels",
    levels: Sequence[float] | None = None,
    seed: int = 0,
    batch_size: int = 1000,
) -> NoiseCurve:
    """Accuracy of ``model`` on ``split`` at each noise level of ``kind`` (default: its levels).

    Runs in eval mode under ``torch.inference_mode()`` and restores the model's training flag.
    The clean level uses ``split.inputs`` as cached; other levels featurize the noisy raw signal.
    Noise for batch ``b`` comes from ``generator(seed, "noise", kind, b)``, so it depends on
    ``seed``, ``kind`` and ``batch_size`` only: identical for every network scored alike.
    """
    noise = get_noise(kind)
    levels = tuple(float(v) for v in (noise.levels if levels is None else levels))
    if not levels:
        raise ValueError("levels: give at least one noise level")
    for level in levels:
        noise.check_level(level)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be >= 1")
    n = len(split)
    if n == 0:
        raise ValueError("split is empty: nothing to score")
    noise.check_data(split.signal(0, 1))

    device = _model_device(model, split.inputs.device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    correct = torch.zeros(len(levels), dtype=torch.int64, device=device)
    try:
        with torch.inference_mode():
            for b, lo in enumerate(range(0, n, batch_size)):
                hi = min(lo + batch_size, n)
                targets = split.targets[lo:hi].to(device)
                noisy = None
                for i, level in enumerate(levels):
                    if noise.is_clean(level):
                        x = split.inputs[lo:hi]
                    else:
                        if noisy is None:  # draw lazily: an all-clean curve draws nothing
                            noisy = noise.sampler(split.signal(lo, hi), make_generator(seed, "noise", kind, b))
                        x = featurize(noisy(level))
                    pred = model(x.to(device)).argmax(dim=1)
                    correct[i] += (pred == targets).sum()
    finally:
        model.train(was_training)

    counts = tuple(int(c) for c in correct.tolist())
    curve = NoiseCurve(kind, levels, tuple(c / n for c in counts), counts, n, seed)
    log.debug(
        "noise curve %s (seed %d): score %d over %d levels x %d samples in %.2fs",
        kind, seed, curve.noise_score, len(levels), n, time.perf_counter() - start,
    )
    return curve
