"""Adapter, part of the scheduler's tick: watched cloud executions.

A local trainer's exit is seen by the process that started it (the launcher's reaper). A Cloud Run
execution or Vertex AI CustomJob that is killed, runs out of memory, times out or is cancelled says
nothing to anyone: without this its run would stay "running" until the lock expires. So each tick
asks the backend about the running run of each model, and a run the backend has ended without an
outcome (``shared.executions.judge``) ends now, the way a local trainer's crash ends it
(``training_lock.fail_if_unfinished``: failed with the backend's reason, lock freed, causes pending
again), with what the backend said recorded on the run.
"""

from __future__ import annotations

from shared import executions
from shared.config import Settings
from shared.executions import Verdict
from shared.gcp import launchers, runs, training_lock
from shared.launch_rules import RunStatus
from shared.logs import log

# How long a succeeded execution's run may stay without an outcome (the trainer writes it just before exiting).
OUTCOME_GRACE_S = 120.0


def watch_model(model: str, settings: Settings) -> Verdict | None:
    """Ask the backend about ``model``'s running run and end it if its execution ended without an outcome.

    None when there is nothing to ask (no active run, a local trainer, no execution recorded yet).
    """
    active = (training_lock.training_state(model, settings).get("active_run") or {}).get("run_id")
    if not active:
        return None
    try:
        run = runs.load_run(active, settings)
    except KeyError:
        return None
    if run.get("status") in RunStatus.FINAL:
        return None
    state = launchers.execution_state(run.get("execution"))
    if state is None:
        return None
    now = runs.now()
    verdict = executions.judge(run, state, now, OUTCOME_GRACE_S)
    if verdict.fail and training_lock.fail_if_unfinished(active, verdict.error, settings, state.record(now)):
        log("ERROR", "execution_failed", verdict.error, model=model, run_id=active, phase=state.phase.value)
    return verdict
