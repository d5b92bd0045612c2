"""Adapter: the model's training lock, i.e. its training-control document.

``launch_rules`` decides; this module applies the decision in one Firestore
transaction over the control document and the new ``runs/{run_id}`` document.
A run's end releases the lock in a transaction too, and a live trainer renews
it while it works.

Why a transaction and not a counter: 50 concurrent deliveries of requests for
one model all read the same control document; Firestore serialises the
transactions, so exactly one sees "no active run" and launches, and the others
see the run it created and fold or drop their request.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from google.api_core import retry
from google.cloud import firestore

from shared import launch_rules, layout
from shared.config import Settings
from shared.gcp import runs
from shared.gcp.clients import firestore_client
from shared.launch_rules import RunStatus
from shared.logs import log
from shared.retrain import RetrainRequest

TRANSACTION_ATTEMPTS = 50  # contention on one control document is expected (bursts of requests)


@dataclass(frozen=True)
class LaunchOutcome:
    action: str  # launch | fold | defer | duplicate
    run_id: str | None
    detail: str
    version: str | None = None
    execution: dict[str, Any] | None = None  # what the launcher reports (pid, execution name, ...)


def _control_ref(db: firestore.Client, model: str) -> firestore.DocumentReference:
    return db.document(layout.training_control_doc(model))


def training_state(model: str, settings: Settings) -> dict[str, Any]:
    snapshot = _control_ref(firestore_client(settings.project_id), model).get()
    return snapshot.to_dict() or {} if snapshot.exists else {}


def set_paused(model: str, paused: bool, settings: Settings) -> None:
    """While paused, automatic requests are kept pending (a manual request still launches)."""
    _control_ref(firestore_client(settings.project_id), model).set({"paused": paused}, merge=True)


def create_run(request: RetrainRequest, settings: Settings, field_wait: str | None = None) -> LaunchOutcome:
    """Decide on ``request`` and, when it launches, take the lock and write the run document; starts nothing.

    ``field_wait``: why the request must still wait for field evidence (``shared.field_evidence``), if it must.
    """
    db = firestore_client(settings.project_id)
    control = _control_ref(db, request.model)
    now = runs.now()
    run_id = runs.new_run_id(request.model, now)

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> launch_rules.Decision:
        snapshot = control.get(transaction=transaction)
        decision = launch_rules.decide(
            # Held only briefly until the launcher confirms the start: a handler that dies in between leaves
            # a lock that frees itself (and its causes) in minutes, not after a whole training's lifetime.
            snapshot.to_dict() if snapshot.exists else None, request, now, run_id, settings.training.launch_grace_s,
            field_wait=field_wait,
        )
        if decision.action is launch_rules.Action.DUPLICATE:
            return decision
        transaction.set(control, decision.state)
        if decision.action is launch_rules.Action.LAUNCH:
            transaction.create(runs.run_ref(db, run_id),
                               runs.run_document(request, decision, settings.training.launcher, now))
        if decision.reclaimed_run_id:
            transaction.set(
                runs.run_ref(db, decision.reclaimed_run_id),
                {"status": RunStatus.FAILED, "error": "abandoned: its training lock expired", "updated": runs.iso(now)},
                merge=True,
            )
        return decision

    decision = apply(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))
    version = launch_rules.allocated_version(decision.state) if decision.action is launch_rules.Action.LAUNCH else None
    log("INFO", f"retrain_{decision.action.value}", decision.detail, model=request.model, run_id=decision.run_id,
        cause=request.cause, reason=request.reason.value, reclaimed_run_id=decision.reclaimed_run_id)
    return LaunchOutcome(decision.action.value, decision.run_id, decision.detail, version)


def renew_lock(model: str, run_id: str, settings: Settings) -> None:
    """A sign of life: the lock of a live run does not expire under it."""
    db = firestore_client(settings.project_id)
    control = _control_ref(db, model)

    @firestore.transactional
    def renew(transaction: firestore.Transaction) -> None:
        state = (control.get(transaction=transaction).to_dict() or {})
        active = state.get("active_run")
        if active and active.get("run_id") == run_id:
            transaction.update(control, {"active_run.expires_at": runs.now() + settings.training.lock_ttl_s})

    renew(db.transaction(max_attempts=TRANSACTION_ATTEMPTS))


@contextmanager
def lock_heartbeat(model: str, run_id: str, settings: Settings) -> Iterator[None]:
    """Renew the run's lock every third of its lifetime while the block runs.

    A stage can last longer than ``lock_ttl_s``; without a heartbeat the scheduler's sweep would take a live
    run's lock for a dead one's and start a twin. A renewal that fails is tried again at the next beat.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.training.lock_ttl_s / 3):
            try:
                renew_lock(model, run_id, settings)
            except Exception as exc:  # noqa: BLE001 - the next beat retries; the run itself goes on
                log("WARNING", "lock_renewal_failed", repr(exc)[:500], model=model, run_id=run_id)

    thread = threading.Thread(target=beat, name="lock-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


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
    requeue_causes: bool = False,
    recorded: dict[str, Any] | None = None,
) -> bool:
    """Record the run's end and release the model's lock inside ``transaction``.

    Reads first, then writes: a caller doing more in the same transaction reads
    before calling this and writes after. False (nothing written) if the run
    already has an outcome: an outcome is never overwritten (e.g. a late crash
    report after publishing, or publishing after a run was declared failed).
    ``recorded`` adds fields to the run document (e.g. what its backend said).
    """
    now = runs.now()
    ended = runs.ended_fields(outcome, result, failed_stage, error, now)
    db = firestore_client(settings.project_id)
    run = runs.run_ref(db, run_id)
    run_snapshot = run.get(transaction=transaction)
    if not run_snapshot.exists:
        raise KeyError(f"no run {run_id!r}")
    if run_snapshot.get("status") in RunStatus.FINAL:
        return False
    control = _control_ref(db, run_snapshot.get("model"))
    state = control.get(transaction=transaction).to_dict()
    released = launch_rules.finish(state, run_id, now, settings.training.cooldown_s, forget_causes, requeue_causes)
    if released is not None:
        transaction.set(control, released)
    transaction.update(run, {**ended, **(recorded or {})})
    return True


def complete_run(run_id: str, outcome: str, result: dict[str, Any], settings: Settings, **ending: Any) -> bool:
    """Record the run's end and release the model's lock (starting the cooldown), in one transaction.

    ``ending`` is what ``complete_in_transaction`` takes besides (failed_stage, error, forget_causes,
    requeue_causes, recorded).
    False (and nothing written) if the run already has an outcome.
    """
    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> bool:
        return complete_in_transaction(transaction, run_id, outcome, result, settings, **ending)

    if not apply(firestore_client(settings.project_id).transaction(max_attempts=TRANSACTION_ATTEMPTS)):
        return False
    runs.log_completion(run_id, outcome, ending.get("failed_stage"), ending.get("error"))
    return True


# The reaper is the only one who knows a local trainer died: a brief Firestore outage must not leave its lock held.
_REAPER_RETRY = retry.Retry(predicate=retry.if_transient_error, initial=0.5, maximum=10.0, timeout=120.0)


@_REAPER_RETRY
def fail_if_unfinished(run_id: str, error: str, settings: Settings, backend_state: dict[str, Any] | None = None) -> bool:
    """A trainer ended without reporting an outcome: mark its run failed at its current stage with ``error``,
    free the lock (the cooldown starts) and make the run's causes pending again, as an expired lock does,
    so the sweep after the cooldown launches a run that serves them.

    One path for every backend: the local reaper (the subprocess exited) and the tick's watcher (Cloud Run
    or Vertex AI says the execution failed, was cancelled or is gone; ``backend_state`` is recorded on the
    run). False (nothing written) if the run already has an outcome.
    """
    try:
        stage = runs.load_run(run_id, settings).get("current_stage") or "start"
    except KeyError:
        return False
    recorded = {"backend_state": backend_state} if backend_state else None
    return complete_run(run_id, RunStatus.FAILED, {}, settings, failed_stage=stage, error=error,
                        requeue_causes=True, recorded=recorded)
