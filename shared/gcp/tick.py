"""Adapter, check_drift's use case: one tick of the scheduler.

For each model the tick names (an empty message: every configured or registered model) it
checks drift, counts new labelled images and judges production's success rate (the backstops of
on_upload's paced count and on_feedback's paced sum), sweeps
requests left pending after a run's cooldown into one new request, asks Cloud Run or Vertex AI
about its running run's execution and ends a run whose execution failed (``watch``), and then
does the work of events that never arrived (``reconcile``).
"""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.gcp import drift, feedback, model_registry, model_settings, reconcile, retrain_requests, watch
from shared.gcp.drift import DriftCheck
from shared.logs import log
from shared.retrain import drift_check_model, require_known_model


def models_to_check(payload: Any, settings: Settings) -> tuple[str, ...]:
    """The model a tick names, if registered or configured; for an empty tick every configured model
    (``EDGELOOP_MODELS``) and every registered one (``edgeloop model create``, a seed, a first training)."""
    model = drift_check_model(payload)
    if model is None:
        return tuple(dict.fromkeys((*settings.models, *model_settings.registered_models(settings))))
    return (require_known_model(model, model_registry.model_labels(model, settings), settings.models),)


def handle_tick(payload: Any, check_id: str, settings: Settings) -> list[DriftCheck]:
    """The check, sweep and execution watch of each model, then the work of events that never arrived.

    The watch comes after the sweep: a run it ends starts the cooldown, and its causes wait for a later
    tick's sweep rather than relaunching in this one.
    """
    checks = []
    for model in models_to_check(payload, settings):
        own = model_settings.for_model(model, settings)  # the model's own thresholds, gate and release
        checks.append(drift.check_model(model, check_id, own))
        retrain_requests.new_data(model, own)  # a crossing on_upload left to a later count (shared.count_pacing)
        feedback.judge_production(model, own)  # a success-rate retrain on_feedback left to a later sum (the same)
        retrain_requests.sweep_pending(model, own)
        try:
            watch.watch_model(model, own)
        except Exception as exc:  # noqa: BLE001 - the backend is asked again at the next tick; the rest goes on
            log("ERROR", "execution_watch_failed", repr(exc)[:500], model=model)
        try:
            reconcile.reconcile_model(model, own)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again; a retried tick would only repeat it
            log("ERROR", "reconcile_failed", repr(exc)[:500], model=model)
    return checks
