"""Adapter: retrain requests become at most one active training run per model.

``launch_rules`` decides; this module applies the decision in one Firestore
transaction over the model's training-control document and the new
``runs/{run_id}`` document, then starts the trainer through a launcher backend.
The trainer reports its stages and its end through the same module, and the
end releases the lock in a transaction too.

Why a transaction and not a counter: 50 concurrent deliveries of requests for
one model all read the same control document; Firestore serialises the
transactions, so exactly one sees "no active run" and launches, and the others
see the run it created and fold or drop their request.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from google.api_core import retry
from google.cloud import firestore

from shared import launch_rules, layout
from shared.config import Settings
from shared.gcp_clients import firestore_client, publisher_client, topic_path
from shared.launchers import launcher_for
from shared.logs import log
from shared.retrain import RetrainRequest

TRANSACTION_ATTEMPTS = 50  # contention on one control document is expected (bursts of requests)


class RunStatus:
    QUEUED = "queued"
    RUNNING = "running"
    PUBLISHED = "published"
    REJECTED = "rejected"
    FAILED = "failed"
    FINAL = frozenset({PUBLISHED, REJECTED, FAILED})


@dataclass(frozen=True)
class LaunchOutcome:
    action: str  # launch | fold | defer | duplicate
    run_id: str | None
    detail: str
    version: str | None = None
    execution: dict[str, Any] | None = None  # what the launcher reports (pid, execution name, ...)


def _now() -> float:
    return time.time()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def new_run_id(model: str, now: float) -> str:
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{model}-{stamp}-{uuid.uuid4().hex[:6]}"


def _control_ref(db: firestore.Client, model: str) -> firestore.DocumentReference:
    return db.document(layout.training_control_doc(model))


def _run_ref(db: firestore.Client, run_id: str) -> firestore.DocumentReference:
    return db.document(layout.run_doc(run_id))


def _run_document(request: RetrainRequest, decision: launch_rules.Decision, launcher: str, now: float) -> dict[str, Any]:
    return {
        "run_id": decision.run_id,
        "model": request.model,
        "version": launch_rules.allocated_version(decision.state),
        "reason": request.reason.value,
        "cause": request.cause,
        "evidence": request.evidence,
        "folded": list(decision.folded),
        "status": RunStatus.QUEUED,
        "launcher": launcher,
        "stages": {},
        "current_stage": None,
        "created": _iso(now),
        "updated": _iso(now),
    }


def create_run(request: RetrainRequest, settings: Settings) -> LaunchOutcome:
    """Decide on ``request`` and, when it launches, write the run document; starts nothing."""
    db = firestore_client(settings.project_id)
    control = _control_ref(db, request.model)
    now = _now()
    run_id = new_run_id(request.model, now)

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> launch_rules.Decision:
        snapshot = control.get(transaction=transaction)
        decision = launch_rules.decide(
            # Held only briefly until the launcher confirms the start: a handler that dies in between leaves
            # a lock that frees itself (and its causes) in minutes, not after a whole training's lifetime.
            snapshot.to_dict() if snapshot.exists else None, request, now, run_id, settings.training.launch_grace_s
        )
        if decision.action is launch_rules.Action.DUPLICATE:
            return decision
        transaction.set(control, decision.state)
        if decision.action is launch_rules.Action.LAUNCH:
            transaction.create(_run_ref(db, run_id), _run_document(request, decision, settings.training.launcher, now))
        if decision.reclaimed_run_id:
            transaction.set(
                _run_ref(db, decision.reclaimed_run_id),
                {"status": RunStatus.FAILED, "error": "abandoned: its training lock expired", "updated": _iso(now)},
                merge=True,
            )
        return decision

    decision = apply(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))
    version = launch_rules.allocated_version(decision.state) if decision.action is launch_rules.Action.LAUNCH else None
    log("INFO", f"retrain_{decision.action.value}", decision.detail, model=request.model, run_id=decision.run_id,
        cause=request.cause, reason=request.reason.value, reclaimed_run_id=decision.reclaimed_run_id)
    return LaunchOutcome(decision.action.value, decision.run_id, decision.detail, version)


def launch(request: RetrainRequest, settings: Settings) -> LaunchOutcome:
    """launch_training's work: one run per cause and at most one active run per model, started for real."""
    outcome = create_run(request, settings)
    if outcome.action != launch_rules.Action.LAUNCH.value:
        return outcome
    try:
        execution = launcher_for(settings).launch(
            request.model, outcome.run_id, settings,
            on_exit=lambda code: fail_if_unfinished(outcome.run_id, f"trainer exited with code {code}", settings),
        )
    except Exception as exc:  # the backend refused: free the lock so the same causes can launch again
        complete_run(outcome.run_id, RunStatus.FAILED, {}, settings, failed_stage="launch", error=repr(exc),
                     forget_causes=True)
        raise
    db = firestore_client(settings.project_id)
    _run_ref(db, outcome.run_id).update({"execution": execution, "updated": _iso(_now())})
    _renew_lock(db, request.model, outcome.run_id, settings)
    log("INFO", "training_launched", f"run {outcome.run_id} started via {settings.training.launcher}",
        model=request.model, run_id=outcome.run_id, execution=execution)
    return LaunchOutcome(outcome.action, outcome.run_id, outcome.detail, outcome.version, execution)


def load_run(run_id: str, settings: Settings) -> dict[str, Any]:
    snapshot = _run_ref(firestore_client(settings.project_id), run_id).get()
    if not snapshot.exists:
        raise KeyError(f"no run {run_id!r}")
    return snapshot.to_dict()


def _renew_lock(db: firestore.Client, model: str, run_id: str, settings: Settings) -> None:
    """A stage boundary is a heartbeat: the lock of a live run does not expire under it."""
    control = _control_ref(db, model)

    @firestore.transactional
    def renew(transaction: firestore.Transaction) -> None:
        state = (control.get(transaction=transaction).to_dict() or {})
        active = state.get("active_run")
        if active and active.get("run_id") == run_id:
            transaction.update(control, {"active_run.expires_at": _now() + settings.training.lock_ttl_s})

    renew(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))


@contextmanager
def lock_heartbeat(model: str, run_id: str, settings: Settings) -> Iterator[None]:
    """Renew the run's lock every third of its lifetime while the block runs.

    A stage can last longer than ``lock_ttl_s``; without a heartbeat the scheduler's sweep would take a live
    run's lock for a dead one's and start a twin. A renewal that fails is tried again at the next beat.
    """
    stop = threading.Event()

    def beat() -> None:
        db = firestore_client(settings.project_id)
        while not stop.wait(settings.training.lock_ttl_s / 3):
            try:
                _renew_lock(db, model, run_id, settings)
            except Exception as exc:  # noqa: BLE001 - the next beat retries; the run itself goes on
                log("WARNING", "lock_renewal_failed", repr(exc)[:500], model=model, run_id=run_id)

    thread = threading.Thread(target=beat, name="lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def start_stage(run_id: str, stage: str, settings: Settings) -> None:
    db = firestore_client(settings.project_id)
    now = _iso(_now())
    run = _run_ref(db, run_id)
    run.update({f"stages.{stage}": {"started_at": now}, "current_stage": stage, "status": RunStatus.RUNNING,
                "updated": now})
    _renew_lock(db, run.get(["model"]).get("model"), run_id, settings)


def end_stage(run_id: str, stage: str, seconds: float, settings: Settings) -> None:
    now = _iso(_now())
    _run_ref(firestore_client(settings.project_id), run_id).update(
        {f"stages.{stage}.ended_at": now, f"stages.{stage}.seconds": round(seconds, 3), "updated": now}
    )


def complete_in_transaction(
    transaction: firestore.Transaction,
    run_id: str,
    outcome: str,
    result: dict[str, Any],
    settings: Settings,
    *,
    failed_stage: str | None = None,
    error: str | None = None,
    forget_causes: bool = False,
) -> bool:
    """Record the run's end and release the model's lock inside ``transaction``.

    Reads first, then writes: a caller doing more in the same transaction reads
    before calling this and writes after. False (nothing written) if the run
    already has an outcome: an outcome is never overwritten (e.g. a late crash
    report after publishing, or publishing after a run was declared failed).
    """
    if outcome not in RunStatus.FINAL:
        raise ValueError(f"outcome must be one of {sorted(RunStatus.FINAL)}, not {outcome!r}")
    db = firestore_client(settings.project_id)
    run = _run_ref(db, run_id)
    run_snapshot = run.get(transaction=transaction)
    if not run_snapshot.exists:
        raise KeyError(f"no run {run_id!r}")
    if run_snapshot.get("status") in RunStatus.FINAL:
        return False
    control = _control_ref(db, run_snapshot.get("model"))
    state = control.get(transaction=transaction).to_dict()
    now = _now()
    released = launch_rules.finish(state, run_id, now, settings.training.cooldown_s, forget_causes)
    if released is not None:
        transaction.set(control, released)
    transaction.update(run, {"status": outcome, "result": result, "failed_stage": failed_stage, "error": error,
                             "ended": _iso(now), "updated": _iso(now), "current_stage": None})
    return True


def log_completion(run_id: str, outcome: str, failed_stage: str | None = None, error: str | None = None) -> None:
    log("ERROR" if outcome == RunStatus.FAILED else "INFO", f"run_{outcome}", f"run {run_id} {outcome}",
        run_id=run_id, failed_stage=failed_stage, error=error)


def complete_run(
    run_id: str,
    outcome: str,
    result: dict[str, Any],
    settings: Settings,
    *,
    failed_stage: str | None = None,
    error: str | None = None,
    forget_causes: bool = False,
) -> bool:
    """Record the run's end and release the model's lock (starting the cooldown), in one transaction.

    False (and nothing written) if the run already has an outcome.
    """
    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> bool:
        return complete_in_transaction(transaction, run_id, outcome, result, settings, failed_stage=failed_stage,
                                       error=error, forget_causes=forget_causes)

    if not apply(firestore_client(settings.project_id).transaction(max_attempts=TRANSACTION_ATTEMPTS)):
        return False
    log_completion(run_id, outcome, failed_stage, error)
    return True


# The reaper is the only one who knows a local trainer died: a brief Firestore outage must not leave its lock held.
_REAPER_RETRY = retry.Retry(predicate=retry.if_transient_error, initial=0.5, maximum=10.0, timeout=120.0)


@_REAPER_RETRY
def fail_if_unfinished(run_id: str, error: str, settings: Settings) -> bool:
    """Mark a run failed (releasing its lock) if its trainer ended without reporting an outcome."""
    try:
        stage = load_run(run_id, settings).get("current_stage") or "start"
    except KeyError:
        return False
    return complete_run(run_id, RunStatus.FAILED, {}, settings, failed_stage=stage, error=error)


def set_paused(model: str, paused: bool, settings: Settings) -> None:
    """While paused, automatic requests are kept pending (a manual request still launches)."""
    _control_ref(firestore_client(settings.project_id), model).set({"paused": paused}, merge=True)


def training_state(model: str, settings: Settings) -> dict[str, Any]:
    snapshot = _control_ref(firestore_client(settings.project_id), model).get()
    return snapshot.to_dict() or {} if snapshot.exists else {}


def sweep_pending(model: str, settings: Settings) -> RetrainRequest | None:
    """Publish one request serving everything left pending once the model is free again (scheduled)."""
    request = launch_rules.sweep_request(training_state(model, settings), model, _now())
    if request is not None:
        publish_request(request, settings)
    return request


def publish_request(request: RetrainRequest, settings: Settings) -> str:
    """Send a retrain request to launch_training (every trigger goes through here)."""
    future = publisher_client().publish(
        topic_path(settings.topics.retrain_requests, settings.project_id),
        request.to_message(),
        model=request.model,
        reason=request.reason.value,
    )
    message_id = future.result(timeout=30)
    log("INFO", "retrain_requested", request.cause, model=request.model, reason=request.reason.value,
        evidence=request.evidence, message_id=message_id)
    return message_id
