"""The training recipe (optimizer, schedule, batch sizes, epochs) and the paper's recipes per network.

SGD with StepLR (step 1 epoch) everywhere, as in the paper. Sparse nets train their first epoch
with a small batch (4 on MNIST) so boosting gets many duty-cycle updates early.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .configs import check_known_keys, field_names

__all__ = ["Recipe", "paper_recipe"]


@dataclass(frozen=True)
class Recipe:
    """How a network trains: SGD (``lr``, ``momentum``, ``weight_decay``) with StepLR, the learning rate
    multiplied by ``lr_gamma`` after every epoch; ``first_epoch_batch_size`` for the first epoch (None:
    ``batch_size``); ``eval_batch_size`` for evaluation and noise curves."""

    epochs: int = 10
    lr: float = 0.01
    lr_gamma: float = 0.8
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    first_epoch_batch_size: int | None = None  # None: same as batch_size
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        def check(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"recipe.{name}={getattr(self, name)!r}: {rule}")

        check(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "must be an integer >= 1")
        check(self.lr > 0, "lr", "must be > 0")
        check(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1] (1 = constant learning rate)")
        check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "must be an integer >= 1")
        check(
            self.first_epoch_batch_size is None
            or (isinstance(self.first_epoch_batch_size, int) and self.first_epoch_batch_size >= 1),
            "first_epoch_batch_size",
            "must be an integer >= 1, or null for batch_size",
        )
        check(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")

    def batch_size_for(self, epoch: int) -> int:
        """Batch size of ``epoch`` (0-based)."""
        if epoch == 0 and self.first_epoch_batch_size is not None:
            return self.first_epoch_batch_size
        return self.batch_size

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        check_known_keys("recipe", data, field_names(cls))
        return cls(**data)


# The MNIST recipes are the sections of the paper's own configuration file (numenta/htmpapers,
# arxiv/how_can_we_be_so_dense/projects/mnist/experiments_paper.cfg), its [DEFAULT] filled in:
# lr 0.01, gamma 0.8, momentum 0.0, batch 64, first-epoch batch = batch, 15 epochs, unless the
# section says otherwise. Of the mixed nets only SP3 and DSW set a first-epoch batch of 4; D3 and W1
# keep 64 (with 4 and momentum 0.9 they do not train). tests/test_recipe.py pins every value to
# that file. The MLPs are not the paper's: their recipes are ours (momentum 0.9 trains them
# fastest on small subsets).
_MNIST = {
    "dense-cnn1": Recipe(epochs=15, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64),
    "dense-cnn2": Recipe(epochs=15, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64),
    "sparse-cnn1": Recipe(epochs=15, lr=0.01, lr_gamma=0.8, momentum=0.0, batch_size=64, first_epoch_batch_size=4),
    "sparse-cnn2": Recipe(epochs=10, lr=0.02, lr_gamma=0.8, momentum=0.0, batch_size=64, first_epoch_batch_size=4),
    "dense-cnn2-sp3": Recipe(epochs=10, lr=0.01, lr_gamma=0.8, momentum=0.5, batch_size=64, first_epoch_batch_size=4),
    "sparse-cnn2-d3": Recipe(epochs=10, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64),
    "sparse-cnn2-w1": Recipe(epochs=10, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64),
    "sparse-cnn2-dsw": Recipe(epochs=10, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64, first_epoch_batch_size=4),
    "dense-mlp": Recipe(epochs=5, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64),
    "sparse-mlp": Recipe(epochs=5, lr=0.01, lr_gamma=0.8, momentum=0.9, batch_size=64, first_epoch_batch_size=16),
}
_GSC = {
    "dense-cnn2": Recipe(epochs=20, lr=0.01, lr_gamma=0.8, momentum=0.9, weight_decay=0.01, batch_size=64),
    "dense-cnn2-dropout": Recipe(epochs=20, lr=0.01, lr_gamma=0.8, momentum=0.9, weight_decay=0.01, batch_size=64),
    "sparse-cnn2": Recipe(epochs=30, lr=0.01, lr_gamma=0.9, momentum=0.0, weight_decay=0.01, batch_size=16),
    "super-sparse-cnn2": Recipe(epochs=25, lr=0.01, lr_gamma=0.9, momentum=0.0, weight_decay=0.01, batch_size=16),
    "dense-mlp": Recipe(epochs=10, lr=0.01, lr_gamma=0.8, momentum=0.9, weight_decay=0.01, batch_size=64),
    "sparse-mlp": Recipe(epochs=10, lr=0.01, lr_gamma=0.9, momentum=0.0, weight_decay=0.01, batch_size=16),
}
_RECIPES = {"mnist": _MNIST, "gsc": _GSC}


def paper_recipe(preset: str, dataset: str = "mnist") -> Recipe:
    """The paper's recipe for the network preset ``preset`` on ``dataset``."""
    if dataset not in _RECIPES:
        raise ValueError(f"dataset={dataset!r}: unknown dataset; choose one of {sorted(_RECIPES)}")
    table = _RECIPES[dataset]
    if preset not in table:
        raise ValueError(f"preset={preset!r}: no paper recipe for dataset {dataset!r}; choose one of {sorted(table)}")
    return table[preset]
