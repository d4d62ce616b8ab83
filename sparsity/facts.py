"""What is fixed about each dataset and each noise kind: one table, no torch.

Everything that asks "what shape is a GSC input?", "how many classes has MNIST?", "does this
noise apply to this dataset?" or "which levels does a kind score by default?" reads it here: the
loaders (`sparsity.data`), the presets, the configs (`DataConfig`, `NoiseConfig`,
`ExperimentConfig`), the noise protocols (`sparsity.noise`) and the sweep service. Importing it
costs nothing (no torch), so a spec is validated against these facts before anything heavy loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Literal, Mapping

__all__ = [
    "DataKind",
    "NoiseFacts",
    "DatasetFacts",
    "NOISE_FACTS",
    "DATASETS",
    "DATASET_NAMES",
    "PAPER_LEVELS",
    "SNR_LEVELS",
    "noise_facts",
    "dataset_facts",
]

DataKind = Literal["image", "audio"]

PAPER_LEVELS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(11))  # 0.00, 0.05, ..., 0.50
SNR_LEVELS: tuple[float, ...] = (math.inf, 30.0, 25.0, 20.0, 15.0, 10.0, 5.0, 0.0, -5.0, -10.0, -15.0)


def _choices(names) -> str:
    return ", ".join(repr(n) for n in names)


# -- noise kinds -----------------------------------------------------------------------------------


def _unit_fraction(level: float) -> bool:
    return 0.0 <= level <= 1.0


def _non_negative(level: float) -> bool:
    return level >= 0 and math.isfinite(level)


def _snr(level: float) -> bool:
    return level == math.inf or math.isfinite(level)


@dataclass(frozen=True)
class NoiseFacts:
    """A noise kind's fixed facts: the data it applies to, its default levels, which level is
    clean, and the rule a level must follow. (How the noise is drawn lives in `sparsity.noise`.)"""

    name: str
    data: DataKind
    levels: tuple[float, ...]
    description: str
    clean_level: float = 0.0
    level_ok: Callable[[float], bool] = _unit_fraction
    level_rule: str = "must be a fraction in [0, 1]"

    def is_clean(self, level: float) -> bool:
        return level == self.clean_level

    def check_level(self, level: float) -> None:
        """Raise ValueError naming the level, the rule and the kind when ``level`` breaks the rule."""
        if (
            not isinstance(level, (int, float))
            or math.isnan(level)
            or not self.level_ok(float(level))
        ):
            raise ValueError(f"level={level!r}: {self.level_rule} for noise kind {self.name!r}")


NOISE_FACTS: Mapping[str, NoiseFacts] = MappingProxyType(
    {
        "mnist-pixels": NoiseFacts(
            "mnist-pixels", "image", PAPER_LEVELS,
            "paper MNIST: int(H*W*level) distinct random pixels per image set to mean + 2 std (0.7469)",
        ),
        "gsc-white": NoiseFacts(
            "gsc-white", "audio", PAPER_LEVELS,
            "paper GSC: (1 - level) * waveform + level * U(-1, 1)",
        ),
        "gaussian": NoiseFacts(
            "gaussian", "image", PAPER_LEVELS,
            "pixels + N(0, level^2) clipped to [0, 1]; level is the std in pixel units",
            level_ok=_non_negative, level_rule="must be a std >= 0",
        ),
        "salt-pepper": NoiseFacts(
            "salt-pepper", "image", PAPER_LEVELS,
            "int(H*W*level) random pixels per image set to 0 or 1 with equal probability",
        ),
        "audio-snr": NoiseFacts(
            "audio-snr", "audio", SNR_LEVELS,
            "white U(-1, 1) noise added at an SNR of `level` dB (torchaudio add_noise); "
            "lower is noisier, inf is clean",
            clean_level=math.inf, level_ok=_snr, level_rule="must be an SNR in dB (a number, or inf for clean)",
        ),
    }
)


def noise_facts(name: str) -> NoiseFacts:
    """The facts of noise kind ``name``; ValueError naming the choices if there is none."""
    try:
        return NOISE_FACTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"noise kind {name!r} is unknown; choose one of {sorted(NOISE_FACTS)}") from None


# -- datasets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset's fixed facts. ``class_sets`` names the class lists a dataset offers (GSC: which
    ten words, plus unknown and silence); a dataset with one fixed list has a single set named
    ``default_class_set`` = None and takes no ``class_set`` setting."""

    name: str
    data: DataKind
    input_shape: tuple[int, int, int]  # (channels, height, width) of a model input
    class_sets: Mapping[str | None, tuple[str, ...]]
    default_class_set: str | None
    paper_noise: str  # the paper's noise protocol: what a sweep scores unless told otherwise
    train_size: int | None = None  # samples of the official training split, when fixed (MNIST)
    noise_kinds: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_sets", MappingProxyType(dict(self.class_sets)))
        kinds = tuple(k for k, f in NOISE_FACTS.items() if f.data == self.data)
        object.__setattr__(self, "noise_kinds", kinds)

    @property
    def has_class_sets(self) -> bool:
        return self.default_class_set is not None

    def classes(self, class_set: str | None = None) -> tuple[str, ...]:
        """Class names under ``class_set`` (None: the default); ValueError naming the choices."""
        key = self.default_class_set if class_set is None else class_set
        if key not in self.class_sets:
            if not self.has_class_sets:
                raise ValueError(f"class_set={class_set!r}: {self.name} has one fixed set of classes; omit class_set")
            raise ValueError(f"class_set={class_set!r}: choose one of {_choices(self.class_sets)}")
        return self.class_sets[key]

    def num_classes(self, class_set: str | None = None) -> int:
        return len(self.classes(class_set))

    def check_noise(self, kind: str) -> None:
        """Raise ValueError when noise ``kind`` is unknown or applies to another kind of data."""
        facts = noise_facts(kind)
        if facts.data != self.data:
            raise ValueError(
                f"noise kind {kind!r} applies to {facts.data} data, not {self.name} ({self.data}); "
                f"choose one of {list(self.noise_kinds)}"
            )


_GSC_WORDS = {
    "keywords": ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"),
    "digits": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}

DATASETS: Mapping[str, DatasetFacts] = MappingProxyType(
    {
        "mnist": DatasetFacts(
            name="mnist", data="image", input_shape=(1, 28, 28),
            class_sets={None: tuple(str(d) for d in range(10))}, default_class_set=None,
            paper_noise="mnist-pixels", train_size=60_000,
        ),
        "gsc": DatasetFacts(
            name="gsc", data="audio", input_shape=(1, 32, 32),  # 32 log-mel bands x 32 frames
            class_sets={k: (*words, "unknown", "silence") for k, words in _GSC_WORDS.items()},
            default_class_set="keywords", paper_noise="gsc-white",
        ),
    }
)
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


def dataset_facts(name: str) -> DatasetFacts:
    """The facts of dataset ``name``; ValueError naming the choices if there is none."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"name={name!r}: unknown dataset; choose one of {_choices(DATASET_NAMES)}") from None
