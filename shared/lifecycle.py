"""Release rules: when a canary advances, is promoted or rolled back, and what each move changes.

Plain functions of plain data (``shared.gcp.release`` applies them in a
Firestore transaction), so every rule is unit-tested without an emulator.

Judging a canary: feedback is counted per version; a *step* of the rollout
starts with a snapshot of both versions' counts, so the canary and production
are compared on the same period (the feedback that arrived since the step
began). "Worse" is a one-sided Fisher exact test of the two proportions at
``release.significance``; "not worse" additionally needs ``canary_min_samples``
reports per arm and an observed drop of at most ``release.max_drop``. Anything
in between waits for more feedback.

After a promotion, production is watched for ``release.watch_samples``
reports against its parent's rate in the promoting step; a significant
collapse rolls production back to the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping

from scipy.stats import fisher_exact

from shared.config import Release
from shared.errors import EdgeloopError
from shared.registry import ModelPointer, ModelRef, Rollout, Stage, Transition, VersionRecord, is_legal


class IllegalTransition(EdgeloopError, ValueError):
    """A requested stage change the registry does not allow; ``str()`` says why."""


@dataclass(frozen=True)
class Tally:
    """Feedback reports of one version: how many, and how many were correct."""

    correct: int = 0
    total: int = 0

    def __sub__(self, earlier: "Tally") -> "Tally":
        return Tally(max(self.correct - earlier.correct, 0), max(self.total - earlier.total, 0))

    @property
    def rate(self) -> float | None:
        return self.correct / self.total if self.total else None

    def to_dict(self) -> dict[str, int]:
        return {"correct": self.correct, "total": self.total}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> "Tally":
        value = value or {}
        return cls(int(value.get("correct", 0)), int(value.get("total", 0)))


def worse_p_value(version: Tally, reference: Tally) -> float:
    """One-sided Fisher exact p-value that ``version`` succeeds less often than ``reference``."""
    if not version.total or not reference.total:
        return 1.0
    table = [[version.correct, version.total - version.correct], [reference.correct, reference.total - reference.correct]]
    return float(fisher_exact(table, alternative="less").pvalue)


class Verdict(str, Enum):
    WAIT = "wait"  # not enough evidence either way
    ADVANCE = "advance"  # not worse: offer it to the next step's share of devices
    PROMOTE = "promote"  # not worse at the last step before 100%: it becomes production
    ROLL_BACK = "roll_back"  # significantly worse


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    version: Tally  # the judged version, over the compared period
    reference: Tally  # what it is compared with, over the same period
    p_value: float
    detail: str
    next_percent: float | None = None

    def evidence(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "judged": self.version.to_dict(), "reference": self.reference.to_dict(),
                "p_value": round(self.p_value, 6), "detail": self.detail, "next_percent": self.next_percent}


def _rates(version: Tally, reference: Tally) -> str:
    return f"{version.correct}/{version.total} vs {reference.correct}/{reference.total}"


def judge_canary(canary: Tally, production: Tally, percent: float, policy: Release) -> Judgement:
    """The canary's fate after its current step, from both versions' feedback in that step."""
    p_value = worse_p_value(canary, production)
    rates = _rates(canary, production)
    if p_value < policy.significance:
        return Judgement(Verdict.ROLL_BACK, canary, production, p_value, f"significantly worse: {rates}, p={p_value:.2g}")
    if min(canary.total, production.total) < policy.canary_min_samples:
        return Judgement(Verdict.WAIT, canary, production, p_value,
                         f"{rates}: waiting for {policy.canary_min_samples} reports per version")
    if canary.rate < production.rate - policy.max_drop:
        return Judgement(Verdict.WAIT, canary, production, p_value, f"{rates}: lower, not yet significantly")
    later = [step for step in policy.rollout_steps if step > percent]
    if not later or later[0] >= 100:
        return Judgement(Verdict.PROMOTE, canary, production, p_value, f"not worse at {percent:g}%: {rates}", 100.0)
    return Judgement(Verdict.ADVANCE, canary, production, p_value, f"not worse at {percent:g}%: {rates}", later[0])


def judge_production(since_promotion: Tally, parent: Tally, policy: Release) -> Judgement:
    """Whether production, since its promotion, collapsed against its parent's rate in the promoting step."""
    p_value = worse_p_value(since_promotion, parent)
    rates = _rates(since_promotion, parent)
    if (since_promotion.total >= policy.canary_min_samples and p_value < policy.significance
            and since_promotion.rate < parent.rate - policy.max_drop):
        return Judgement(Verdict.ROLL_BACK, since_promotion, parent, p_value,
                         f"collapsed after promotion: {rates}, p={p_value:.2g}")
    return Judgement(Verdict.WAIT, since_promotion, parent, p_value, f"{rates}: holding")


@dataclass(frozen=True)
class RolloutStep:
    """One step of a canary's rollout: its share of devices and both versions' counts when it began."""

    percent: float
    started: str  # ISO time
    canary: Tally
    production_version: str | None
    production: Tally

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, "started": self.started, "canary": self.canary.to_dict(),
                "production_version": self.production_version, "production": self.production.to_dict()}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> "RolloutStep | None":
        if not value:
            return None
        return cls(float(value["percent"]), str(value["started"]), Tally.from_dict(value.get("canary")),
                   value.get("production_version"), Tally.from_dict(value.get("production")))


@dataclass(frozen=True)
class Promotion:
    """How a version became production: what it replaced, its counts then, and the replaced version's recent rate."""

    at: str  # ISO time
    previous: str | None
    baseline: Tally
    previous_rate: Tally | None  # the previous production's feedback in the promoting step, if there was one

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "previous": self.previous, "baseline": self.baseline.to_dict(),
                "previous_rate": self.previous_rate.to_dict() if self.previous_rate else None}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> "Promotion | None":
        if not value:
            return None
        previous_rate = value.get("previous_rate")
        return cls(str(value["at"]), value.get("previous"), Tally.from_dict(value.get("baseline")),
                   Tally.from_dict(previous_rate) if previous_rate else None)


def watching(promotion: Promotion | None, production_now: Tally, policy: Release) -> bool:
    """Whether production is still compared with the version it replaced."""
    return (promotion is not None and promotion.previous is not None and promotion.previous_rate is not None
            and (production_now - promotion.baseline).total <= policy.watch_samples)


# --- what a move changes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StageChange:
    version: str
    source: Stage
    target: Stage


@dataclass(frozen=True)
class Plan:
    """A move: stage changes of versions, and the pointer clients will read afterwards."""

    action: str
    changes: tuple[StageChange, ...]
    production: ModelRef | None
    rollout: Rollout
    summary: str
    record_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # version -> extra fields


def stage_change(record: VersionRecord, target: Stage) -> StageChange:
    if not is_legal(record.stage, target):
        raise IllegalTransition(f"{record.version} is {record.stage.value}: it cannot become {target.value}")
    return StageChange(record.version, record.stage, target)


def _published(record: VersionRecord) -> ModelRef:
    if record.ref is None:
        raise IllegalTransition(f"{record.version} was never published (stage {record.stage.value})")
    return record.ref


def plan_advance(pointer: ModelPointer, canary: VersionRecord, percent: float) -> Plan:
    """Offer the current canary to ``percent`` of devices (below 100)."""
    current = pointer.rollout.candidate
    if current is None or current.version != canary.version or canary.stage is not Stage.CANARY:
        raise IllegalTransition(f"{canary.version} is not the canary in rollout")
    if not 0 < percent < 100:
        raise IllegalTransition(f"a canary's rollout is between 0 and 100%, not {percent:g}% (promote it for 100%)")
    return Plan("advance", (), pointer.production, Rollout(candidate=current, percent=percent),
                f"{canary.version} offered to {percent:g}% of devices")


def plan_promote(pointer: ModelPointer, target: VersionRecord, production: VersionRecord | None) -> Plan:
    """``target`` (the canary, or an archived or rolled-back version) serves every device; production is archived."""
    if production is not None and production.version == target.version:
        raise IllegalTransition(f"{target.version} is already production")
    canary = pointer.rollout.candidate
    if canary is not None and canary.version != target.version:
        raise IllegalTransition(f"{canary.version} is in rollout: roll it back or promote it first")
    changes = [stage_change(target, Stage.PRODUCTION)]
    if production is not None:
        changes.append(stage_change(production, Stage.ARCHIVED))
    return Plan("promote", tuple(changes), _published(target), Rollout(),
                f"{target.version} is production" + (f"; {production.version} archived" if production else ""))


def plan_canary(pointer: ModelPointer, target: VersionRecord, percent: float) -> Plan:
    """Offer a rolled-back version again as the canary at ``percent`` (an operator's retry)."""
    if pointer.rollout.candidate is not None:
        raise IllegalTransition(f"{pointer.rollout.candidate.version} is in rollout: roll it back or promote it first")
    if not 0 < percent < 100:
        raise IllegalTransition(f"a canary's rollout is between 0 and 100%, not {percent:g}%")
    change = stage_change(target, Stage.CANARY)
    return Plan("canary", (change,), pointer.production, Rollout(candidate=_published(target), percent=percent),
                f"{target.version} is a canary at {percent:g}%")


def plan_rollback(pointer: ModelPointer, canary: VersionRecord | None, production: VersionRecord | None,
                  parent: VersionRecord | None) -> Plan:
    """Undo the newest release: the canary in rollout if any, else production back to its parent."""
    if canary is not None:
        return Plan("rollback", (stage_change(canary, Stage.ROLLED_BACK),), pointer.production, Rollout(),
                    f"canary {canary.version} rolled back; every device runs {pointer.production.version if pointer.production else 'nothing'}")
    if production is None:
        raise IllegalTransition("nothing is released: no canary and no production version")
    if parent is None:
        raise IllegalTransition(f"{production.version} has no earlier version to return to")
    changes = (stage_change(production, Stage.ROLLED_BACK), stage_change(parent, Stage.PRODUCTION))
    # the restored version is not watched against anything: its old promotion is history
    return Plan("rollback", changes, _published(parent), Rollout(),
                f"production {production.version} rolled back to {parent.version}",
                record_updates={parent.version: {"promotion": {}}})


def transition_entry(source: Stage | None, target: Stage, actor: str, reason: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """One entry of a version's stage history, as stored."""
    return Transition(source=source, target=target, at=datetime.now(timezone.utc), actor=actor, reason=reason,
                      evidence=evidence).model_dump(mode="json")


# --- what on_feedback judges -----------------------------------------------------------------------

@dataclass(frozen=True)
class ReleaseCheck:
    """What one report may change: the canary's current step, or a freshly promoted production under watch."""

    judged: str  # the version judged
    production: str  # production when the check was read
    step: RolloutStep | None = None  # set when judging a canary
    promotion: Promotion | None = None  # set when watching production

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions whose feedback must be counted for this check."""
        return (self.judged, self.production) if self.step else (self.judged,)


def release_check(pointer: ModelPointer | None, records: Mapping[str, VersionRecord]) -> ReleaseCheck | None:
    """What to judge for ``pointer``; None when nothing is in rollout or under watch."""
    if pointer is None or pointer.production is None:
        return None
    production = pointer.production.version
    if pointer.rollout.candidate is not None:
        record = records.get(pointer.rollout.candidate.version)
        step = RolloutStep.from_dict(record.rollout_step) if record else None
        if step is None or step.production_version != production:
            return None  # not a canary these rules judge (e.g. one published before steps existed)
        return ReleaseCheck(record.version, production, step=step)
    record = records.get(production)
    promotion = Promotion.from_dict(record.promotion) if record else None
    if promotion is None or promotion.previous is None or promotion.previous_rate is None:
        return None  # nothing to compare with: no counting needed
    return ReleaseCheck(production, production, promotion=promotion)


def judge_release(check: ReleaseCheck, tallies: Mapping[str, Tally], policy: Release) -> Judgement | None:
    """The verdict for ``check`` from the versions' current tallies; None when production is no longer watched."""
    if check.step is not None:
        canary = tallies[check.judged] - check.step.canary
        return judge_canary(canary, tallies[check.production] - check.step.production, check.step.percent, policy)
    if not watching(check.promotion, tallies[check.judged], policy):
        return None
    return judge_production(tallies[check.judged] - check.promotion.baseline, check.promotion.previous_rate, policy)


def plan_verdict(check: ReleaseCheck, judgement: Judgement, tallies: Mapping[str, Tally], current: ModelPointer,
                 records: Mapping[str, VersionRecord], now: str) -> Plan | None:
    """The move ``judgement`` asks for, planned on the pointer as it is now; None if another judge already moved it."""
    if check.step is None:  # production under watch: only a rollback to the version it replaced
        if current.production is None or current.production.version != check.judged or current.rollout.candidate:
            return None
        return plan_rollback(current, None, records[check.judged], records.get(check.promotion.previous))
    if (current.rollout.candidate is None or current.rollout.candidate.version != check.judged
            or current.rollout.percent != check.step.percent or current.production is None
            or current.production.version != check.production):
        return None  # another instance already moved this step
    canary, production = records[check.judged], records[check.production]
    if judgement.verdict is Verdict.ROLL_BACK:
        return plan_rollback(current, canary, production, None)
    if judgement.verdict is Verdict.PROMOTE:
        plan = plan_promote(current, canary, production)
        fields = promotion_fields(now, check.production, tallies[check.judged],
                                  tallies[check.production] - check.step.production)
    else:
        plan = plan_advance(current, canary, judgement.next_percent)
        fields = step_fields(now, judgement.next_percent, tallies[check.judged], check.production,
                             tallies[check.production])
    return replace(plan, record_updates={check.judged: fields})


def step_fields(now: str, percent: float, canary: Tally, production_version: str | None,
                production: Tally) -> dict[str, Any]:
    """What a version record stores when a rollout step begins."""
    return {"rollout_step": RolloutStep(percent, now, canary, production_version, production).to_dict()}


def promotion_fields(now: str, previous: str | None, baseline: Tally, previous_rate: Tally | None) -> dict[str, Any]:
    """What a version record stores when it becomes production."""
    return {"promotion": Promotion(now, previous, baseline, previous_rate).to_dict(), "rollout_step": {}}
