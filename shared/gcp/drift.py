"""Adapter: the drift check of one model's production version.

Reads the production version's baseline from the registry and that version's
``random_sample`` captures of the drift window (the unbiased sample of field
traffic devices upload, with the statistics on_upload computed; hard cases
captured for their low confidence are left out), runs ``drift.detect_drift``,
and on drift judges whether it hurts (``drift.assess_harm``: the version's
field success over the same window against its gate accuracy). Writes one
report document per check (keyed by the scheduler message, so a redelivery
rewrites the same report) and requests a retrain on a drift the
``thresholds.drift_retrain`` policy retrains on; any other drift is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.drift import DriftReport, DriftThresholds, Harm, assess_harm, detect_drift, retrain_on_drift
from shared.gcp import retrain_requests
from shared.gcp.clients import firestore_client
from shared.gcp.tallies import distinct_users, version_tally
from shared.gcp.training_lock import training_state
from shared.layout import CaptureReason
from shared.logs import log
from shared.retrain import RetrainRequest, drift_request


@dataclass(frozen=True)
class DriftCheck:
    model: str
    version: str | None
    report: DriftReport
    retrain_request: RetrainRequest | None = None
    harm: Harm | None = None  # judged on drift only


def thresholds_of(settings: Settings) -> DriftThresholds:
    t = settings.thresholds
    return DriftThresholds(t.drift_min_samples, t.drift_p_value, t.drift_min_effect, t.drift_max_label_distance)


def recent_inputs(db: firestore.Client, model: str, version: str, since: datetime, settings: Settings) -> list[dict[str, Any]]:
    """The version's most recent random-sample captures since ``since`` (index: model_version, capture_reason, created)."""
    query = (
        db.collection(layout.images_collection(model))
        .where(filter=firestore.FieldFilter("model_version", "==", version))
        .where(filter=firestore.FieldFilter("capture_reason", "==", CaptureReason.RANDOM_SAMPLE.value))
        .where(filter=firestore.FieldFilter("created", ">=", since))
        .order_by("created", direction=firestore.Query.DESCENDING)
        .limit(settings.thresholds.drift_max_recent)
    )
    return [s.to_dict() for s in query.stream()]


def production_version(db: firestore.Client, model: str) -> tuple[str | None, dict[str, Any]]:
    """The production version and its registry record ({} if none)."""
    pointer = db.document(layout.model_doc(model)).get()
    production = (pointer.to_dict() or {}).get("production") if pointer.exists else None
    if not production:
        return None, {}
    version = production["version"]
    record = db.document(layout.version_doc(model, version)).get()
    return version, (record.to_dict() or {}) if record.exists else {}


def harm_of(db: firestore.Client, model: str, version: str, record: dict[str, Any], since: datetime,
            settings: Settings) -> Harm:
    """The drift's harm: the version's field reports since ``since`` against its gate accuracy.

    Reports count as for the success rate (admitted reports only, from enough distinct users). A record
    without a measured int8 accuracy (registered by hand) is held to the gate's minimum.
    """
    tally = version_tally(db, model, version, since=since)
    gate_accuracy = float((record.get("metrics") or {}).get("int8_accuracy", settings.gate.min_accuracy))
    users = distinct_users(db, model, version, since) if tally.total else 0
    return assess_harm(tally.correct, tally.total, gate_accuracy, settings.release.max_drop,
                       settings.thresholds.min_feedback_samples, users, settings.thresholds.min_distinct_users)


def drift_message(report: DriftReport, harm: Harm | None, retrain: bool, policy: str) -> str:
    """E.g. "drift, harmless: not retrained (drift in brightness; field success 58/58 ...)"."""
    verdict = {"harmful": "harmful", "harmless": "harmless", "unknown": "harm unknown"}[harm.verdict] if harm else policy
    numbers = f"{report.detail} in {report.samples} random-sample captures" + (f"; {harm.detail}" if harm else "")
    if retrain and (harm is None or not harm.harmful):
        return f"drift, {verdict}: retrained (drift_retrain={policy}) ({numbers})"
    return f"drift, {verdict}: {'retrained' if retrain else 'not retrained'} ({numbers})"


def check_model(model: str, check_id: str, settings: Settings) -> DriftCheck:
    db = firestore_client(settings.project_id)
    version, record = production_version(db, model)
    since = datetime.now(timezone.utc) - timedelta(seconds=settings.thresholds.drift_window_s)
    harm = None
    if version is None:
        report = DriftReport("no_baseline", 0, detail="no production version yet")
    else:
        report = detect_drift(record.get("baseline", {}), recent_inputs(db, model, version, since, settings),
                              thresholds_of(settings))
        if report.drifted:
            harm = harm_of(db, model, version, record, since, settings)
    policy = settings.thresholds.drift_retrain
    retrain = retrain_on_drift(report, harm, policy)
    action = None if not report.drifted else "retrain" if retrain else "reported"
    decision = drift_message(report, harm, retrain, policy) if report.drifted else report.detail
    db.document(f"{layout.drift_reports_collection(model)}/{check_id}").set({
        "model": model, "version": version, "created": firestore.SERVER_TIMESTAMP, **report.to_dict(),
        "input": CaptureReason.RANDOM_SAMPLE.value, "harm": harm.to_dict() if harm else None,
        "retrain_policy": policy, "action": action, "decision": decision,
    })
    request = None
    if report.drifted:
        if retrain:
            since_run = training_state(model, settings).get("last_run_id")
            request = drift_request(model, version, f"{layout.drift_reports_collection(model)}/{check_id}",
                                    [t.name for t in report.tests if t.drifted], report.samples, since_run)
        # One event for every drift (the alert matches it); ``action`` says whether it was retrained on.
        log("WARNING", "drift_detected", decision, model=model,
            model_version=version, check_id=check_id, action=action, harm=harm.to_dict() if harm else None,
            tests=[{"name": t.name, "statistic": t.statistic, "p_value": t.p_value} for t in report.tests if t.drifted])
        if request is not None:
            retrain_requests.publish_request(request, settings)
    else:
        log("INFO", "drift_checked", report.detail, model=model, model_version=version, status=report.status,
            samples=report.samples)
    return DriftCheck(model, version, report, request, harm)
