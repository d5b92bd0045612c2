"""Field success rate of a model version, with its confidence interval.

A rate from few samples says little: ``retrain.success_rate_request`` asks for
a retrain only when the *upper* end of the Wilson score interval is below the
threshold, i.e. we are confident the true rate is too low, not merely unlucky.

The interval is Newcombe's (1998) closed form, computed here with the standard
library as ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` does
(a unit test holds the two equal): scipy.stats costs a function process about
half a second of import and tens of MiB for these few lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


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
    low, high = wilson_interval(correct, total, confidence)
    return SuccessRate(correct, total, low, high, confidence)


def wilson_interval(correct: int, total: int, confidence: float) -> tuple[float, float]:
    """The two-sided Wilson score interval for ``correct`` of ``total`` (> 0), in scipy's arithmetic order."""
    p = correct / total
    z = NormalDist().inv_cdf(0.5 + 0.5 * confidence)
    denominator = 2 * (total + z**2)
    centre = (2 * total * p + z**2) / denominator
    delta = z / denominator * math.sqrt(4 * total * p * (1 - p) + z**2)
    return (0.0 if correct == 0 else centre - delta), (1.0 if correct == total else centre + delta)
