"""`NetworkSpec`: one frozen description for every CNN and MLP in the paper (no torch here).

A `NetworkSpec` is frozen and validated at construction: shapes are worked through every layer,
and bad settings raise ``ValueError`` naming the field (``conv[1].percent_on``), the value and the
rule. Dense and sparse networks are the same description: ``percent_on=1.0`` means ReLU,
``weight_density=1.0`` means dense weights. `sparsity.network.build_network` makes the module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .configs import check_known_keys, field_names
from .counts import in_unit_interval, k_for, k_inference_for, nonzero_per_unit

__all__ = [
    "KWinnersSettings",
    "ConvLayer",
    "LinearLayer",
    "NetworkSpec",
    "LayerSummary",
]


def _check(cond: bool, field_name: str, value: Any, rule: str) -> None:
    if not cond:
        raise ValueError(f"{field_name}={value!r}: {rule}")


def _check_unit_interval(field_name: str, value: float, what: str) -> None:
    _check(in_unit_interval(value), field_name, value, f"must be in (0, 1] ({what})")


@dataclass(frozen=True)
class KWinnersSettings:
    """Settings shared by every k-winners layer of a network (the paper uses one set per net)."""

    k_inference_factor: float = 1.5
    boost_strength: float = 1.5
    boost_strength_factor: float = 0.9
    duty_cycle_period: int = 1000
    break_ties: bool = False

    def __post_init__(self) -> None:
        _check(self.k_inference_factor > 0, "kwinners.k_inference_factor", self.k_inference_factor, "must be > 0")
        _check(self.boost_strength >= 0, "kwinners.boost_strength", self.boost_strength, "must be >= 0 (0 = off)")
        _check(
            0 < self.boost_strength_factor <= 1,
            "kwinners.boost_strength_factor",
            self.boost_strength_factor,
            "must be in (0, 1] (1 = no decay)",
        )
        _check(
            isinstance(self.duty_cycle_period, int) and self.duty_cycle_period >= 1,
            "kwinners.duty_cycle_period",
            self.duty_cycle_period,
            "must be a positive integer number of samples",
        )


@dataclass(frozen=True)
class ConvLayer:
    """Conv2d -> (BatchNorm2d) -> MaxPool2d(pool) -> k-winners over the pooled C*H*W (or ReLU)."""

    channels: int
    kernel_size: int = 5
    stride: int = 1
    padding: int = 0
    pool: int = 2
    percent_on: float = 1.0
    weight_density: float = 1.0
    local: bool = False


@dataclass(frozen=True)
class LinearLayer:
    """Linear -> (BatchNorm1d) -> (Dropout) -> k-winners (or ReLU)."""

    units: int
    percent_on: float = 1.0
    weight_density: float = 1.0
    dropout: float = 0.0


@dataclass(frozen=True)
class LayerSummary:
    """What one layer of a built network holds: shapes, k, and weight counts."""

    name: str
    kind: str
    out_shape: tuple[int, ...]
    units: int  # units k-winners chooses among (C*H*W for a global 2-D layer, C for local)
    activation: str
    k: int | None
    k_inference: int | None
    weight_density: float
    weights: int
    nonzero_weights: int
    params: int


@dataclass(frozen=True)
class NetworkSpec:
    """A CNN or MLP: conv layers, then hidden linear layers, then a linear classifier."""

    input_shape: tuple[int, int, int]
    num_classes: int
    conv: tuple[ConvLayer, ...] = ()
    linear: tuple[LinearLayer, ...] = ()
    batch_norm: bool = False
    kwinners: KWinnersSettings = field(default_factory=KWinnersSettings)
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, "conv", tuple(self.conv))
        object.__setattr__(self, "linear", tuple(self.linear))
        _check(
            len(self.input_shape) == 3 and all(v > 0 for v in self.input_shape),
            "input_shape",
            self.input_shape,
            "must be (channels, height, width), all positive",
        )
        _check(self.num_classes >= 2, "num_classes", self.num_classes, "must be at least 2")
        self.layer_summaries()  # works every shape through and validates every layer

    # -- derived facts -------------------------------------------------------------------------

    @property
    def is_dense(self) -> bool:
        layers = (*self.conv, *self.linear)
        return all(l.percent_on == 1.0 and l.weight_density == 1.0 for l in layers)

    def layer_summaries(self) -> list[LayerSummary]:
        """Shapes, k and weight counts of every layer; raises ValueError on any bad setting."""
        out: list[LayerSummary] = []
        c, h, w = self.input_shape
        for i, layer in enumerate(self.conv):
            f = f"conv[{i}]"
            _check(isinstance(layer, ConvLayer), f, layer, "must be a ConvLayer")
            _check(layer.channels >= 1, f"{f}.channels", layer.channels, "must be >= 1")
            _check(layer.kernel_size >= 1, f"{f}.kernel_size", layer.kernel_size, "must be >= 1")
            _check(layer.stride >= 1, f"{f}.stride", layer.stride, "must be >= 1")
            _check(layer.padding >= 0, f"{f}.padding", layer.padding, "must be >= 0")
            _check(layer.pool >= 1, f"{f}.pool", layer.pool, "must be >= 1 (1 = no pooling)")
            ch = (h + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
            cw = (w + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
            _check(
                ch >= 1 and cw >= 1,
                f"{f}.kernel_size",
                layer.kernel_size,
                f"does not fit its {h}x{w} input (padding {layer.padding}); use a smaller kernel or fewer layers",
            )
            ph, pw = ch // layer.pool, cw // layer.pool
            _check(
                ph >= 1 and pw >= 1,
                f"{f}.pool",
                layer.pool,
                f"does not fit the {ch}x{cw} convolution output; use a smaller pool or fewer layers",
            )
            _check_unit_interval(f"{f}.percent_on", layer.percent_on, "1.0 means ReLU")
            _check_unit_interval(f"{f}.weight_density", layer.weight_density, "1.0 means dense")
            fan_in = c * layer.kernel_size**2
            nnz = self._nonzero(f, layer.weight_density, fan_in)
            units = layer.channels if layer.local else layer.channels * ph * pw
            k, k_inf = self._k(f, layer.percent_on, units, one_d=False)
            weights = layer.channels * fan_in
            out.append(
                LayerSummary(
                    name=f, kind="conv", out_shape=(layer.channels, ph, pw), units=units,
                    activation="relu" if k is None else ("kwinners2d-local" if layer.local else "kwinners2d"),
                    k=k, k_inference=k_inf, weight_density=layer.weight_density, weights=weights,
                    nonzero_weights=nnz * layer.channels, params=weights + layer.channels,
                )
            )
            c, h, w = layer.channels, ph, pw
        n_in = c * h * w
        for i, layer in enumerate(self.linear):
            f = f"linear[{i}]"
            _check(isinstance(layer, LinearLayer), f, layer, "must be a LinearLayer")
            _check(layer.units >= 1, f"{f}.units", layer.units, "must be >= 1")
            _check_unit_interval(f"{f}.percent_on", layer.percent_on, "1.0 means ReLU")
            _check_unit_interval(f"{f}.weight_density", layer.weight_density, "1.0 means dense")
            _check(0.0 <= layer.dropout < 1.0, f"{f}.dropout", layer.dropout, "must be in [0, 1)")
            nnz = self._nonzero(f, layer.weight_density, n_in)
            k, k_inf = self._k(f, layer.percent_on, layer.units, one_d=True)
            weights = layer.units * n_in
            out.append(
                LayerSummary(
                    name=f, kind="linear", out_shape=(layer.units,), units=layer.units,
                    activation="relu" if k is None else "kwinners", k=k, k_inference=k_inf,
                    weight_density=layer.weight_density, weights=weights, nonzero_weights=nnz * layer.units,
                    params=weights + layer.units,
                )
            )
            n_in = layer.units
        weights = self.num_classes * n_in
        out.append(
            LayerSummary(
                name="output", kind="linear", out_shape=(self.num_classes,), units=self.num_classes,
                activation="logits", k=None, k_inference=None, weight_density=1.0, weights=weights,
                nonzero_weights=weights, params=weights + self.num_classes,
            )
        )
        return out

    @staticmethod
    def _nonzero(f: str, density: float, fan_in: int) -> int:
        try:
            return nonzero_per_unit(density, fan_in)
        except ValueError as e:
            raise ValueError(f"{f}.{e}") from None

    def _k(self, f: str, percent_on: float, units: int, *, one_d: bool) -> tuple[int | None, int | None]:
        """(k, k_inference) of a k-winners layer, or (None, None) for ReLU (percent_on = 1)."""
        if percent_on >= 1.0:
            return None, None
        factor = self.kwinners.k_inference_factor
        try:
            return k_for(units, percent_on), k_inference_for(units, percent_on, factor, one_d=one_d)
        except ValueError as e:
            raise ValueError(f"{f}.{e}") from None

    @property
    def num_params(self) -> int:
        return sum(s.params for s in self.layer_summaries())

    @property
    def num_nonzero_params(self) -> int:
        """Parameters that can be nonzero: masked weights excluded, biases included."""
        return sum(s.params - s.weights + s.nonzero_weights for s in self.layer_summaries())

    # -- conversion at the edges ---------------------------------------------------------------

    def replace(self, **changes: Any) -> "NetworkSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetworkSpec":
        """Strict inverse of `to_dict`: unknown keys raise ValueError naming the key."""
        data = dict(data)
        check_known_keys("network", data, field_names(cls))
        conv = tuple(_make(ConvLayer, f"conv[{i}]", d) for i, d in enumerate(data.pop("conv", ()) or ()))
        linear = tuple(_make(LinearLayer, f"linear[{i}]", d) for i, d in enumerate(data.pop("linear", ()) or ()))
        kw = _make(KWinnersSettings, "kwinners", data.pop("kwinners", {}) or {})
        if "input_shape" in data:
            data["input_shape"] = tuple(data["input_shape"])
        return cls(conv=conv, linear=linear, kwinners=kw, **data)


def _make(cls: type, where: str, data: Any) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}={data!r}: must be a mapping of {cls.__name__} fields")
    check_known_keys(where, data, field_names(cls))
    return cls(**data)
