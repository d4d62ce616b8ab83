"""The search-space grammar: what a searched parameter's name means, and applying trial values.

A name is parsed once, when the spec is read, into a typed `Target` (where the value lands); a
trial's values are applied through those targets. Names:

  percent_on            every k-winners-capable layer (conv and hidden linear)
  percent_on.conv[i]    one conv layer;  percent_on.linear[i]   one hidden layer
  weight_density        every hidden linear layer (conv weights stay dense, as in the paper)
  weight_density.linear[i] / weight_density.conv[i]
  dropout               every hidden linear layer; dropout.linear[i]
  boost_strength, boost_strength_factor, k_inference_factor   the network's k-winners settings
  lr, momentum, weight_decay, lr_gamma                         the recipe

The value rules ((0, 1] for percent_on and weight_density, [0, 1) for dropout, k >= 1, ...) are the
network's and the recipe's own: applying a value builds a `NetworkSpec` and a `Recipe`, which
validate themselves. No torch here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from sparsity.network_spec import NetworkSpec
from sparsity.recipe import Recipe

__all__ = ["Target", "parse", "apply", "apply_params", "LAYER_ATTRS", "KWINNERS_PARAMS", "RECIPE_PARAMS", "GRAMMAR"]

LAYER_ATTRS = ("percent_on", "weight_density", "dropout")
KWINNERS_PARAMS = ("boost_strength", "boost_strength_factor", "k_inference_factor")
RECIPE_PARAMS = ("lr", "momentum", "weight_decay", "lr_gamma")
GRAMMAR = ["percent_on[.conv[i]|.linear[i]]", "weight_density[...]", "dropout[.linear[i]]",
           *KWINNERS_PARAMS, *RECIPE_PARAMS]

_LAYER_PARAM = re.compile(rf"^({'|'.join(LAYER_ATTRS)})(?:\.(conv|linear)\[(\d+)\])?$")

Home = Literal["layers", "kwinners", "recipe"]
LayerKind = Literal["conv", "linear"]


@dataclass(frozen=True)
class Target:
    """Where one parameter lands: a layer attribute (of one layer, or shared by every layer it
    applies to), a k-winners setting, or a recipe field."""

    name: str  # as written in the spec
    home: Home
    attr: str
    layer_kind: LayerKind | None = None  # with ``index``: one layer; None: shared
    index: int | None = None

    @property
    def shared(self) -> bool:
        """A layer attribute set on every layer it applies to (applied before per-layer ones)."""
        return self.home == "layers" and self.layer_kind is None

    def layers(self, network: NetworkSpec) -> list[tuple[LayerKind, int]]:
        """The (kind, index) of every layer of ``network`` this target sets."""
        if self.layer_kind is not None:
            return [(self.layer_kind, self.index)]
        conv = [("conv", i) for i in range(len(network.conv))]
        linear = [("linear", i) for i in range(len(network.linear))]
        # weight_density and dropout shared: hidden linear layers (conv weights stay dense)
        return conv + linear if self.attr == "percent_on" else linear

    def check(self, network: NetworkSpec) -> None:
        """Raise ValueError when ``network`` has no layer this target names."""
        if self.layer_kind is None:
            return
        layers = network.conv if self.layer_kind == "conv" else network.linear
        if self.index >= len(layers):
            raise ValueError(f"network {network.name!r} has {len(layers)} {self.layer_kind} layer(s)")


def parse(name: str) -> Target:
    """The target a parameter name means; ValueError naming the grammar for anything else."""
    m = _LAYER_PARAM.match(name) if isinstance(name, str) else None
    if m:
        attr, kind, idx = m.group(1), m.group(2), m.group(3)
        if attr == "dropout" and kind == "conv":
            raise ValueError("dropout applies to linear layers only; use dropout or dropout.linear[i]")
        return Target(name, "layers", attr, kind, None if idx is None else int(idx))
    if name in KWINNERS_PARAMS:
        return Target(name, "kwinners", name)
    if name in RECIPE_PARAMS:
        return Target(name, "recipe", name)
    raise ValueError(f"unknown parameter {name!r}; searchable parameters are {GRAMMAR}")


def _number(target: Target, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{target.name}={value!r}: must be a number")
    return float(value)


def apply(network: NetworkSpec, recipe: Recipe, values: Iterable[tuple[Target, Any]]) -> tuple[NetworkSpec, Recipe]:
    """Apply (target, value) pairs to a network and recipe. Shared layer values go first, so
    ``percent_on.linear[0]`` overrides ``percent_on``; a later pair for the same name wins.
    The new network and recipe validate the values (ValueError naming the field and the rule)."""
    by_name = {t.name: (t, v) for t, v in values}
    conv, linear = list(network.conv), list(network.linear)
    kw = network.kwinners
    recipe_changes: dict[str, Any] = {}
    for target, value in sorted(by_name.values(), key=lambda tv: (not tv[0].shared, tv[0].name)):
        if target.home == "layers":
            target.check(network)
            for kind, i in target.layers(network):
                layers = conv if kind == "conv" else linear
                layers[i] = dataclasses.replace(layers[i], **{target.attr: _number(target, value)})
        elif target.home == "kwinners":
            kw = dataclasses.replace(kw, **{target.attr: _number(target, value)})
        else:
            recipe_changes[target.attr] = _number(target, value)
    network = dataclasses.replace(network, conv=tuple(conv), linear=tuple(linear), kwinners=kw)
    return network, recipe.replace(**recipe_changes)


def apply_params(network: NetworkSpec, recipe: Recipe, params: Mapping[str, Any]) -> tuple[NetworkSpec, Recipe]:
    """`apply` for a mapping of parameter names (parsed here) to values."""
    return apply(network, recipe, [(parse(name), value) for name, value in params.items()])
