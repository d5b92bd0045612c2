"""Adapter: find the events that never arrived, and do their work late.

Delivery is at-least-once only while someone keeps trying: a notification
whose pushes all failed (a function down for longer than the retry budget;
the local Pub/Sub emulator even drops such messages instead of dead-lettering
them) or a Firestore trigger nobody retried would leave an object with no
image document, or a user's confirmation never applied. The scheduler's tick
looks at what is older than ``thresholds.reconcile_after_s`` (younger work may
have its event in flight),
compares what exists with what was handled and hands each gap to the same
idempotent code the event would have reached: ``ingest_object`` for a live
object with neither an image document nor a quarantine record (with the
generation it replaced, so an overwrite still retires the old one),
``images.apply_confirmation`` for a confirming report whose confirmation is
missing, and ``tallies.admit_report`` then on_feedback's judgement for a report
never admitted. Reports are found by their ``sent_at`` server timestamp (which
firestore.rules require of clients) from where the last tick stopped
(``layout.reconcile_doc``), so each report is read about once, not every tick.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.events import object_from_resource
from shared.feedback import InvalidFeedback, parse_feedback
from shared.gcp import images, model_registry, retrain_requests
from shared.gcp.clients import firestore_client, storage_client
from shared.gcp.feedback import judge_counted
from shared.gcp.images import QUARANTINE_COLLECTION
from shared.gcp.ingest import ingest_object
from shared.gcp.tallies import admit_report
from shared.gcp.training_lock import training_state
from shared.labelling import votes_of
from shared.logs import log

INGESTED_PREFIXES = (layout.DATASET_PREFIX, layout.UPLOADS_PREFIX)
MAX_OBJECTS_PER_TICK = 500  # a tick after a long outage stays well inside check_drift's timeout
MAX_REPORTS_PER_TICK = 5000  # reports read per tick; the rest at the next one


@dataclass(frozen=True)
class Reconciliation:
    model: str
    objects_checked: int
    objects_ingested: tuple[str, ...]
    confirmations_applied: int
    reports_admitted: int = 0


def _registered(db: firestore.Client, model: str) -> tuple[dict[str, list[int]], set[str]]:
    """Object name → its registered generations, and the objects registered without a label."""
    generations: dict[str, list[int]] = {}
    unlabelled: set[str] = set()
    for snapshot in db.collection(layout.images_collection(model)).select(["object", "generation", "label"]).stream():
        image = snapshot.to_dict()
        generations.setdefault(image["object"], []).append(int(image["generation"]))
        if image.get("label") is None:
            unlabelled.add(image["object"])
    return generations, unlabelled


def _lost_before(settings: Settings) -> datetime:
    """Created before this and still unhandled: lost. Younger work may have its event in flight."""
    return datetime.now(timezone.utc) - timedelta(seconds=settings.thresholds.reconcile_after_s)


def _unhandled_objects(db: firestore.Client, model: str, settings: Settings,
                       registered: dict[str, list[int]]) -> tuple[int, list[tuple[dict, int | None]]]:
    """(objects listed, [(resource, generation it replaced)]) for live objects no event was handled for."""
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    cutoff = _lost_before(settings)
    listed, unhandled = 0, []
    for prefix in INGESTED_PREFIXES:
        for blob in bucket.list_blobs(prefix=f"{prefix}/{model}/"):
            listed += 1
            generations = registered.get(blob.name, [])
            if blob.generation not in generations and blob.time_created is not None and blob.time_created < cutoff:
                older = [g for g in generations if g < blob.generation]
                unhandled.append((dict(blob._properties), max(older) if older else None))
    if not unhandled:
        return listed, []
    quarantine = db.collection(QUARANTINE_COLLECTION)
    references = [quarantine.document(layout.image_id(r["name"], int(r["generation"]))) for r, _ in unhandled]
    judged = {snapshot.id for snapshot in db.get_all(references) if snapshot.exists}
    return listed, [(r, o) for r, o in unhandled if layout.image_id(r["name"], int(r["generation"])) not in judged]


def _apply_missing_confirmations(db: firestore.Client, model: str, settings: Settings, unlabelled: set[str]) -> int:
    """Confirmations reported (a capture and its true label) but never recorded, or recorded while the capture's
    image was left unlabelled (a handler that died in between); returns how many were applied."""
    labels = model_registry.model_labels(model, settings)
    confirming = db.collection(layout.feedback_collection(model)).where(filter=firestore.FieldFilter("capture", ">", ""))
    reports = []
    cutoff = _lost_before(settings)
    for snapshot in confirming.stream():
        if snapshot.create_time is None or snapshot.create_time > cutoff:
            continue  # its trigger may still be on the way
        try:
            feedback = parse_feedback(model, snapshot.to_dict(), labels)
        except InvalidFeedback:
            continue  # on_feedback quarantines it (or did): there is nothing to apply
        if feedback.true_label is not None and feedback.capture is not None:
            reports.append(feedback)
    paths = sorted({layout.confirmation_doc(model, feedback.capture) for feedback in reports})
    recorded = {s.reference.path: s.to_dict() for s in db.get_all([db.document(p) for p in paths]) if s.exists} if paths else {}

    def is_missing(feedback) -> bool:
        found = recorded.get(layout.confirmation_doc(model, feedback.capture))
        if found is None or images.user_vote(feedback).key not in votes_of(found):
            return True  # the vote was never recorded
        return feedback.capture in unlabelled and found.get("label") is not None  # decided, yet the image was left unlabelled

    missing = [feedback for feedback in reports if is_missing(feedback)]
    labelled = sum(images.apply_confirmation(db, model, feedback.capture, images.user_vote(feedback), labels,
                                             settings.thresholds.min_agreeing_labellers) for feedback in missing)
    if labelled:  # as on_feedback would have: the labels it applies may complete a new-data run
        retrain_requests.new_data(model, settings)
    return len(missing)


def _admit_lost_reports(db: firestore.Client, model: str, settings: Settings) -> int:
    """Admit the reports sent since the last tick's look that on_feedback never decided, then judge each
    version they counted for as on_feedback would have; returns how many were admitted."""
    marker = db.document(layout.reconcile_doc(model))
    thresholds = settings.thresholds
    cutoff = _lost_before(settings)
    # A first look goes back one success window: older reports could no longer change a decision.
    since = (marker.get().to_dict() or {}).get("reports_until") or cutoff - timedelta(seconds=thresholds.success_window_s)
    sent = layout.FEEDBACK_SENT_AT
    reports = (db.collection(layout.feedback_collection(model))
               .where(filter=firestore.FieldFilter(sent, ">=", since))
               .where(filter=firestore.FieldFilter(sent, "<", cutoff))
               .order_by(sent).limit(MAX_REPORTS_PER_TICK))
    labels = model_registry.model_labels(model, settings)
    read, reached, admitted, versions = 0, since, 0, set()
    for snapshot in reports.stream():
        read += 1
        fields = snapshot.to_dict() or {}
        reached = fields[sent]
        if "counted" in fields:
            continue  # decided by on_feedback
        try:
            feedback = parse_feedback(model, fields, labels)
        except InvalidFeedback:
            continue  # on_feedback quarantines it (or did): it counts toward nothing
        verdict = admit_report(db, model, snapshot.reference.path, feedback, snapshot.create_time, thresholds).counted
        admitted += verdict is not None
        if verdict:
            versions.add(feedback.model_version)
    if versions:
        state = training_state(model, settings)
        for version in sorted(versions):
            judge_counted(db, model, version, settings, state)
    if read:  # with nothing read, the next tick looks from the same place (an empty range costs one read)
        # A full page may end inside a run of equal timestamps: the next tick starts at (not after) the last one.
        marker.set({"reports_until": reached if read == MAX_REPORTS_PER_TICK else cutoff})
    return admitted


def reconcile_model(model: str, settings: Settings) -> Reconciliation:
    """Do late what lost events would have done for ``model``; a no-op when nothing was lost."""
    db = firestore_client(settings.project_id)
    registered, unlabelled = _registered(db, model)
    listed, unhandled = _unhandled_objects(db, model, settings, registered)
    ingested = []
    for resource, replaced in unhandled[:MAX_OBJECTS_PER_TICK]:  # the rest at the next tick
        event = object_from_resource(resource, f"reconcile-{uuid.uuid4().hex}", "OBJECT_FINALIZE", replaced)
        try:
            outcome = ingest_object(event, settings)
        except Exception as exc:  # one object that cannot be read now must not stop the tick; the next one retries
            log("ERROR", "reconcile_failed", repr(exc)[:500], model=model, object=event.name, generation=event.generation)
            continue
        ingested.append(f"{event.name}#{event.generation}:{outcome.status}")
    confirmations = _apply_missing_confirmations(db, model, settings, unlabelled)
    reports = _admit_lost_reports(db, model, settings)
    result = Reconciliation(model, listed, tuple(ingested), confirmations, reports)
    if ingested or confirmations or reports:
        log("WARNING", "events_reconciled", f"{len(ingested)} objects, {confirmations} confirmations and {reports} "
            f"reports had no handled event", model=model, objects=list(ingested)[:50], confirmations=confirmations,
            reports=reports)
    return result
