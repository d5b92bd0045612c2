"""How retrain requests become training runs: at most one active run per model.

Pure rules over the model's training-control state (a plain dict, stored in
Firestore at ``layout.training_control_doc``) so they can be tested without
any emulator; ``shared.gcp.training_lock`` applies them inside a transaction.

State fields:
    active_run      {run_id, cause, reason, started_at, expires_at} or None
    pending         requests recorded while a run was active or during cooldown
    causes          cause -> run_id that served it (bounded, newest kept)
    cooldown_until  epoch seconds before which automatic requests wait
    paused          automatic requests wait while set (e.g. while a dataset is being seeded)
    last_run_id     the newest run started
    versions        how many versions were allocated; a launched run trains ``v{versions}``
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from shared.field_evidence import WAITED_KEY
from shared.retrain import RetrainReason, RetrainRequest, is_recorded

MAX_REMEMBERED_CAUSES = 500


class RunStatus:
    """The status of a ``runs/{run_id}`` document; a final one is never overwritten."""

    QUEUED = "queued"
    RUNNING = "running"
    PUBLISHED = "published"
    REJECTED = "rejected"
    FAILED = "failed"
    FINAL = frozenset({PUBLISHED, REJECTED, FAILED})


class Action(str, Enum):
    LAUNCH = "launch"  # start a new run (folding in anything pending)
    FOLD = "fold"  # a run is active: record the request as pending, served after it
    DEFER = "defer"  # cooling down after a run: record as pending, a later sweep launches it
    DUPLICATE = "duplicate"  # this cause was already served or recorded


@dataclass(frozen=True)
class Decision:
    action: Action
    run_id: str | None
    detail: str
    state: dict[str, Any]  # the control state to write back
    reclaimed_run_id: str | None = None  # an abandoned run whose lock expired
    folded: tuple[dict[str, Any], ...] = ()  # pending requests the new run serves


def _entry(request: RetrainRequest) -> dict[str, Any]:
    return {
        "cause": request.cause,
        "reason": request.reason.value,
        "evidence": request.evidence,
        "requested_at": request.requested_at.isoformat(),
    }


def _abandoned(state: dict[str, Any], now: float) -> tuple[str | None, list[dict[str, Any]]]:
    """The run whose lock expired (its holder died without releasing it) and its causes, as pending entries.

    The causes keep the dead run's reason: a manual run's work is relaunched even while training is paused.
    """
    active = state.get("active_run")
    if not active or active["expires_at"] > now:
        return None, []
    return active["run_id"], _unserved(state, active, now, {"reclaimed_from": active["run_id"]})


def _unserved(state: dict[str, Any], active: dict[str, Any], now: float, evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The causes the active run was to serve, as pending entries with its reason (a manual run's work is
    relaunched even while training is paused)."""
    return [
        {"cause": cause, "reason": active["reason"], "evidence": evidence,
         "requested_at": datetime.fromtimestamp(now, timezone.utc).isoformat()}
        for cause, served_by in (state.get("causes") or {}).items() if served_by == active["run_id"]
    ]


def decide(
    state: dict[str, Any] | None,
    request: RetrainRequest,
    now: float,
    new_run_id: str,
    lock_ttl_s: float,
    field_wait: str | None = None,
) -> Decision:
    """What to do with ``request`` given the control ``state`` at time ``now`` (epoch seconds).

    ``lock_ttl_s`` is how long a new run's lock holds before its holder renews it. ``field_wait`` says
    why an automatic request must still wait for field evidence (``shared.field_evidence``), if it must:
    it is deferred like a request in a cooldown, and every pending entry records the wait.
    """
    unchanged = copy.deepcopy(state or {})
    state = copy.deepcopy(unchanged)
    state.setdefault("pending", [])
    state.setdefault("causes", {})
    causes: dict[str, str] = state["causes"]

    # An expired lock first: the dead run's causes were never served, so they are pending again (and a
    # redelivery of one of them is no longer a duplicate but the request that serves them).
    reclaimed, orphaned = _abandoned(state, now)
    if reclaimed:
        state["active_run"] = None
        for entry in orphaned:
            del causes[entry["cause"]]
        state["pending"].extend(entry for entry in orphaned if not is_recorded(state, entry["cause"]))
    if is_recorded(state, request.cause) and not (reclaimed and request.cause not in causes):
        run_id = causes.get(request.cause)
        return Decision(Action.DUPLICATE, run_id, f"cause served by run {run_id}" if run_id else "cause already pending", unchanged)
    swept = [p["cause"] for p in request.evidence.get("pending") or []]
    if swept and all(cause in causes for cause in swept):  # a stale sweep: a run already served them all
        return Decision(Action.DUPLICATE, causes[swept[0]], "every pending cause it sweeps was served", unchanged)

    active = state.get("active_run")
    if active:
        state["pending"].append(_entry(request))
        return Decision(Action.FOLD, active["run_id"], f"run {active['run_id']} is active; request pending", state)

    if request.reason != RetrainReason.MANUAL:
        waiting = None
        if state.get("paused"):
            waiting = "training is paused"
        elif now < float(state.get("cooldown_until") or 0):
            waiting = f"cooling down until {state['cooldown_until']:.0f}"
        elif field_wait:
            waiting = field_wait
        if waiting:
            # A sweep's own requests are pending already: it is not one more.
            if not swept and not is_recorded(state, request.cause):
                state["pending"].append(_entry(request))
            if waiting == field_wait:
                for entry in state["pending"]:
                    entry[WAITED_KEY] = field_wait
            return Decision(Action.DEFER, None, f"{waiting}; request pending", state, reclaimed)

    folded = tuple(p for p in state["pending"] if p["cause"] != request.cause)
    for entry in (*folded, _entry(request)):
        causes[entry["cause"]] = new_run_id
    while len(causes) > MAX_REMEMBERED_CAUSES:
        causes.pop(next(iter(causes)))
    state["pending"] = []
    state["active_run"] = {
        "run_id": new_run_id,
        "cause": request.cause,
        "reason": request.reason.value,
        "started_at": now,
        "expires_at": now + lock_ttl_s,
    }
    state["last_run_id"] = new_run_id
    state["versions"] = int(state.get("versions") or 0) + 1
    return Decision(Action.LAUNCH, new_run_id, f"launching run {new_run_id}", state, reclaimed, folded)


def finish(state: dict[str, Any] | None, run_id: str, now: float, cooldown_s: float, forget_causes: bool,
           requeue_causes: bool = False) -> dict[str, Any] | None:
    """Release the lock held by ``run_id`` and start the cooldown; None if it does not hold it.

    ``forget_causes`` (when the run could not even start) lets the same causes launch again.
    ``requeue_causes`` (when its trainer died without an outcome, as for an expired lock) makes the
    run's causes pending again: the sweep after the cooldown launches a run that serves them.
    """
    state = copy.deepcopy(state or {})
    active = state.get("active_run")
    if not active or active["run_id"] != run_id:
        return None
    state["active_run"] = None
    if forget_causes:
        state["causes"] = {c: r for c, r in state.get("causes", {}).items() if r != run_id}
        return state
    if requeue_causes:
        unserved = _unserved(state, active, now, {"failed_run": run_id})
        state["causes"] = {c: r for c, r in state.get("causes", {}).items() if r != run_id}
        state.setdefault("pending", [])
        state["pending"].extend(entry for entry in unserved if not is_recorded(state, entry["cause"]))
    state["cooldown_until"] = now + cooldown_s
    return state


def allocated_version(state: dict[str, Any]) -> str:
    """The version a just-launched run trains (``decide`` allocated it)."""
    return f"v{int(state['versions'])}"


def sweep_request(state: dict[str, Any] | None, model: str, now: float) -> RetrainRequest | None:
    """After a run and its cooldown, one request that serves everything still pending.

    A lock whose holder died counts as free, and that run's causes as pending: the sweep reclaims it.
    """
    state = state or {}
    reclaimed, orphaned = _abandoned(state, now)
    if state.get("active_run") and not reclaimed:
        return None
    pending = [*(state.get("pending") or []), *orphaned]
    if state.get("paused"):  # only what an operator asked for goes ahead while paused, as when it was first asked
        pending = [p for p in pending if p["reason"] == RetrainReason.MANUAL.value]
    if not pending or now < float(state.get("cooldown_until") or 0):
        return None
    first = pending[0]
    return RetrainRequest(
        model=model,
        reason=RetrainReason(first["reason"]),
        cause=f"pending:{model}:{'|'.join(sorted(p['cause'] for p in pending))}"[:200],
        evidence={"pending": pending},
    )
