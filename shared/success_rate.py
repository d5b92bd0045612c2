"""Field success rate of a model version, with its confidence interval.

A rate from few samples says little: ``retrain.success_rate_request`` asks for
a retrain only when the *upper* end of the Wilson score interval is below the
threshold, i.e. we are confident the true rate is too low, not merely unlucky.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binomtest


CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class SuccessRate:
    correct: int
    total: int
    low: float
    high: float
    confidence: float = CONFIDENCE_LEVEL  # of the interval [low, high]

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def success_rate(correct: int, total: int, confidence: float = CONFIDENCE_LEVEL) -> SuccessRate:
    """Observed rate with its two-sided Wilson score interval."""
    if not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total, got {correct}/{total}")
    if total == 0:
        return SuccessRate(0, 0, 0.0, 1.0, confidence)
    interval = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return SuccessRate(correct, total, float(interval.low), float(interval.high), confidence)
