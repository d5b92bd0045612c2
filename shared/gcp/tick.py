"""Adapter, check_drift's use case: one tick of the scheduler.

For each model the tick names (an empty message: every configured model) it
checks drift, sweeps requests left pending after a run's cooldown into one new
request, and then does the work of events that never arrived (``reconcile``).
"""

from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.gcp import drift, model_registry, reconcile, retrain_requests
from shared.gcp.drift import DriftCheck
from shared.logs import log
from shared.retrain import drift_check_model, require_known_model


def models_to_check(payload: Any, settings: Settings) -> tuple[str, ...]:
    """The model a tick names, if registered or configured; every configured model for an empty tick."""
    model = drift_check_model(payload)
    if model is None:
        return settings.models
    return (require_known_model(model, model_registry.model_labels(model, settings), settings.models),)


def handle_tick(payload: Any, check_id: str, settings: Settings) -> list[DriftCheck]:
    """The check and sweep of each model, then the work of events that never arrived."""
    checks = []
    for model in models_to_check(payload, settings):
        checks.append(drift.check_model(model, check_id, settings))
        retrain_requests.sweep_pending(model, settings)
        try:
            reconcile.reconcile_model(model, settings)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again; a retried tick would only repeat it
            log("ERROR", "reconcile_failed", repr(exc)[:500], model=model)
    return checks
