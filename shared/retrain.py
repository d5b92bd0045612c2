"""Retrain requests: the one message every trigger sends to launch_training (and the drift-check tick).

A request names its *cause*: a key that is the same for every redelivery or
concurrent duplicate of one reason to retrain (e.g. "new_data:digits:after-run-7"),
so the launcher can guarantee one run per cause.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import layout
from shared.errors import MalformedEventError
from shared.success_rate import SuccessRate, success_rate


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())


class RetrainReason(str, Enum):
    NEW_DATA = "new_data"
    DRIFT = "drift"
    SUCCESS_RATE = "success_rate"
    SCHEDULE = "schedule"
    MANUAL = "manual"


MODEL_ID_PATTERN = f"^{layout.MODEL_ID}$"  # as validation's object names: one safe path segment


class RetrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(pattern=MODEL_ID_PATTERN)
    reason: RetrainReason
    cause: str = Field(min_length=1, max_length=200)
    evidence: dict[str, Any] = Field(default_factory=dict)
    requested_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def to_message(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_message(cls, payload: Any) -> "RetrainRequest":
        """From the decoded JSON of a Pub/Sub message, or a MalformedEventError naming the bad fields."""
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise MalformedEventError(f"invalid retrain request: {_problems(exc)}") from None


def request_from_message(payload: Any, published_at: datetime) -> RetrainRequest:
    """A request from a ``retrain-requests`` message.

    Two forms arrive: a full request (functions, ``edgeloop retrain``), and the
    scheduler's tick ``{"model": M, "reason": "schedule"}``, whose cause is its
    ISO week so a redelivered or repeated tick of one week launches one run.
    """
    if isinstance(payload, dict) and payload.get("reason") == RetrainReason.SCHEDULE.value and "cause" not in payload:
        model = payload.get("model")
        if not isinstance(model, str):
            raise MalformedEventError("invalid retrain request: model: a scheduled request names its model")
        year, week, _ = published_at.isocalendar()
        try:
            return scheduled_request(model, f"{year}-W{week:02d}", published_at)
        except ValidationError as exc:
            raise MalformedEventError(f"invalid retrain request: {exc.errors()[0]['msg']}") from None
    return RetrainRequest.from_message(payload)


class DriftCheckMessage(BaseModel):
    """A ``drift-checks`` message: ``{"model": M}`` (Cloud Scheduler adds ``"reason": "schedule"``, see
    infra/terraform/scheduler.tf), or an empty message for every configured model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    model: str = Field(pattern=MODEL_ID_PATTERN)
    reason: Literal["schedule"] | None = None


def drift_check_model(payload: Any) -> str | None:
    """The model a drift-check message names; None (an empty message) means every configured model.

    Strict like retrain requests: an unknown key is a producer bug or a typo, not something to ignore.
    """
    if payload is None or payload == {}:
        return None
    try:
        return DriftCheckMessage.model_validate(payload).model
    except ValidationError as exc:
        raise MalformedEventError(f'invalid drift check (expected {{"model": "<id>"}} or empty): {_problems(exc)}') from None


def require_known_model(model: str, labels: frozenset[str] | None, configured: Iterable[str] = ()) -> str:
    """``model`` if it is registered (``labels``: its registered label set, None if none) or ``configured``.

    A retrain request or drift check about a model nobody registered can never succeed: it is malformed,
    not a run or a report. launch_training needs a registered model (training needs its labels);
    check_drift also takes a configured one, which the scheduler ticks before its first registration
    (an empty drift check covers the same models).
    """
    if labels is None and model not in tuple(configured):
        raise MalformedEventError(f"unknown model {model!r}: no models/{model} document with labels is registered")
    return model


def is_recorded(state: dict[str, Any] | None, cause: str) -> bool:
    """True once launch_training has served or queued ``cause`` (the model's training-control state says so):
    asking again would change nothing."""
    state = state or {}
    return cause in (state.get("causes") or {}) or any(p["cause"] == cause for p in state.get("pending") or [])


def new_data_cause(model: str, since_run: str | None) -> str:
    """One new-data cause per training run: crossing the threshold again after it asks for the next run."""
    return f"new_data:{model}:after-{since_run or 'start'}"


def new_data_request(model: str, new_labelled: int, threshold: int, since_run: str | None) -> RetrainRequest | None:
    """A new_data request once enough labelled images arrived since the last training run."""
    if new_labelled < threshold:
        return None
    return RetrainRequest(
        model=model,
        reason=RetrainReason.NEW_DATA,
        cause=new_data_cause(model, since_run),
        evidence={"new_labelled_images": new_labelled, "threshold": threshold, "since_run": since_run},
    )


def drift_request(model: str, version: str, report: str, drifted: list[str], samples: int,
                  since_run: str | None) -> RetrainRequest:
    """A drift request: one cause per production version and training run."""
    return RetrainRequest(
        model=model, reason=RetrainReason.DRIFT, cause=f"drift:{model}:{version}:after-{since_run or 'start'}",
        evidence={"model_version": version, "report": report, "drifted": drifted, "samples": samples},
    )


def manual_request(model: str, who: str, note: str = "") -> RetrainRequest:
    now = datetime.now(timezone.utc)
    return RetrainRequest(
        model=model, reason=RetrainReason.MANUAL, cause=f"manual:{model}:{now.isoformat()}",
        evidence={"requested_by": who, "note": note}, requested_at=now,
    )


def scheduled_request(model: str, period: str, when: datetime) -> RetrainRequest:
    """One cause per schedule period, so a redelivered scheduler tick launches nothing new."""
    return RetrainRequest(
        model=model, reason=RetrainReason.SCHEDULE, cause=f"schedule:{model}:{period}",
        evidence={"period": period}, requested_at=when,
    )



def confidently_too_low(rate: SuccessRate, min_samples: int, min_success_rate: float) -> bool:
    """The success-rate rule's evidence: at least ``min_samples`` reports, the interval's upper end below the floor."""
    return rate.total >= min_samples and rate.high < min_success_rate


def success_rate_request(
    model: str,
    version: str,
    rate: SuccessRate,
    min_samples: int,
    min_success_rate: float,
    since_run: str | None,
    users: int | None = None,
    min_users: int = 1,
) -> RetrainRequest | None:
    """A success_rate retrain request when the evidence is strong enough, else None.

    Three guards: at least ``min_samples`` counted feedback reports, the upper end of the rate's
    confidence interval below ``min_success_rate``, and (when ``users`` is given) at least ``min_users``
    distinct users among the reporters (``shared.feedback_admission``: a few accounts cannot ask).
    """
    if not confidently_too_low(rate, min_samples, min_success_rate):
        return None
    if users is not None and users < min_users:
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
            "confidence_level": rate.confidence,
            "threshold": min_success_rate,
            "min_samples": min_samples,
            **({"users": users, "min_users": min_users} if users is not None else {}),
        },
    )


def reports_until_success_rate_request(correct: int, total: int, min_samples: int, min_success_rate: float,
                                       limit: int = 10**9) -> float:
    """How many more counted reports it takes, at the fewest, before ``success_rate_request`` could ask, given
    ``correct`` of ``total`` now: every one wrong is the fastest way down (the rate's upper bound falls with each
    wrong report and rises with a right one). At least 1; ``math.inf`` when even ``limit`` wrong reports would not.
    What ``shared.count_pacing`` paces on_feedback's windowed sum by."""

    def could_ask(more: int) -> bool:
        return confidently_too_low(success_rate(correct, total + more), min_samples, min_success_rate)

    if not could_ask(limit):
        return math.inf
    low, high = 0, limit  # could_ask(high) holds; could_ask is monotone in the wrong reports added
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if could_ask(middle) else (middle, high)
    return high
