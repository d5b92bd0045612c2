"""Adapter: apply ``shared.lifecycle`` moves to the registry, automatically (on_feedback) or by an operator.

Every move is ONE Firestore transaction that re-reads the pointer and the
versions involved, re-plans from what it read, and writes the pointer clients
poll together with each version's new stage and history entry. Concurrent
on_feedback instances that reach the same verdict therefore move a canary
once: the first commits, the others find the step already changed and do
nothing. Tallies are counted just before the transaction (aggregation queries);
a report arriving in between lands in the next step's counts, never in two.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.gcp.model_registry import load_pointer, load_version, transition_entry
from shared.gcp.tallies import version_tally
from shared.gcp.training_lock import TRANSACTION_ATTEMPTS
from shared.lifecycle import (
    IllegalTransition, Judgement, Plan, Promotion, RolloutStep, Tally, Verdict, judge_canary, judge_production,
    plan_advance, plan_canary, plan_promote, plan_rollback, watching,
)
from shared.logs import log
from shared.registry import ModelPointer, VersionRecord

Records = dict[str, VersionRecord]
Planner = Callable[[ModelPointer, Records], Plan | None]  # None: the state moved on, nothing to do


@dataclass(frozen=True)
class ReleaseOutcome:
    judgement: Judgement | None
    plan: Plan | None  # the move applied, if any
    canary: str | None = None  # the canary in rollout afterwards
    production: str | None = None  # the production version afterwards


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _read(transaction: firestore.Transaction, db: firestore.Client, model: str, extra: Iterable[str]) -> tuple[ModelPointer, Records]:
    snapshot = db.document(layout.model_doc(model)).get(transaction=transaction)
    if not snapshot.exists:
        raise IllegalTransition(f"model {model!r} is not registered")
    pointer = ModelPointer.model_validate(snapshot.to_dict())
    records: Records = {}

    def read(version: str | None) -> None:
        if version and version not in records:
            found = db.document(layout.version_doc(model, version)).get(transaction=transaction)
            if found.exists:
                records[version] = VersionRecord.model_validate(found.to_dict())

    for version in (pointer.production and pointer.production.version, pointer.rollout.candidate and pointer.rollout.candidate.version, *extra):
        read(version)
    production = records.get(pointer.production.version) if pointer.production else None
    if production is not None:
        read(previous_version(production))
    return pointer, records


def previous_version(production: VersionRecord) -> str | None:
    """The version production replaced (what a rollback returns to)."""
    promotion = Promotion.from_dict(production.promotion)
    return promotion.previous if promotion and promotion.previous else production.parent


def apply(model: str, planner: Planner, actor: str, reason: str, evidence: dict[str, Any], settings: Settings,
          versions: Iterable[str] = ()) -> Plan | None:
    """Plan and apply one move atomically; the plan applied, or None if the planner found nothing to do."""
    db = firestore_client(settings.project_id)
    pointer_ref = db.document(layout.model_doc(model))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> Plan | None:
        pointer, records = _read(transaction, db, model, versions)
        plan = planner(pointer, records)
        if plan is None:
            return None
        transaction.update(pointer_ref, {
            "production": plan.production.model_dump(mode="json") if plan.production else None,
            "rollout": plan.rollout.model_dump(mode="json"),
            "updated": datetime.now(timezone.utc),
        })
        changed = {change.version: change for change in plan.changes}
        for version in {*changed, *plan.record_updates}:
            fields = dict(plan.record_updates.get(version, {}))
            if version in changed:
                change = changed[version]
                fields["stage"] = change.target.value
                fields["history"] = firestore.ArrayUnion([transition_entry(change.source, change.target, actor, reason, evidence)])
            transaction.update(db.document(layout.version_doc(model, version)), fields)
        return plan

    plan = run(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))
    if plan is not None:
        _log_move(model, plan, actor, reason, evidence)
    return plan


def _log_move(model: str, plan: Plan, actor: str, reason: str, evidence: dict[str, Any]) -> None:
    message = f"{model}: {plan.summary} ({reason})"
    fields = dict(
        model=model, actor=actor, automatic=not actor.startswith("operator:"), action=plan.action,
        production=plan.production.version if plan.production else None,
        canary=plan.rollout.candidate.version if plan.rollout.candidate else None, percent=plan.rollout.percent,
        changes=[f"{c.version}: {c.source.value} -> {c.target.value}" for c in plan.changes], evidence=evidence,
    )
    if plan.action == "rollback":  # alerted on (infra/terraform/monitoring.tf)
        log("WARNING", "model_rolled_back", message, **fields)
    elif plan.action == "promote":
        log("NOTICE", "model_promoted", message, **fields)
    else:
        log("NOTICE", "rollout_changed", message, **fields)


def _step(percent: float, canary: Tally, production_version: str | None, production: Tally) -> dict[str, Any]:
    return {"rollout_step": RolloutStep(percent, _now(), canary, production_version, production).to_dict()}


def _promotion(previous: str | None, baseline: Tally, previous_rate: Tally | None) -> dict[str, Any]:
    return {"promotion": Promotion(_now(), previous, baseline, previous_rate).to_dict(), "rollout_step": {}}


def _tally(model: str, version: str | None, settings: Settings, counted: Mapping[str, Tally] | None = None) -> Tally:
    """The version's tally: from ``counted`` when the caller has just counted it, else two count queries."""
    if not version:
        return Tally()
    if counted and version in counted:
        return counted[version]
    return version_tally(firestore_client(settings.project_id), model, version)


# --- automatic: on_feedback ------------------------------------------------------------------------

def evaluate_release(model: str, settings: Settings, counted: Mapping[str, Tally] | None = None) -> ReleaseOutcome:
    """Judge the canary in rollout (or a freshly promoted production) and apply the verdict.

    ``counted`` holds tallies the caller has just counted (on_feedback counts the reported version
    anyway), so they are not counted twice.
    """
    pointer = load_pointer(model, settings)
    if pointer is None or pointer.production is None:
        return ReleaseOutcome(None, None)
    if pointer.rollout.candidate is None:
        outcome = _evaluate_production(model, pointer, settings, counted)
    else:
        outcome = _evaluate_canary(model, pointer, settings, counted)
    production = outcome.plan.production if outcome.plan else pointer.production
    rollout = outcome.plan.rollout if outcome.plan else pointer.rollout
    return dataclasses.replace(outcome, production=production.version if production else None,
                               canary=rollout.candidate.version if rollout.candidate else None)


def _evaluate_canary(model: str, pointer: ModelPointer, settings: Settings, counted: Mapping[str, Tally] | None) -> ReleaseOutcome:
    canary_version, production_version = pointer.rollout.candidate.version, pointer.production.version
    record = load_version(model, canary_version, settings)
    step = RolloutStep.from_dict(record.rollout_step) if record else None
    if record is None or step is None or step.production_version != production_version:
        return ReleaseOutcome(None, None)  # not a canary this code judges (e.g. one published before steps existed)
    canary_now = _tally(model, canary_version, settings, counted)
    production_now = _tally(model, production_version, settings, counted)
    judgement = judge_canary(canary_now - step.canary, production_now - step.production, step.percent, settings.release)
    if judgement.verdict is Verdict.WAIT:
        return ReleaseOutcome(judgement, None)

    def planner(current: ModelPointer, records: Records) -> Plan | None:
        if (current.rollout.candidate is None or current.rollout.candidate.version != canary_version
                or current.rollout.percent != step.percent or current.production is None
                or current.production.version != production_version):
            return None  # another instance already moved this step
        canary, production = records[canary_version], records[production_version]
        if judgement.verdict is Verdict.ROLL_BACK:
            return plan_rollback(current, canary, production, None)
        if judgement.verdict is Verdict.PROMOTE:
            plan = plan_promote(current, canary, production)
            fields = _promotion(production_version, canary_now, production_now - step.production)
        else:
            plan = plan_advance(current, canary, judgement.next_percent)
            fields = _step(judgement.next_percent, canary_now, production_version, production_now)
        return dataclasses.replace(plan, record_updates={canary_version: fields})

    plan = apply(model, planner, "on_feedback", judgement.detail, judgement.evidence(), settings)
    return ReleaseOutcome(judgement, plan)


def _evaluate_production(model: str, pointer: ModelPointer, settings: Settings, counted: Mapping[str, Tally] | None) -> ReleaseOutcome:
    production_version = pointer.production.version
    record = load_version(model, production_version, settings)
    promotion = Promotion.from_dict(record.promotion) if record else None
    if promotion is None or promotion.previous_rate is None:
        return ReleaseOutcome(None, None)  # nothing to compare with: no counting needed
    production_now = _tally(model, production_version, settings, counted)
    if not watching(promotion, production_now, settings.release):
        return ReleaseOutcome(None, None)
    judgement = judge_production(production_now - promotion.baseline, promotion.previous_rate, settings.release)
    if judgement.verdict is not Verdict.ROLL_BACK:
        return ReleaseOutcome(judgement, None)

    def planner(current: ModelPointer, records: Records) -> Plan | None:
        if current.production is None or current.production.version != production_version or current.rollout.candidate:
            return None
        return plan_rollback(current, None, records[production_version], records.get(promotion.previous))

    plan = apply(model, planner, "on_feedback", judgement.detail, judgement.evidence(), settings, versions=[promotion.previous])
    return ReleaseOutcome(judgement, plan)


# --- by an operator ---------------------------------------------------------------------------------

def _record(records: Records, model: str, version: str) -> VersionRecord:
    if version not in records:
        raise IllegalTransition(f"{model} has no version {version}")
    return records[version]


def promote(model: str, version: str, percent: float | None, who: str, settings: Settings, reason: str = "") -> Plan:
    """Make ``version`` production (``percent`` None or 100), or offer it to ``percent`` of devices as the canary."""
    pointer = load_pointer(model, settings)
    production_version = pointer.production.version if pointer and pointer.production else None
    canary_now, production_now = _tally(model, version, settings), _tally(model, production_version, settings)
    step_before = None
    if pointer and pointer.rollout.candidate and pointer.rollout.candidate.version == version:
        record = load_version(model, version, settings)
        step_before = RolloutStep.from_dict(record.rollout_step) if record else None

    def planner(current: ModelPointer, records: Records) -> Plan:
        target = _record(records, model, version)
        production = records.get(current.production.version) if current.production else None
        if percent is None or percent >= 100:
            previous_rate = production_now - step_before.production if step_before else None
            plan = plan_promote(current, target, production)
            fields = _promotion(production.version if production else None, canary_now, previous_rate)
        elif current.rollout.candidate is not None and current.rollout.candidate.version == version:
            plan = plan_advance(current, target, percent)
            fields = _step(percent, canary_now, production_version, production_now)
        else:
            plan = plan_canary(current, target, percent)
            fields = _step(percent, canary_now, production_version, production_now)
        return dataclasses.replace(plan, record_updates={version: fields})

    actor = f"operator:{who}"
    return apply(model, planner, actor, reason or "operator promote", {"percent": percent}, settings, versions=[version])


def rollback(model: str, who: str, settings: Settings, reason: str = "") -> Plan:
    """Roll back the canary in rollout, or else production to the version it replaced."""

    def planner(current: ModelPointer, records: Records) -> Plan:
        canary = records.get(current.rollout.candidate.version) if current.rollout.candidate else None
        production = records.get(current.production.version) if current.production else None
        parent = records.get(previous_version(production)) if production and previous_version(production) else None
        return plan_rollback(current, canary, production, parent)

    return apply(model, planner, f"operator:{who}", reason or "operator rollback", {}, settings)
