"""Weights on disk, bounded: the tensors a `NetworkSpec` implies, a size cap, and safetensors files.

A model handed over as a network description (``config.yaml``, ``network.json``) and its weights is
checked before anything is built:

* `check_size(spec)`: the bytes the description's tensors would take, against a cap (default 4 GiB,
  ``$SPARSE_SWEEPS_MAX_MODEL_BYTES`` raises it). A description that names 596 TiB of parameters is
  refused by arithmetic on its integers, before a byte is allocated.
* `state_layout(spec)`: name -> (shape, dtype) of every tensor of the built network's ``state_dict``,
  worked out from the description alone; `check_state` compares a file's tensors with it (names,
  shapes, dtypes) and refuses any difference in one line.
* `save_weights` / `load_weights`: ``weights.safetensors`` (read by any safetensors library, no
  pickle; its header is checked against the description before the tensors are read), or an older
  ``weights.pt`` (a torch archive read with ``weights_only=True``, checked after reading, before
  building).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from .errors import UserError
from .network_spec import NetworkSpec

__all__ = [
    "ModelSizeError",
    "WeightsMismatchError",
    "MAX_MODEL_BYTES_ENV",
    "DEFAULT_MAX_MODEL_BYTES",
    "max_model_bytes",
    "state_layout",
    "model_bytes",
    "check_size",
    "check_state",
    "save_weights",
    "load_weights",
    "SAFETENSORS",
    "LEGACY_WEIGHTS",
]

MAX_MODEL_BYTES_ENV = "SPARSE_SWEEPS_MAX_MODEL_BYTES"
DEFAULT_MAX_MODEL_BYTES = 4 * 2**30  # 4 GiB: the paper's networks take under 10 MB
SAFETENSORS = "weights.safetensors"
LEGACY_WEIGHTS = "weights.pt"

_BYTES = {"float32": 4, "int64": 8, "bool": 1}


class ModelSizeError(UserError):
    """A network description whose tensors would exceed the size cap."""


class WeightsMismatchError(UserError):
    """A weights file whose tensors differ from what the network description implies."""


def max_model_bytes() -> int:
    """The size cap in bytes: ``$SPARSE_SWEEPS_MAX_MODEL_BYTES`` if set, else 4 GiB."""
    raw = os.environ.get(MAX_MODEL_BYTES_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_MODEL_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"${MAX_MODEL_BYTES_ENV}={raw!r}: must be a positive whole number of bytes, e.g. 8589934592 for 8 GiB")
    return value


def _kwinners(prefix: str, units: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {f"{prefix}.duty_cycle": ((units,), "float32"), f"{prefix}.boost_strength": ((), "float32"),
            f"{prefix}.samples_seen": ((), "int64")}


def _weights(prefix: str, shape: tuple[int, ...], sparse: bool) -> dict[str, tuple[tuple[int, ...], str]]:
    inner = f"{prefix}.module" if sparse else prefix
    out = {f"{inner}.weight": (shape, "float32"), f"{inner}.bias": ((shape[0],), "float32")}
    if sparse:
        out[f"{prefix}.weight_mask"] = (shape, "bool")
    return out


def _bn(prefix: str, units: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {f"{prefix}.running_mean": ((units,), "float32"), f"{prefix}.running_var": ((units,), "float32"),
            f"{prefix}.num_batches_tracked": ((), "int64")}


def state_layout(spec: NetworkSpec) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor of ``build_network(spec).state_dict()``: name -> (shape, dtype name), from the
    description alone (nothing is built or allocated)."""
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    summaries = spec.layer_summaries()
    c = spec.input_shape[0]
    for i, (layer, s) in enumerate(zip(spec.conv, summaries)):
        p = f"features.conv{i + 1}"
        out.update(_weights(f"{p}.conv", (layer.channels, c, layer.kernel_size, layer.kernel_size),
                            layer.weight_density < 1.0))
        if spec.batch_norm:
            out.update(_bn(f"{p}.bn", layer.channels))
        if layer.percent_on < 1.0:
            out.update(_kwinners(f"{p}.act", layer.channels))
        c = layer.channels
    n_in = math.prod(summaries[len(spec.conv) - 1].out_shape) if spec.conv else math.prod(spec.input_shape)
    for i, layer in enumerate(spec.linear):
        p = f"hidden.linear{i + 1}"
        out.update(_weights(f"{p}.linear", (layer.units, n_in), layer.weight_density < 1.0))
        if spec.batch_norm:
            out.update(_bn(f"{p}.bn", layer.units))
        if layer.percent_on < 1.0:
            out.update(_kwinners(f"{p}.act", layer.units))
        n_in = layer.units
    out.update(_weights("output", (spec.num_classes, n_in), False))
    return out


def model_bytes(spec: NetworkSpec) -> int:
    """Bytes of every tensor the description implies (weights, masks, buffers)."""
    return sum(math.prod(shape) * _BYTES[dtype] for shape, dtype in state_layout(spec).values())


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def check_size(spec: NetworkSpec, where: str = "network", cap: int | None = None) -> int:
    """The description's size in bytes; `ModelSizeError` (one line, naming the cap and how to raise
    it) when it exceeds ``cap`` (default `max_model_bytes`)."""
    cap = max_model_bytes() if cap is None else cap
    size = model_bytes(spec)
    if size > cap:
        raise ModelSizeError(
            f"{where}: refused: its tensors would take {_human(size)} ({spec.num_params:,} parameters), over the "
            f"{_human(cap)} cap; if the model is meant to be that large, raise the cap with "
            f"${MAX_MODEL_BYTES_ENV}=BYTES")
    return size


def check_state(spec: NetworkSpec, found: Mapping[str, tuple[tuple[int, ...], str]], where: str) -> None:
    """Refuse (`WeightsMismatchError`, one line) a file whose tensors (name -> (shape, dtype name))
    differ from those ``spec`` implies: a missing or extra name, a shape, a dtype."""
    expected = state_layout(spec)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else "")] if extra else [])
        raise WeightsMismatchError(f"{where}: refused: its tensors do not match the network description "
                                   f"({'; '.join(parts)}); export the model again")
    for name, (shape, dtype) in expected.items():
        got_shape, got_dtype = found[name]
        if tuple(got_shape) != shape or got_dtype != dtype:
            raise WeightsMismatchError(
                f"{where}: refused: {name} is {got_dtype}{list(got_shape)}, the network description needs "
                f"{dtype}{list(shape)}; export the model again")


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


_SAFETENSORS_DTYPES = {"F32": "float32", "I64": "int64", "BOOL": "bool"}


def save_weights(model: Any, path: str | Path) -> Path:
    """Write ``model``'s state_dict as safetensors (contiguous CPU copies; no pickle)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})
    return Path(path)


def _safetensors_layout(path: Path, where: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """name -> (shape, dtype) from the file's JSON header alone (no tensor read)."""
    import json
    import struct

    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * 2**20:
                raise ValueError(f"a {n:,}-byte header")
            header = json.loads(f.read(n))
        return {k: (tuple(int(d) for d in v["shape"]), _SAFETENSORS_DTYPES.get(v["dtype"], v["dtype"].lower()))
                for k, v in header.items() if k != "__metadata__"}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error) as e:
        raise WeightsMismatchError(f"{where}: refused: not a readable safetensors file ({e})") from None


def load_weights(path: str | Path, spec: NetworkSpec, where: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    """The state_dict in ``path`` (``.safetensors``, or an older tensors-only ``.pt``), checked against
    ``spec`` (size cap, names, shapes, dtypes) before it is returned; nothing is built here."""
    path = Path(path)
    where = where or str(path)
    check_size(spec, where)
    if path.suffix == ".safetensors":
        check_state(spec, _safetensors_layout(path, where), where)  # the header, before any tensor is read
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    cap = max_model_bytes()
    if path.stat().st_size > 2 * cap:
        raise ModelSizeError(f"{where}: refused: the file takes {_human(path.stat().st_size)}, over twice the "
                             f"{_human(cap)} cap; raise the cap with ${MAX_MODEL_BYTES_ENV}=BYTES if that is meant")
    from .train import load_tensors

    state = load_tensors(path, map_location=map_location)
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsMismatchError(f"{where}: refused: not a state_dict of tensors")
    check_state(spec, {k: (tuple(v.shape), _dtype_name(v.dtype)) for k, v in state.items()}, where)
    return state
