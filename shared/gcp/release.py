"""Adapter: apply ``shared.lifecycle`` moves to the registry, automatically (on_feedback) or by an operator.

Every move is ONE Firestore transaction that re-reads the pointer and the
versions involved, re-plans from what it read, and writes the pointer clients
poll together with each version's new stage and history entry. Concurrent
on_feedback instances that reach the same verdict therefore move a canary
once: the first commits, the others find the step already changed and do
nothing. Tallies are summed just before the transaction (one sum over each
version's tally buckets, ``shared.gcp.tallies``); a report arriving in between
lands in the next step's counts, never in two.
Tallies hold counted reports only, and a verdict also needs enough distinct
users on each version (``release.canary_min_users``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.gcp.model_registry import load_pointer, load_version
from shared.gcp.tallies import distinct_users, version_tally
from shared.gcp.training_lock import TRANSACTION_ATTEMPTS
from shared.lifecycle import (
    IllegalTransition, Judgement, Plan, Promotion, RolloutStep, Tally, Verdict, judge_release, plan_advance,
    plan_canary, plan_promote, plan_rollback, plan_verdict, promotion_fields, release_check, step_fields,
    transition_entry,
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
    """The pointer and the records of the versions it names (and production's previous one, for rollbacks)."""
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


def _tally(model: str, version: str | None, settings: Settings) -> Tally:
    """The version's lifetime tally (one sum over its tally buckets); the release rules compare counts since a
    step began."""
    if not version:
        return Tally()
    return version_tally(firestore_client(settings.project_id), model, version)


# --- automatic: on_feedback ------------------------------------------------------------------------

def evaluate_release(model: str, settings: Settings, pointer: ModelPointer | None = None,
                     known: Records | None = None) -> ReleaseOutcome:
    """Judge the canary in rollout (or a freshly promoted production) and apply the verdict.

    ``pointer`` and ``known`` version records: what the caller read this event (read here when not given); a
    verdict is applied in a transaction that reads them again."""
    pointer = pointer if pointer is not None else load_pointer(model, settings)
    if pointer is None or pointer.production is None:
        return ReleaseOutcome(None, None)  # nothing released yet
    # Only the judged version's record is needed: the canary in rollout, or production under watch.
    judged = (pointer.rollout.candidate or pointer.production).version
    record = (known or {}).get(judged) or load_version(model, judged, settings)
    records = {judged: record} if record is not None else {}
    check = release_check(pointer, records)
    judgement = None
    if check is not None:
        tallies = {version: _tally(model, version, settings) for version in check.versions}
        judgement = judge_release(check, tallies, settings.release)
        if judgement is not None and judgement.verdict is not Verdict.WAIT:
            # A verdict in sight: it also needs enough distinct users on each version (counted only now,
            # so most reports cost no extra query).
            db = firestore_client(settings.project_id)
            users = {version: distinct_users(db, model, version, check.since) for version in check.versions}
            judgement = judge_release(check, tallies, settings.release, users)
    plan = None
    if judgement is not None and judgement.verdict is not Verdict.WAIT:
        now = _now()
        versions = [check.promotion.previous] if check.promotion else []
        plan = apply(model, lambda current, records: plan_verdict(check, judgement, tallies, current, records, now),
                     "on_feedback", judgement.detail, judgement.evidence(), settings, versions=versions)
    production = plan.production if plan else pointer.production
    rollout = plan.rollout if plan else pointer.rollout
    return ReleaseOutcome(judgement, plan, canary=rollout.candidate.version if rollout.candidate else None,
                          production=production.version if production else None)


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
            fields = promotion_fields(_now(), production.version if production else None, canary_now, previous_rate)
        elif current.rollout.candidate is not None and current.rollout.candidate.version == version:
            plan = plan_advance(current, target, percent)
            fields = step_fields(_now(), percent, canary_now, production_version, production_now)
        else:
            plan = plan_canary(current, target, percent)
            fields = step_fields(_now(), percent, canary_now, production_version, production_now)
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
