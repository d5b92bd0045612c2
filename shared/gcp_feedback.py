"""Adapter: one created feedback document → success-rate evidence, confirmed labels, maybe a retrain.

Idempotent and hot-spot free: nothing is incremented. The success rate of a
version is two aggregation count queries over the feedback documents
themselves (each reads one index entry per 1,000 documents), so a redelivered
trigger recomputes the same numbers, and 1,000 feedback writes/s land on 1,000
different documents. A confirmed label is written to a confirmation document
keyed by the capture (set, not increment) and copied onto the image document
if the upload has already been registered; on_upload reads the confirmation
when the upload comes second, so either order ends in one labelled image.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import firestore

from shared import launch_rules, layout
from shared.config import Settings
from shared.events import FirestoreDocumentEvent
from shared.feedback import Feedback, InvalidFeedback, parse_feedback
from shared.gcp_clients import firestore_client
from shared.gcp_ingest import QUARANTINE_COLLECTION, count_new_labelled, model_labels
from shared.gcp_lifecycle import ReleaseOutcome, evaluate_release
from shared.gcp_tallies import version_tally
from shared.gcp_training import publish_request, training_state
from shared.logs import log
from shared.retrain import RetrainRequest, new_data_cause, new_data_request
from shared.success_rate import SuccessRate, success_rate, success_rate_request


@dataclass(frozen=True)
class FeedbackOutcome:
    status: str  # counted | rejected | ignored
    reason: str | None = None
    rate: SuccessRate | None = None
    labelled_images: int = 0
    retrain_requests: tuple[RetrainRequest, ...] = ()
    release: ReleaseOutcome | None = None  # the canary or production judgement this feedback led to


def _feedback_path(document: str) -> tuple[str, str] | None:
    parts = document.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "feedback":
        return parts[1], parts[3]
    return None


def apply_confirmation(db: firestore.Client, model: str, feedback: Feedback) -> int:
    """Record the user's true label for their capture; label its image document if registered. Returns images labelled."""
    db.document(layout.confirmation_doc(model, feedback.capture)).set(
        {"object": feedback.capture, "true_label": feedback.true_label, "uid": feedback.uid}
    )
    labelled = 0
    query = db.collection(layout.images_collection(model)).where(
        filter=firestore.FieldFilter("object", "==", feedback.capture)
    )
    for snapshot in query.stream():
        image = snapshot.to_dict()
        if image.get("label") is None and image.get("status") in ("new", "used"):
            snapshot.reference.update({"label": feedback.true_label, "labelled": True, "confirmed_by": feedback.uid})
            labelled += 1
    return labelled


def handle_feedback(event: FirestoreDocumentEvent, settings: Settings) -> FeedbackOutcome:
    """on_feedback's work."""
    where = _feedback_path(event.document)
    if where is None or event.change not in ("created", "written") or event.value is None:
        return FeedbackOutcome("ignored", f"not a feedback creation: {event.change} {event.document}")
    model, feedback_id = where
    db = firestore_client(settings.project_id)
    labels = model_labels(db, model)
    try:
        feedback = parse_feedback(model, event.value, labels)
    except InvalidFeedback as exc:
        db.collection(QUARANTINE_COLLECTION).document(f"feedback-{model}-{feedback_id}").set(
            {"document": event.document, "model": model, "reason": "invalid_feedback", "detail": str(exc),
             "created": firestore.SERVER_TIMESTAMP}
        )
        log("WARNING", "feedback_rejected", str(exc), model=model, document=event.document, reason="invalid_feedback")
        return FeedbackOutcome("rejected", str(exc))

    requests: list[RetrainRequest] = []
    state = training_state(model, settings)
    since_run = state.get("last_run_id")
    labelled = 0
    if feedback.true_label is not None and feedback.capture is not None:
        labelled = apply_confirmation(db, model, feedback)
        # As in on_upload: once this run's new-data cause is recorded, counting and asking again change nothing.
        if labelled and not launch_rules.is_recorded(state, new_data_cause(model, since_run)):
            request = new_data_request(model, count_new_labelled(db, model), settings.thresholds.new_data_images, since_run)
            requests.extend([request] if request else [])

    tally = version_tally(db, model, feedback.model_version)
    rate = success_rate(tally.correct, tally.total)
    release = evaluate_release(model, settings, counted={feedback.model_version: tally})
    # Only the version serving the fleet asks for a retrain: a bad canary is rolled back by the release
    # rules, and late reports about a replaced version say nothing about what devices run now.
    if release.production in (None, feedback.model_version):
        request = success_rate_request(
            model, feedback.model_version, rate, settings.thresholds.min_feedback_samples,
            settings.thresholds.min_success_rate, since_run,
        )
        # A recorded cause is not asked again: every later report would otherwise publish a duplicate.
        requests.extend([request] if request and not launch_rules.is_recorded(state, request.cause) else [])
    for request in requests:
        publish_request(request, settings)
    log("INFO", "feedback_counted", f"{model} {feedback.model_version}: {rate.correct}/{rate.total}",
        model=model, model_version=feedback.model_version, correct=rate.correct, total=rate.total,
        upper_bound=round(rate.high, 4), labelled_images=labelled)
    return FeedbackOutcome("counted", rate=rate, labelled_images=labelled, retrain_requests=tuple(requests), release=release)

