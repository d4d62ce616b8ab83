"""What a trial reports to the searcher and the early-stopping rule: one dataclass both sides use.

Its fields carry the names of the sweep's record (`sweeps.search.record`): what a final report
leaves on the trial (`record.REPORTED`) is stored under the field's own name.

A trial reports once per epoch. The validation noise score is measured only where somebody reads
it: at the epochs where a Pareto early-stopping rule decides, and in the final report (after the
noise curves). Ray's results are flat dicts of numbers, so `to_result` writes the report under fixed
keys (absent values as NaN, which Ray's loggers keep) and `from_result` reads it back, also from
Ray's flattened form (``"val_curve/levels"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from sweeps.search import record as rec
from sweeps.search.record import OBJECTIVES

__all__ = ["TrialReport", "OBJECTIVES"]

NAN = float("nan")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _nested(result: Mapping[str, Any], key: str) -> dict | None:
    if isinstance(result.get(key), Mapping):
        return dict(result[key])
    prefix = key + "/"
    found = {k[len(prefix):]: v for k, v in result.items() if k.startswith(prefix)}
    return found or None


@dataclass(frozen=True)
class TrialReport:
    number: int  # the Optuna trial number
    epoch: int  # epochs completed
    val_accuracy: float | None
    val_noise_score: float | None = None  # at decision epochs and in the final report
    final: bool = False  # every epoch trained and the noise curves taken
    error: str | None = None  # a failure that retrying cannot mend (a NaN loss)
    baseline: str = ""
    test_accuracy: float | None = None
    test_noise_score: float | None = None
    noise_max: float | None = None  # the largest possible noise score (levels x samples)
    val_curve: dict | None = None
    test_curve: dict | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the epoch's other numbers (loss, lr, ...)

    @property
    def objectives(self) -> tuple[float, float] | None:
        """(val_accuracy, val_noise_score) when both are measured, else None."""
        if self.val_accuracy is None or self.val_noise_score is None:
            return None
        return (self.val_accuracy, self.val_noise_score)

    def to_result(self) -> dict[str, Any]:
        """The dict a Ray trial reports (metric names as Tune's loggers and schedulers see them)."""
        out: dict[str, Any] = {
            **self.metrics,
            "optuna_trial_number": self.number,
            "epoch": self.epoch,
            "val_accuracy": NAN if self.val_accuracy is None else self.val_accuracy,
            "val_noise_score": NAN if self.val_noise_score is None else self.val_noise_score,
            "final": self.final,
            rec.BASELINE: self.baseline,
        }
        if self.error:
            out["trial_error"] = self.error
        for key in rec.REPORTED:  # numbers when known, curves when not empty
            value = getattr(self, key)
            if value is not None and (value or not isinstance(value, dict)):
                out[key] = value
        return out

    @classmethod
    def from_result(cls, result: Mapping[str, Any]) -> "TrialReport":
        """Read back what `to_result` wrote (a Ray result, flattened or not)."""
        metrics = {k: float(v) for k, v in result.items()
                   if k in ("train_loss", "train_accuracy", "val_loss", "lr", "seconds") and v is not None}
        return cls(
            number=int(result.get("optuna_trial_number", -1)),
            epoch=int(result.get("epoch", 0) or 0),
            val_accuracy=_finite(result.get("val_accuracy")),
            val_noise_score=_finite(result.get("val_noise_score")),
            final=bool(result.get("final", False)),
            error=str(result["trial_error"]) if result.get("trial_error") else None,
            baseline=str(result.get(rec.BASELINE) or ""),
            test_accuracy=_finite(result.get(rec.TEST_ACCURACY)),
            test_noise_score=_finite(result.get(rec.TEST_NOISE_SCORE)),
            noise_max=_finite(result.get(rec.NOISE_MAX)),
            val_curve=_nested(result, rec.VAL_CURVE),
            test_curve=_nested(result, rec.TEST_CURVE),
            metrics=metrics,
        )
