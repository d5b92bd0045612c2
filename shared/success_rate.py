"""Field success rate of a model version, and when it is bad enough to retrain.

A rate from few samples says little, so two guards apply: at least
``min_samples`` feedback reports, and the *upper* end of the Wilson score
interval must be below the threshold, i.e. we are confident the true rate is
too low, not merely unlucky.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binomtest

from shared.retrain import RetrainReason, RetrainRequest

CONFIDENCE_LEVEL = 0.95


@dataclass(frozen=True)
class SuccessRate:
    correct: int
    total: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def success_rate(correct: int, total: int, confidence: float = CONFIDENCE_LEVEL) -> SuccessRate:
    """Observed rate with its two-sided Wilson score interval."""
    if not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total, got {correct}/{total}")
    if total == 0:
        return SuccessRate(0, 0, 0.0, 1.0)
    interval = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return SuccessRate(correct, total, float(interval.low), float(interval.high))


def success_rate_request(
    model: str,
    version: str,
    rate: SuccessRate,
    min_samples: int,
    min_success_rate: float,
    since_run: str | None,
) -> RetrainRequest | None:
    """A success_rate retrain request when the evidence is strong enough, else None."""
    if rate.total < min_samples or rate.high >= min_success_rate:
        return None
    return RetrainRequest(
        model=model,
        reason=RetrainReason.SUCCESS_RATE,
        cause=f"success_rate:{model}:{version}:after-{since_run or 'start'}",
        evidence={
            "model_version": version,
            "correct": rate.correct,
            "total": rate.total,
            "rate": round(rate.rate, 4),
            "upper_bound": round(rate.high, 4),
            "confidence_level": CONFIDENCE_LEVEL,
            "threshold": min_success_rate,
            "min_samples": min_samples,
        },
    )
