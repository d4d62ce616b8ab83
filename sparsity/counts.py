"""Counts a network description implies, in plain integers (no torch): winners per k-winners layer
and weights kept per unit of a sparse layer.

`sparsity.functional` (k-winners) and `sparsity.sparse_weights` use these, and `NetworkSpec`
validates with them, so a spec is checked without importing torch. The rules follow the reference
library (nupic.torch):

* 1-D:        ``k = round(n * percent_on)``, ``k_inference = int(k * k_inference_factor)``
* 2-D:        ``k = round(n * percent_on)``, ``k_inference = round(n * (percent_on * factor))``

``round`` is Python's (half to even).
"""

from __future__ import annotations

__all__ = ["in_unit_interval", "k_for", "k_inference_for", "nonzero_per_unit"]


def in_unit_interval(value: object) -> bool:
    """True when ``value`` is a number in (0, 1]: the rule of every fraction a network keeps
    (``percent_on``: 1.0 means ReLU; ``weight_density``: 1.0 means dense)."""
    return isinstance(value, (int, float)) and 0.0 < float(value) <= 1.0


def k_for(n: int, percent_on: float) -> int:
    """Number of winners among ``n`` units at ``percent_on``; raises if it rounds to 0 or exceeds n."""
    if not 0.0 < percent_on <= 1.0:
        raise ValueError(f"percent_on={percent_on!r} must be in (0, 1]")
    k = int(round(n * percent_on))
    if k < 1:
        raise ValueError(
            f"percent_on={percent_on!r} of n={n} units rounds to k=0 winners; "
            f"use percent_on >= {0.5 / n:.3g}"
        )
    return min(k, n)


def k_inference_for(n: int, percent_on: float, k_inference_factor: float, *, one_d: bool) -> int:
    """Winners in eval mode: the reference library rounds differently in 1-D and 2-D."""
    if k_inference_factor <= 0:
        raise ValueError(f"k_inference_factor={k_inference_factor!r} must be > 0")
    if one_d:
        k = int(k_for(n, percent_on) * k_inference_factor)
    else:
        k = int(round(n * (percent_on * k_inference_factor)))  # the reference multiplies p * factor first
    return max(1, min(k, n))


def nonzero_per_unit(weight_density: float, fan_in: int) -> int:
    """Weights kept per output unit; raises if the density is outside (0, 1] or keeps none."""
    if not 0.0 < weight_density <= 1.0:
        raise ValueError(f"weight_density={weight_density!r} must be in (0, 1] (1.0 means dense)")
    nnz = int(round(weight_density * fan_in))
    if nnz < 1:
        raise ValueError(
            f"weight_density={weight_density!r} of fan_in={fan_in} keeps no weight per unit; "
            f"use weight_density >= {0.5 / fan_in:.3g}"
        )
    return nnz
