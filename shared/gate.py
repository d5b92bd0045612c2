"""The quality gate: may this candidate reach any device? Pure rules over metric dictionaries.

Absolute floors, the int8 quantisation loss, size and latency budgets, and no
accuracy drop beyond ``max_regression`` against production. The quantisation loss is judged with the
holdout's size (``shared.quantisation_loss``): rejected only when the int8 model is worse than the float
one by more than ``max_quantisation_loss`` with 95% confidence, from the images on which the two disagree;
a record without the holdout's size (older ones) is judged by the fixed limit on the observed loss. The trainer
evaluates the production model on the candidate's own holdouts
(``production_*`` metrics), so the comparison is like for like; without a
production version there is nothing to regress against.

Three kinds of holdout: the clean holdout (curated images, always gated); the
field holdout (a fixed slice of user-confirmed field captures no run trains on:
the drift that actually happened), gated once it holds ``min_field_holdout``
images; and synthetic stresses of the clean holdout (``shared.config.STRESSES``),
each reported, and gated only when the operator lists it in ``gated_stresses``.
What is reported but not gated is said in the result's notes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from shared import quantisation_loss
from shared.config import STRESSES, Gate

FIELD_METRIC = "int8_field_accuracy"
FIELD_IMAGES = "field_holdout_images"
# The clean holdout's size and the images the float and int8 models disagree on (the trainer reports them).
HOLDOUT_IMAGES = "holdout_images"
INT8_ONLY_ERRORS = "int8_only_errors"  # int8 wrong where float is right
FLOAT_ONLY_ERRORS = "float_only_errors"  # float wrong where int8 is right


def stress_metric(stress: str) -> str:
    """The candidate's int8 accuracy on a stress; the dark room keeps the name earlier records use."""
    if stress not in STRESSES:
        raise ValueError(f"unknown stress {stress!r}: one of {list(STRESSES)}")
    return "int8_drifted_accuracy" if stress == "dark" else f"int8_{stress}_accuracy"


# Accuracies the trainer also measures for production, each on the same images as the candidate's.
COMPARED_WITH_PRODUCTION = ("int8_accuracy", FIELD_METRIC, *(stress_metric(s) for s in STRESSES))


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
    notes: tuple[str, ...] = ()  # what was measured but not gated, and why

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def reasons(self) -> list[str]:
        symbol = {"min": "<", "max": ">"}
        return [f"{c.name} {c.value:.4g} {symbol[c.rule]} {c.limit:.4g}" for c in self.failures]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks], "reasons": self.reasons(),
                "notes": list(self.notes)}


def _at_least(name: str, value: float, limit: float) -> Check:
    return Check(name, round(float(value), 6), round(float(limit), 6), value >= limit, "min")


def _at_most(name: str, value: float, limit: float) -> Check:
    return Check(name, round(float(value), 6), round(float(limit), 6), value <= limit, "max")


def _regression(metrics: Mapping[str, float], name: str, policy: Gate) -> Check | None:
    production = metrics.get(f"production_{name}")
    if production is None or name not in metrics:
        return None
    return _at_most(f"{name}_regression", production - metrics[name], policy.max_regression)


def quantisation_check(metrics: Mapping[str, float], policy: Gate) -> Check:
    """The int8 model's loss vs the float one on the clean holdout, judged with the holdout's size.

    With the holdout's size and its discordant counts: the loss's one-sided lower confidence bound
    (``quantisation_loss_lower_bound``) must be at most ``max_quantisation_loss``. With the size alone: the
    same bound from the fewest discordant images the two accuracies allow. Without the size (records from
    before the trainer reported it): the observed loss itself (``quantisation_loss``), the fixed rule.
    """
    observed = metrics["float_accuracy"] - metrics["int8_accuracy"]
    images = int(metrics.get(HOLDOUT_IMAGES) or 0)
    if images <= 0:
        return _at_most("quantisation_loss", observed, policy.max_quantisation_loss)
    if INT8_ONLY_ERRORS in metrics and FLOAT_ONLY_ERRORS in metrics:
        int8_only, float_only = int(metrics[INT8_ONLY_ERRORS]), int(metrics[FLOAT_ONLY_ERRORS])
    else:
        int8_only, float_only = quantisation_loss.counts_from_accuracies(
            metrics["float_accuracy"], metrics["int8_accuracy"], images)
    bound = quantisation_loss.loss_lower_bound(int8_only, float_only, images)
    return _at_most("quantisation_loss_lower_bound", bound, policy.max_quantisation_loss)


def evaluate_gate(metrics: Mapping[str, float], policy: Gate) -> GateResult:
    """Judge a candidate by its metrics (as ``trainer_job.pipeline`` reports them)."""
    checks = [
        _at_least("int8_accuracy", metrics["int8_accuracy"], policy.min_accuracy),
        quantisation_check(metrics, policy),
        _at_most("size_bytes", metrics["size_bytes"], policy.max_size_bytes),
        _at_most("latency_us", metrics["latency_us"], policy.max_latency_us),
    ]
    notes: list[str] = []
    clean = _regression(metrics, "int8_accuracy", policy)
    if clean is not None:
        checks.append(clean)

    images = int(metrics.get(FIELD_IMAGES, 0))
    field = _regression(metrics, FIELD_METRIC, policy)
    if images == 0:
        notes.append("field holdout: no confirmed field captures held out yet")
    elif field is None:
        notes.append(f"field holdout: {images} images, nothing to compare with (no production model)")
    elif images < policy.min_field_holdout:
        notes.append(f"field holdout: {images} images < min_field_holdout {policy.min_field_holdout}, reported only "
                     f"(candidate {metrics[FIELD_METRIC]:.3f}, production {metrics[f'production_{FIELD_METRIC}']:.3f})")
    else:
        checks.append(field)

    for stress in STRESSES:
        name = stress_metric(stress)
        if stress in policy.gated_stresses:
            checks.append(_at_least(name, metrics[name], policy.min_stress_accuracy))
            regression = _regression(metrics, name, policy)
            if regression is not None:
                checks.append(regression)
        else:
            regression = _regression(metrics, name, policy)
            if regression is not None and not regression.passed:
                notes.append(f"stress {stress}: {regression.name} {regression.value:.4g} > {regression.limit:.4g}, "
                             "reported only (not in gated_stresses)")
    return GateResult(all(check.passed for check in checks), tuple(checks), tuple(notes))
