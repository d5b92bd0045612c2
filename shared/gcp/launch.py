"""Adapter, launch_training's use case: a retrain request becomes at most one running trainer.

The lock (``training_lock``) decides and records; a launcher backend starts
the trainer; a backend that refuses frees the lock again so the same causes
can launch later.
"""

from __future__ import annotations

from datetime import datetime

from shared import launch_rules
from shared.config import Settings
from shared.gcp import field_evidence, model_registry, runs, training_lock
from shared.gcp.launchers import launcher_for
from shared.gcp.training_lock import LaunchOutcome
from shared.launch_rules import RunStatus
from shared.logs import log
from shared.retrain import RetrainRequest, request_from_message, require_known_model


def launch(request: RetrainRequest, settings: Settings) -> LaunchOutcome:
    """One run per cause and at most one active run per model, started for real.

    A drift or success-rate request may first wait for field evidence (``shared.field_evidence``).
    """
    outcome = training_lock.create_run(request, settings, field_wait=field_evidence.wait_for_field(request, settings))
    if outcome.action != launch_rules.Action.LAUNCH.value:
        return outcome
    try:
        execution = launcher_for(settings).launch(
            request.model, outcome.run_id, settings,
            on_exit=lambda code: training_lock.fail_if_unfinished(outcome.run_id, f"trainer exited with code {code}",
                                                                  settings),
        )
    except Exception as exc:  # the backend refused: free the lock so the same causes can launch again
        training_lock.complete_run(outcome.run_id, RunStatus.FAILED, {}, settings, failed_stage="launch",
                                   error=repr(exc), forget_causes=True)
        raise
    runs.record_execution(outcome.run_id, execution, settings)
    training_lock.renew_lock(request.model, outcome.run_id, settings)
    log("INFO", "training_launched", f"run {outcome.run_id} started via {settings.training.launcher}",
        model=request.model, run_id=outcome.run_id, execution=execution)
    return LaunchOutcome(outcome.action, outcome.run_id, outcome.detail, outcome.version, execution)


def handle_retrain_message(payload: object, published_at: datetime, settings: Settings) -> tuple[RetrainRequest, LaunchOutcome]:
    """launch_training's work for one message: a valid request about a registered model, launched or folded."""
    request = request_from_message(payload, published_at)
    require_known_model(request.model, model_registry.model_labels(request.model, settings))
    return request, launch(request, settings)
