"""The configs of one experiment (network, recipe, data, noise, seed): frozen, validated against
each other and the dataset facts at construction, and importable without torch.

`sparsity.experiment` runs them; its module re-exports these names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .configs import check_known_keys
from .data.config import DataConfig
from .facts import dataset_facts, noise_facts
from .network_spec import NetworkSpec
from .recipe import Recipe

__all__ = ["NoiseConfig", "ExperimentConfig"]


@dataclass(frozen=True)
class NoiseConfig:
    """Which noise the network is scored on. ``seed`` is shared by every network compared (every
    trial of a sweep), so all of them see identical noisy inputs."""

    kind: str | None = None  # None: the paper's protocol for the dataset
    levels: tuple[float, ...] | None = None  # None: the kind's default levels (the paper's 11)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind is not None:
            noise_facts(self.kind)  # raises ValueError listing the kinds
        if self.levels is not None:
            object.__setattr__(self, "levels", tuple(float(v) for v in self.levels))
            if not self.levels:
                raise ValueError("noise.levels: give at least one level, or null for the kind's defaults")
            if self.kind is not None:
                for level in self.levels:
                    noise_facts(self.kind).check_level(level)

    def kind_for(self, dataset: str) -> str:
        """The kind scored on ``dataset``: this config's, else the paper's for the dataset."""
        return self.kind or dataset_facts(dataset).paper_noise


@dataclass(frozen=True)
class ExperimentConfig:
    """One run: a network, its recipe, the data and the noise it is scored on, and the model seed.
    ``evaluate_test``: also score the test split (for reporting only). The network must fit the
    dataset and the noise apply to it."""

    network: NetworkSpec
    recipe: Recipe
    data: DataConfig
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    seed: int = 0
    evaluate_test: bool = True

    def __post_init__(self) -> None:
        """The network must fit the dataset, and the noise apply to it (`sparsity.facts`)."""
        facts = dataset_facts(self.data.name)
        shape, classes = facts.input_shape, self.data.num_classes
        if self.network.input_shape != shape or self.network.num_classes != classes:
            raise ValueError(
                f"network {self.network.name!r} takes input {self.network.input_shape} and {self.network.num_classes} "
                f"classes, but dataset {self.data.name!r} gives {shape} and {classes}; use a network for {self.data.name}"
            )
        if not self.data.has_validation and not self.evaluate_test:
            raise ValueError(
                "data.validation_size=0 leaves no validation split and evaluate_test is off: nothing would be "
                "scored; turn evaluate_test on or keep a validation split"
            )
        levels = self.noise.levels
        kind = self.noise.kind_for(self.data.name)
        facts.check_noise(kind)
        for level in levels or ():
            noise_facts(kind).check_level(level)

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.to_dict(),
            "recipe": self.recipe.to_dict(),
            "data": self.data.to_dict(),
            "noise": dataclasses.asdict(self.noise),
            "seed": self.seed,
            "evaluate_test": self.evaluate_test,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExperimentConfig":
        check_known_keys("experiment", data, {"network", "recipe", "data", "noise", "seed", "evaluate_test"})
        return cls(
            network=NetworkSpec.from_dict(data["network"]),
            recipe=Recipe.from_dict(data["recipe"]),
            data=DataConfig.from_dict(data["data"]),
            noise=NoiseConfig(**(data.get("noise") or {})),
            seed=int(data.get("seed", 0)),
            evaluate_test=bool(data.get("evaluate_test", True)),
        )
