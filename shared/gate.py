"""The quality gate: may this candidate reach any device? Pure rules over metric dictionaries.

Absolute floors, the int8 quantisation loss, size and latency budgets, and no
accuracy drop beyond ``max_regression`` against production. The trainer
evaluates the production model on the candidate's own holdouts
(``production_*`` metrics), so the comparison is like for like; without a
production version there is nothing to regress against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from shared.config import Gate

# Accuracies compared with production, each measured on the same images for both models.
COMPARED_WITH_PRODUCTION = ("int8_accuracy", "int8_drifted_accuracy")


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    passed: bool
    rule: str  # "min" or "max": how value relates to limit


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def reasons(self) -> list[str]:
        symbol = {"min": "<", "max": ">"}
        return [f"{c.name} {c.value:.4g} {symbol[c.rule]} {c.limit:.4g}" for c in self.failures]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks], "reasons": self.reasons()}


def _at_least(name: str, value: float, limit: float) -> Check:
    return Check(name, round(float(value), 6), round(float(limit), 6), value >= limit, "min")


def _at_most(name: str, value: float, limit: float) -> Check:
    return Check(name, round(float(value), 6), round(float(limit), 6), value <= limit, "max")


def evaluate_gate(metrics: Mapping[str, float], policy: Gate) -> GateResult:
    """Judge a candidate by its metrics (as ``trainer_job.pipeline`` reports them)."""
    checks = [
        _at_least("int8_accuracy", metrics["int8_accuracy"], policy.min_accuracy),
        _at_least("int8_drifted_accuracy", metrics["int8_drifted_accuracy"], policy.min_drifted_accuracy),
        _at_most("quantisation_loss", metrics["float_accuracy"] - metrics["int8_accuracy"], policy.max_quantisation_loss),
        _at_most("size_bytes", metrics["size_bytes"], policy.max_size_bytes),
        _at_most("latency_us", metrics["latency_us"], policy.max_latency_us),
    ]
    for name in COMPARED_WITH_PRODUCTION:
        production = metrics.get(f"production_{name}")
        if production is not None:
            checks.append(_at_most(f"{name}_regression", production - metrics[name], policy.max_regression))
    return GateResult(all(check.passed for check in checks), tuple(checks))
