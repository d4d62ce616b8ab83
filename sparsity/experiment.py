"""One experiment = one network trained with one recipe on one dataset, then scored under noise.

This is what one sweep trial runs, and what ``sweeps train`` runs alone. The validation split's
noise curve is what a search optimizes; the test split's is for reporting only.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .data import DataConfig, Dataset, load_dataset
from .experiment_config import ExperimentConfig, NoiseConfig
from .network import SparseNet
from .noise import NoiseCurve, noise_curve
from .presets import preset
from .recipe import paper_recipe
from .train import EpochResult, default_device, evaluate, train

__all__ = ["NoiseConfig", "ExperimentConfig", "ExperimentResult", "run_experiment", "paper_experiment"]

log = logging.getLogger(__name__)


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    model: SparseNet
    history: list[EpochResult]
    validation_curve: NoiseCurve | None  # None without a validation split (the paper's protocol)
    test_accuracy: float | None
    test_curve: NoiseCurve | None
    seconds: float

    @property
    def val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: accuracies, noise scores and curves, per-epoch history, config."""
        return {
            "network": self.config.network.name,
            "dataset": self.config.data.name,
            "seed": self.config.seed,
            "val_accuracy": self.val_accuracy,
            "val_noise_score": None if self.validation_curve is None else self.validation_curve.noise_score,
            "test_accuracy": self.test_accuracy,
            "test_noise_score": None if self.test_curve is None else self.test_curve.noise_score,
            "validation_curve": None if self.validation_curve is None else self.validation_curve.to_dict(),
            "test_curve": None if self.test_curve is None else self.test_curve.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "seconds": self.seconds,
            "params": self.config.network.num_params,
            "nonzero_params": self.config.network.num_nonzero_params,
            "config": self.config.to_dict(),
        }


def paper_experiment(
    network: str,
    dataset: str = "mnist",
    *,
    epochs: int | None = None,
    seed: int = 0,
    data: DataConfig | None = None,
) -> ExperimentConfig:
    """The paper's network and recipe by preset name, optionally with fewer epochs."""
    recipe = paper_recipe(network, dataset)
    if epochs is not None:
        recipe = recipe.replace(epochs=epochs)
    return ExperimentConfig(
        network=preset(network, dataset), recipe=recipe, data=data or DataConfig(name=dataset), seed=seed
    )


def run_experiment(
    config: ExperimentConfig,
    *,
    dataset: Dataset | None = None,
    on_epoch: Callable[[EpochResult, SparseNet], None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    threads: int | None = 1,
) -> ExperimentResult:
    """Train ``config.network`` and score it: the validation noise curve (when there is a
    validation split), the test split if asked.

    ``dataset`` may be passed in already loaded (a sweep worker loads it once for many trials).
    """
    t0 = time.perf_counter()
    device = torch.device(device) if device is not None else default_device()
    data = dataset if dataset is not None else load_dataset(config.data)
    data = data.to(device)
    result = train(
        config.network, config.recipe, data, seed=config.seed, device=device, threads=threads,
        on_epoch=on_epoch, checkpoint_path=checkpoint_path,
    )
    kind = config.noise.kind_for(config.data.name)
    curve_args = dict(kind=kind, levels=config.noise.levels, seed=config.noise.seed,
                      batch_size=config.recipe.eval_batch_size)
    val_curve = noise_curve(result.model, data.validation, data.featurize, **curve_args) if len(data.validation) else None
    test_acc = test_curve = None
    if config.evaluate_test:
        _, test_acc = evaluate(result.model, data.test, config.recipe.eval_batch_size)
        test_curve = noise_curve(result.model, data.test, data.featurize, **curve_args)
    seconds = time.perf_counter() - t0
    log.info(
        "%s: %s%s in %.1fs",
        config.network.name,
        "no validation split" if val_curve is None
        else f"val acc {result.final.val_accuracy:.4f}, val noise score {val_curve.noise_score}",
        "" if test_curve is None else f", test acc {test_acc:.4f}, test noise score {test_curve.noise_score}",
        seconds,
    )
    return ExperimentResult(
        config=config, model=result.model, history=result.history, validation_curve=val_curve,
        test_accuracy=test_acc, test_curve=test_curve, seconds=seconds,
    )
