"""Adapter: the drift check of one model's production version.

Reads the production version's baseline from the registry and the most recent
field inputs of that version (the captures apps uploaded, with the statistics
on_upload computed), runs ``drift.detect_drift``, writes one report document
per check (keyed by the scheduler message, so a redelivery rewrites the same
report), and requests a retrain on drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.drift import DriftReport, DriftThresholds, detect_drift
from shared.gcp import retrain_requests
from shared.gcp.clients import firestore_client
from shared.gcp.training_lock import training_state
from shared.logs import log
from shared.retrain import RetrainRequest, drift_request


@dataclass(frozen=True)
class DriftCheck:
    model: str
    version: str | None
    report: DriftReport
    retrain_request: RetrainRequest | None = None


def thresholds_of(settings: Settings) -> DriftThresholds:
    t = settings.thresholds
    return DriftThresholds(t.drift_min_samples, t.drift_p_value, t.drift_min_effect, t.drift_max_label_distance)


def recent_inputs(db: firestore.Client, model: str, version: str, settings: Settings) -> list[dict[str, Any]]:
    since = datetime.now(timezone.utc) - timedelta(seconds=settings.thresholds.drift_window_s)
    query = (
        db.collection(layout.images_collection(model))
        .where(filter=firestore.FieldFilter("model_version", "==", version))
        .where(filter=firestore.FieldFilter("created", ">=", since))
        .order_by("created", direction=firestore.Query.DESCENDING)
        .limit(settings.thresholds.drift_max_recent)
    )
    return [s.to_dict() for s in query.stream()]


def production_version(db: firestore.Client, model: str) -> tuple[str | None, dict[str, Any]]:
    pointer = db.document(layout.model_doc(model)).get()
    production = (pointer.to_dict() or {}).get("production") if pointer.exists else None
    if not production:
        return None, {}
    version = production["version"]
    record = db.document(layout.version_doc(model, version)).get()
    return version, (record.to_dict() or {}).get("baseline", {}) if record.exists else {}


def check_model(model: str, check_id: str, settings: Settings) -> DriftCheck:
    db = firestore_client(settings.project_id)
    version, baseline = production_version(db, model)
    if version is None:
        report = DriftReport("no_baseline", 0, detail="no production version yet")
    else:
        report = detect_drift(baseline, recent_inputs(db, model, version, settings), thresholds_of(settings))
    db.document(f"{layout.drift_reports_collection(model)}/{check_id}").set(
        {"model": model, "version": version, "created": firestore.SERVER_TIMESTAMP, **report.to_dict()}
    )
    request = None
    if report.drifted:
        since_run = training_state(model, settings).get("last_run_id")
        request = drift_request(model, version, f"{layout.drift_reports_collection(model)}/{check_id}",
                                [t.name for t in report.tests if t.drifted], report.samples, since_run)
        log("WARNING", "drift_detected", report.detail, model=model, model_version=version, check_id=check_id,
            tests=[{"name": t.name, "statistic": t.statistic, "p_value": t.p_value} for t in report.tests if t.drifted])
        retrain_requests.publish_request(request, settings)
    else:
        log("INFO", "drift_checked", report.detail, model=model, model_version=version, status=report.status)
    return DriftCheck(model, version, report, request)
