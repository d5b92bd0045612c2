"""Release rules: when a canary advances, is promoted or rolled back, and what each move changes.

Plain functions of plain data (``shared.gcp.release`` applies them in a
Firestore transaction), so every rule is unit-tested without an emulator.

Judging a canary: feedback is counted per version; a *step* of the rollout
starts with a snapshot of both versions' counts, so the canary and production
are compared on the same period (the feedback that arrived since the step
began). The judge runs after every report, so it uses anytime-valid bounds
(``shared.confidence_sequence``) on the difference of the two success rates,
which hold however often they are looked at:

* rolled back when the difference's upper bound is below zero: the canary is
  worse. A canary that is not worse is rolled back with probability at most
  ``release.significance`` over its whole rollout (split over its steps);
* advanced (or promoted at the last step) when the lower bound, at level
  ``release.promotion_risk``, is above ``-release.max_drop``: the data show it
  is not worse by more than the margin. A canary worse than that is promoted
  with probability at most ``release.promotion_risk``;
* anything in between waits for more feedback (and every verdict needs
  ``canary_min_samples`` reports per version, a rollback excepted).

Only *counted* reports enter the tallies (``shared.feedback_admission``: a
few per user, per version and window), and when the caller passes distinct
user counts, no verdict (a rollback included) is reached with fewer than
``release.canary_min_users`` users on each compared version: a handful of
accounts cannot move a release, however much they write.

After a promotion, production is watched for ``release.watch_samples``
reports against its parent's rate in the promoting step, and rolled back to
the parent when its rate is, by the same bounds, below the parent's by more
than ``release.max_drop``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping

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
    worse_bound: float  # upper bound of (judged - reference) rate: below 0 means worse
    margin_bound: float  # lower bound of (judged - reference) rate: above -max_drop means not worse
    detail: str
    next_percent: float | None = None

    def evidence(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "judged": self.version.to_dict(), "reference": self.reference.to_dict(),
                "difference_upper": round(self.worse_bound, 6), "difference_lower": round(self.margin_bound, 6),
                "detail": self.detail, "next_percent": self.next_percent}


def _rates(version: Tally, reference: Tally) -> str:
    return f"{version.correct}/{version.total} vs {reference.correct}/{reference.total}"


def step_levels(policy: Release) -> tuple[float, float]:
    """(alpha, beta) for one step: a canary is judged in each of its steps, so each gets its share."""
    steps = len(policy.rollout_steps)
    return policy.significance / steps, policy.promotion_risk / steps


def difference_limits(version: Tally, reference: Tally, policy: Release) -> tuple[float, float]:
    """(upper bound at level alpha, lower bound at level beta) of version's rate minus reference's."""
    upper, lower = difference_limit_arrays(version.correct, version.total, reference.correct, reference.total, policy)
    return float(upper), float(lower)


def difference_limit_arrays(correct, total, reference_correct, reference_total, policy: Release):
    """``difference_limits`` element-wise over arrays of counts (the Monte Carlo benchmark judges thousands at once)."""
    # loaded where used: numpy is a fifth of a second of a function's start, and only a judged release needs it
    from shared.confidence_sequence import difference_bounds

    alpha, beta = step_levels(policy)
    at_alpha = difference_bounds(correct, total, reference_correct, reference_total, alpha)
    at_beta = at_alpha if beta == alpha else difference_bounds(correct, total, reference_correct, reference_total, beta)
    return at_alpha[1], at_beta[0]


def canary_verdicts(correct, total, reference_correct, reference_total, policy: Release):
    """(rolled back, not worse) element-wise: the two decisions ``judge_canary`` makes, over arrays of counts."""
    upper, lower = difference_limit_arrays(correct, total, reference_correct, reference_total, policy)
    return verdicts_within(upper, lower, total, reference_total, policy)


def verdicts_within(upper, lower, total, reference_total, policy: Release):
    """(rolled back, not worse) from the difference's bounds and both versions' report counts."""
    import numpy as np  # loaded where used, as in difference_limit_arrays

    worse = np.asarray(upper) < 0
    enough = np.minimum(total, reference_total) >= policy.canary_min_samples
    return worse, ~worse & enough & (np.asarray(lower) > -policy.max_drop)


def too_few_users(users: tuple[int, ...] | None, policy: Release) -> bool:
    """True when distinct user counts are known and one is below ``canary_min_users``."""
    return users is not None and min(users) < policy.canary_min_users


def judge_canary(canary: Tally, production: Tally, percent: float, policy: Release,
                 users: tuple[int, int] | None = None) -> Judgement:
    """The canary's fate after its current step, from both versions' feedback in that step.

    ``users``: distinct users with counted reports on (canary, production) in the step, if known.
    """
    upper, lower = difference_limits(canary, production, policy)
    worse, not_worse = verdicts_within(upper, lower, canary.total, production.total, policy)
    rates = f"{_rates(canary, production)}, difference in [{lower:+.3f}, {upper:+.3f}]"

    def judged(verdict: Verdict, detail: str, next_percent: float | None = None) -> Judgement:
        return Judgement(verdict, canary, production, upper, lower, detail, next_percent)

    if too_few_users(users, policy):
        return judged(Verdict.WAIT, f"{rates}: {users[0]} and {users[1]} users reported, waiting for "
                                    f"{policy.canary_min_users} per version")
    if worse:
        return judged(Verdict.ROLL_BACK, f"worse: {rates}")
    if min(canary.total, production.total) < policy.canary_min_samples:
        return judged(Verdict.WAIT, f"{rates}: waiting for {policy.canary_min_samples} reports per version")
    if not not_worse:
        return judged(Verdict.WAIT, f"{rates}: not yet shown within {policy.max_drop:.0%} of production")
    later = [step for step in policy.rollout_steps if step > percent]
    if not later or later[0] >= 100:
        return judged(Verdict.PROMOTE, f"not worse at {percent:g}%: {rates}", 100.0)
    return judged(Verdict.ADVANCE, f"not worse at {percent:g}%: {rates}", later[0])


def judge_production(since_promotion: Tally, parent: Tally, policy: Release, users: int | None = None) -> Judgement:
    """Whether production, since its promotion, collapsed against its parent's rate in the promoting step.

    ``users``: distinct users with counted reports on production since its promotion, if known.
    """
    upper, lower = difference_limits(since_promotion, parent, policy)
    rates = f"{_rates(since_promotion, parent)}, difference in [{lower:+.3f}, {upper:+.3f}]"
    if too_few_users(None if users is None else (users,), policy):
        return Judgement(Verdict.WAIT, since_promotion, parent, upper, lower,
                         f"{rates}: {users} users reported, waiting for {policy.canary_min_users}")
    if since_promotion.total >= policy.canary_min_samples and upper < -policy.max_drop:
        return Judgement(Verdict.ROLL_BACK, since_promotion, parent, upper, lower, f"collapsed after promotion: {rates}")
    return Judgement(Verdict.WAIT, since_promotion, parent, upper, lower, f"{rates}: holding")


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

    @property
    def since(self) -> datetime:
        """When the judged period began (the step, or the promotion): distinct users are counted from then."""
        began = datetime.fromisoformat(self.step.started if self.step else self.promotion.at)
        return began if began.tzinfo else began.replace(tzinfo=timezone.utc)


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


def judge_release(check: ReleaseCheck, tallies: Mapping[str, Tally], policy: Release,
                  users: Mapping[str, int] | None = None) -> Judgement | None:
    """The verdict for ``check`` from the versions' current tallies; None when production is no longer watched.

    ``users``: distinct users per version with counted reports since ``check.since`` (None: not counted, no
    user guard; the caller counts them only when a verdict other than WAIT is in sight).
    """
    if check.step is not None:
        canary = tallies[check.judged] - check.step.canary
        pair = (users[check.judged], users[check.production]) if users is not None else None
        return judge_canary(canary, tallies[check.production] - check.step.production, check.step.percent, policy, pair)
    if not watching(check.promotion, tallies[check.judged], policy):
        return None
    return judge_production(tallies[check.judged] - check.promotion.baseline, check.promotion.previous_rate, policy,
                            users[check.judged] if users is not None else None)


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
