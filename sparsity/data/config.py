"""``DataConfig``: which dataset to load and how, validated on construction (no torch here);
``load_dataset`` imports the loader it needs when called."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..configs import check_known_keys, field_names
from ..facts import DATASET_NAMES, dataset_facts

if TYPE_CHECKING:
    from .base import Dataset

__all__ = ["DataConfig", "load_dataset", "DATASET_NAMES"]

# Written by earlier versions for every dataset (it was the default): read as "not set" where the
# dataset has no class sets, so their saved specs keep loading.
_OLD_DEFAULT_CLASS_SET = "keywords"


def _choices(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class DataConfig:
    """A dataset choice. ``root`` None means $SPARSE_SWEEPS_DATA; ``cache_dir`` None means
    $SPARSE_SWEEPS_CACHE. ``class_set`` applies to datasets with class sets (GSC; None: its
    default), ``validation_size`` to those with a fixed training split (MNIST); `to_dict` leaves
    out what does not apply. ``train_limit`` / ``eval_limit`` keep the first n of the (seeded,
    shuffled) splits."""

    name: str
    root: str | None = None  # a PathLike is stored as str
    class_set: str | None = None
    validation_size: int = 5000
    split_seed: int = 0
    train_limit: int | None = None
    eval_limit: int | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        facts = dataset_facts(self.name)  # raises naming the datasets
        for field in ("root", "cache_dir"):
            value = getattr(self, field)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, field, os.fspath(value))  # keep the config plain (YAML, hashing)
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{field}={value!r}: give a folder path as a string, or None for the default")
        if not facts.has_class_sets and self.class_set == _OLD_DEFAULT_CLASS_SET:
            object.__setattr__(self, "class_set", None)
        if facts.has_class_sets and self.class_set is None:
            object.__setattr__(self, "class_set", facts.default_class_set)
        facts.classes(self.class_set)  # raises naming the class sets (or that there are none)
        limit = facts.train_size or 60_000
        if not _is_int(self.validation_size) or not 0 <= self.validation_size < limit:
            raise ValueError(
                f"validation_size={self.validation_size!r}: use an integer in 0 .. {limit - 1} "
                f"(0: no validation split, train on all {limit:,})"
            )
        if not _is_int(self.split_seed):
            raise ValueError(f"split_seed={self.split_seed!r}: use an integer")
        for field in ("train_limit", "eval_limit"):
            value = getattr(self, field)
            if value is not None and (not _is_int(value) or value < 1):
                raise ValueError(f"{field}={value!r}: use None (the whole split) or an integer >= 1")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
        """Build from a mapping (e.g. YAML); unknown keys raise ValueError naming them."""
        check_known_keys("data", values, field_names(cls))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings that apply to this dataset (`from_dict` reads it back to an equal config)."""
        out = dataclasses.asdict(self)
        facts = dataset_facts(self.name)
        if not facts.has_class_sets:
            del out["class_set"]
        if facts.train_size is None:
            del out["validation_size"]
        return out

    @property
    def has_validation(self) -> bool:
        """False in the paper's protocol (validation_size 0): everything trains, nothing validates."""
        return dataset_facts(self.name).train_size is None or self.validation_size > 0

    @property
    def num_classes(self) -> int:
        return dataset_facts(self.name).num_classes(self.class_set)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return dataset_facts(self.name).input_shape


def load_dataset(config: DataConfig) -> "Dataset":
    """Load the dataset ``config`` names."""
    common = dict(
        split_seed=config.split_seed,
        train_limit=config.train_limit,
        eval_limit=config.eval_limit,
        cache_dir=config.cache_dir,
    )
    if config.name == "mnist":
        from .mnist import load_mnist

        return load_mnist(config.root, validation_size=config.validation_size, **common)
    if config.name == "gsc":
        from .gsc import load_gsc

        return load_gsc(config.root, class_set=config.class_set, **common)
    raise ValueError(f"name={config.name!r}: unknown dataset; choose one of {_choices(DATASET_NAMES)}")
