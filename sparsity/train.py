"""One training loop for every network: the paper's SGD + StepLR recipe, boosting decay, re-zeroing.

Each epoch: cut batches by index from a permutation drawn from (seed, "data-order", epoch), take
SGD steps, re-zero the sparse weights after every step, decay the boost strength, evaluate on
the validation split, report an `EpochResult` to ``on_epoch`` and (optionally) write a checkpoint.
Every random stream is a function of (seed, purpose, epoch), so a run resumed from the checkpoint
of epoch e gives the same final numbers as an uninterrupted one.

On the CPU that holds as is. On CUDA some kernels (cuDNN's algorithm choice, atomics in
convolution backward, cuBLAS's workspace) vary run to run; ``train(..., deterministic=True)``, or
``SPARSE_SWEEPS_DETERMINISTIC=1`` in the environment, turns on torch's deterministic algorithms
(cuDNN deterministic, no benchmark autotuning, ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when unset)
for the run, and restores the previous settings after it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from .data.base import DataSplit, Dataset
from .errors import UserError
from .kwinners import update_boost_strength
from .network import NetworkSpec, SparseNet, build_network
from .recipe import Recipe
from .seeding import derive_seed, generator
from .sparse_weights import sparse_weight_modules

__all__ = [
    "EpochResult",
    "NonFiniteLossError",
    "TrainResult",
    "default_device",
    "DETERMINISTIC_ENV",
    "deterministic_algorithms",
    "prepare_model",
    "train_step",
    "make_optimizer",
    "train_epoch",
    "evaluate",
    "train",
]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
DETERMINISTIC_ENV = "SPARSE_SWEEPS_DETERMINISTIC"  # "1": train() runs with deterministic algorithms
_NAN_CHECK_EVERY = 50  # steps between finiteness checks (each check is a host sync on a GPU)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message says where and what to change."""


class UnsafeCheckpointError(UserError):
    """A checkpoint or weights file holds more than tensors, numbers, strings, lists and dicts:
    loading it could run code, so it is refused unread."""


def load_tensors(path: str | Path, map_location: Any = None) -> Any:
    """Load a checkpoint or weights file written by `torch.save` with ``weights_only=True``: only
    tensors, numbers, strings, lists, tuples and dicts are rebuilt, nothing else is unpickled (a
    checkpoint restored from shared Ray storage, S3 or GCS is not trusted to run code)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))  # torch names the refused global
        reason = f"it names {found.group(1)}" if found else "not a tensors-only file"
        raise UnsafeCheckpointError(
            f"{path}: refused to load it: it holds objects other than tensors, numbers, strings, lists and "
            f"dicts ({reason}), which could run code when unpickled; delete the file (a trial then starts "
            f"afresh) or restore a checkpoint written by this project"
        ) from None


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based: epochs completed
    train_loss: float
    train_accuracy: float
    val_loss: float | None  # None without a validation split (the paper's protocol)
    val_accuracy: float | None
    lr: float
    boost_strength: float | None  # mean over k-winners layers, None for a dense net
    seconds: float
    samples_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    model: SparseNet
    history: list[EpochResult]
    resumed_from_epoch: int  # 0 when started fresh

    @property
    def final(self) -> EpochResult:
        return self.history[-1]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _deterministic_from_env() -> bool:
    value = os.environ.get(DETERMINISTIC_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise UserError(f"{DETERMINISTIC_ENV}={value!r}: set it to 1 (deterministic CUDA kernels) or 0, or unset it")


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Within the block, torch uses deterministic algorithms only (an op without one raises),
    cuDNN picks deterministic kernels without autotuning, and cuBLAS gets a fixed workspace
    (``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless set; it must be set before the process first
    uses cuBLAS, so a process that wants it should enter this block before any CUDA work). The
    previous settings come back on exit. ``enabled=False`` changes nothing."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


@torch.inference_mode()
def evaluate(model: nn.Module, split: DataSplit, batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``split`` in eval mode (restores the mode)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=split.inputs.device)
    correct = torch.zeros((), dtype=torch.long, device=split.inputs.device)
    for start in range(0, len(split), batch_size):
        x = split.inputs[start : start + batch_size]
        y = split.targets[start : start + batch_size]
        logits = model(x)
        loss_sum += nnf.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(split), 1)
    return float(loss_sum) / n, int(correct) / n


def _mean_boost(model: nn.Module) -> float | None:
    values = [float(m.boost_strength) for m in model.modules() if hasattr(m, "duty_cycle")]
    return sum(values) / len(values) if values else None


def prepare_model(spec: NetworkSpec, seed: int, device: torch.device) -> SparseNet:
    """The network built from ``seed`` on ``device``, in the memory format that trains fastest there."""
    model = build_network(spec, seed=seed).to(device)
    if device.type == "cpu" and spec.conv:
        # Channels-last convolutions and max-pooling: about 1.45x faster per Sparse CNN-2 step on
        # the CPU (benchmarks/bench_throughput.py); results stay deterministic for a seed.
        model = model.to(memory_format=torch.channels_last)
    return model


def make_optimizer(model: nn.Module, recipe: Recipe) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=recipe.lr_gamma)


def _save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_step(model: nn.Module, opt: torch.optim.Optimizer, sparse: list, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """One SGD step, then re-zero of the sparse weights (``sparse``: `sparse_weight_modules(model)`)."""
    logits = model(x)
    loss = nnf.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for m in sparse:
        m.rezero_weights()
    return logits, loss


def train_epoch(
    model: SparseNet,
    opt: torch.optim.Optimizer,
    split: DataSplit,
    inputs: Tensor,
    batch_size: int,
    order: Tensor,
    epoch: int,
    lr: float,
) -> tuple[float, float]:
    sparse = sparse_weight_modules(model)
    model.train()
    loss_sum = torch.zeros((), device=inputs.device)
    correct = torch.zeros((), dtype=torch.long, device=inputs.device)
    n = len(order)
    for step, start in enumerate(range(0, n, batch_size)):
        idx = order[start : start + batch_size]
        x, y = inputs[idx], split.targets[idx]
        logits, loss = train_step(model, opt, sparse, x, y)
        with torch.no_grad():
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == y).sum()
        if step % _NAN_CHECK_EVERY == 0 and not torch.isfinite(loss_sum):
            _raise_non_finite(epoch, step, lr)
    if not torch.isfinite(loss_sum):
        _raise_non_finite(epoch, None, lr)
    return float(loss_sum) / n, int(correct) / n


def _raise_non_finite(epoch: int, step: int | None, lr: float) -> None:
    where = f"epoch {epoch + 1}" + (f", step {step}" if step is not None else "")
    raise NonFiniteLossError(
        f"training loss is NaN or infinite at {where} (learning rate {lr:.3g}); "
        f"lower recipe.lr or check the inputs for NaN. Checkpoints of finished epochs are kept."
    )


def train(
    spec: NetworkSpec,
    recipe: Recipe,
    data: Dataset,
    *,
    seed: int = 0,
    device: torch.device | str | None = None,
    threads: int | None = 1,
    on_epoch: Callable[[EpochResult, SparseNet], None] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    deterministic: bool | None = None,
) -> TrainResult:
    """Train the network ``spec`` with ``recipe`` on ``data``; returns the model and per-epoch metrics.

    ``device`` defaults to CUDA when present. On the CPU ``threads`` sets torch's thread count
    (1 by default: parallel trials on one machine run far faster that way; None leaves it).
    ``on_epoch(result, model)`` is called after every epoch, after the checkpoint is written.
    With ``checkpoint_path``, each epoch's full state (model, optimizer, schedule, epoch, history)
    is written there atomically, and an existing checkpoint is resumed from.
    ``deterministic`` (default: ``$SPARSE_SWEEPS_DETERMINISTIC``, off) runs the whole training
    inside `deterministic_algorithms`: bit-identical reruns on CUDA, at some cost in speed.
    """
    enabled = _deterministic_from_env() if deterministic is None else bool(deterministic)
    with deterministic_algorithms(enabled):
        return _train(spec, recipe, data, seed=seed, device=device, threads=threads, on_epoch=on_epoch,
                      checkpoint_path=checkpoint_path)


def _train(
    spec: NetworkSpec,
    recipe: Recipe,
    data: Dataset,
    *,
    seed: int,
    device: torch.device | str | None,
    threads: int | None,
    on_epoch: Callable[[EpochResult, SparseNet], None] | None,
    checkpoint_path: str | os.PathLike | None,
) -> TrainResult:
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    _check_fits(spec, data)
    model = prepare_model(spec, seed, device)
    opt, sched = make_optimizer(model, recipe)
    data = data.to(device)
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    history = _resume(ckpt, spec, recipe, seed, model, opt, sched) if ckpt is not None and ckpt.exists() else []
    start_epoch = len(history)

    train_split = data.train
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        # Dropout draws from the global generator: re-seed it per epoch so a resumed run matches.
        torch.manual_seed(derive_seed(seed, "dropout", epoch))
        # Augmented inputs are built a chunk at a time (the split's draws come first): one
        # epoch's extra memory is its inputs plus one chunk, however large the split.
        inputs = train_split.inputs
        if data.augment is not None:
            inputs = data.augmented_inputs(generator(seed, "augment", epoch))
        order = torch.randperm(len(train_split), generator=generator(seed, "data-order", epoch)).to(device)
        lr = opt.param_groups[0]["lr"]
        batch = recipe.batch_size_for(epoch)
        train_loss, train_acc = train_epoch(model, opt, train_split, inputs, batch, order, epoch, lr)
        sched.step()
        update_boost_strength(model)
        val_loss = val_acc = None
        if len(data.validation):
            val_loss, val_acc = evaluate(model, data.validation, recipe.eval_batch_size)
        seconds = time.perf_counter() - t0
        result = EpochResult(
            epoch=epoch + 1, train_loss=train_loss, train_accuracy=train_acc, val_loss=val_loss,
            val_accuracy=val_acc, lr=lr, boost_strength=_mean_boost(model), seconds=seconds,
            samples_per_second=len(train_split) / seconds,
        )
        history.append(result)
        log.info(
            "%s epoch %d/%d: loss %.4f, val acc %s, %.1fs",
            spec.name, epoch + 1, recipe.epochs, train_loss, "-" if val_acc is None else f"{val_acc:.4f}", seconds,
        )
        if ckpt is not None:
            _save_atomic({"version": CHECKPOINT_VERSION, "epoch": epoch + 1, "seed": seed, "network": spec.to_dict(),
                          "recipe": recipe.to_dict(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict(), "history": [h.to_dict() for h in history]}, ckpt)
        if on_epoch is not None:
            on_epoch(result, model)
    return TrainResult(model=model, history=history, resumed_from_epoch=start_epoch)


def _check_fits(spec: NetworkSpec, data: Dataset) -> None:
    if data.input_shape != spec.input_shape or data.num_classes != spec.num_classes:
        raise ValueError(
            f"network {spec.name!r} expects input {spec.input_shape} and {spec.num_classes} classes, "
            f"but dataset {data.name!r} gives {data.input_shape} and {data.num_classes}; "
            f"use a preset built for {data.name!r}"
        )


def _resume(ckpt: Path, spec: NetworkSpec, recipe: Recipe, seed: int, model: nn.Module,
            opt: torch.optim.Optimizer, sched: Any) -> list[EpochResult]:
    """Load the checkpoint's state into the model, optimizer and schedule (tensors only, never
    unpickled); returns the history of its finished epochs."""
    device = next(model.parameters()).device
    state = load_tensors(ckpt, map_location=device)
    _check_checkpoint(state, spec, recipe, seed, ckpt)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    history = [EpochResult(**h) for h in state["history"]]
    if len(history) != state["epoch"]:
        raise ValueError(f"checkpoint {ckpt} holds {len(history)} epochs of history for epoch {state['epoch']}")
    log.info("resumed %s from %s after epoch %d", spec.name, ckpt, state["epoch"])
    return history


def _check_checkpoint(state: dict, spec: NetworkSpec, recipe: Recipe, seed: int, path: Path) -> None:
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {state.get('version')!r}, expected {CHECKPOINT_VERSION}")
    mismatches = [
        name
        for name, saved, now in (
            ("network", state["network"], spec.to_dict()),
            ("recipe", state["recipe"], recipe.to_dict()),
            ("seed", state["seed"], seed),
        )
        if _normalize(saved) != _normalize(now)
    ]
    if mismatches:
        raise ValueError(
            f"checkpoint {path} was written for a different {', '.join(mismatches)}; "
            f"delete it or use another checkpoint path to start fresh"
        )


def _normalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value
