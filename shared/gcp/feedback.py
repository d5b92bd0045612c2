"""Adapter, on_feedback's use case: one created feedback document → success-rate evidence, confirmed labels, maybe a retrain.

Idempotent and hot-spot free. Each report is admitted once, in one transaction
(``tallies.admit_report``): it counts only while its user has fewer than
``thresholds.feedback_per_user_cap`` counted reports on that version in the
window, and a counted report is added to its version's tally bucket
(``shared.tally_buckets``, sharded) in the same transaction, so a redelivered
trigger tallies nothing twice. The success rate of a version is one sum over
the tally buckets of the last ``thresholds.success_window_s`` (whole buckets),
so a version that degrades months after its release shows it, undiluted by its
lifetime, and the sum reads bucket documents, not reports. A report that does
not count changes no number, so it is not judged on. A retrain, like a release
verdict, also needs enough distinct users (``thresholds.min_distinct_users``).
A confirmed label is a vote recorded on a confirmation document keyed by the
capture, and the label ``shared.labelling.decide`` makes of all its votes is
copied onto the image document if the upload has already been registered;
on_upload reads the votes when the upload comes second, so either order ends
in one labelled image.

Round trips per counted report, in order: the model's labels and overrides (kept by the instance for
``caching.model_definition_ttl_s``, ``model_settings.definition``); one ``get_all`` of the pointer, the
training state and the reported version's record; the admission transaction (begin, one ``get_all`` of the
report and its user's document, commit); the windowed sum; the release rules' own reads only when the
reported version is not the one they judge, or when a verdict is in sight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from google.cloud import firestore
from pydantic import ValidationError

from shared.config import Settings
from shared.events import FirestoreDocumentEvent
from shared.feedback import InvalidFeedback, parse_feedback
from shared import layout
from shared.gcp import images, model_settings, retrain_requests
from shared.gcp.clients import firestore_client
from shared.gcp.release import ReleaseOutcome, evaluate_release
from shared.gcp.tallies import admit_report, distinct_users, version_tally
from shared.logs import log
from shared.registry import ModelPointer, VersionRecord
from shared.retrain import RetrainRequest, is_recorded, success_rate_request
from shared.success_rate import SuccessRate, success_rate


@dataclass(frozen=True)
class FeedbackOutcome:
    status: str  # counted | not_counted (over its user's cap) | rejected | ignored
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


VERSION_ID = re.compile(r"^v[0-9]+$")  # shared.feedback.Feedback.model_version's pattern


@dataclass(frozen=True)
class ModelState:
    """What one event reads of its model in one round trip (``read_model_state``)."""

    pointer: ModelPointer | None  # None: no pointer document
    training: dict[str, Any]  # the training state (training_lock.training_state's)
    records: dict[str, VersionRecord] = field(default_factory=dict)  # the version records read with them


def read_model_state(db: firestore.Client, model: str, version: str | None) -> ModelState:
    """The pointer, the training state and ``version``'s record (if it exists), in one ``get_all``: the version
    a report is about is usually the one the release rules judge (production, or the canary in rollout)."""
    refs = [db.document(layout.model_doc(model)), db.document(layout.training_control_doc(model))]
    if version is not None and VERSION_ID.fullmatch(version):
        refs.append(db.document(layout.version_doc(model, version)))
    read = {s.reference.path: s for s in db.get_all(refs)}
    pointer, training, *record = (read[ref.path] for ref in refs)
    records = {}
    if record and record[0].exists:
        try:
            records[version] = VersionRecord.model_validate(record[0].to_dict())
        except ValidationError:  # judged or not, the release rules read it themselves, as they always did
            pass
    return ModelState(ModelPointer.model_validate(pointer.to_dict()) if pointer.exists else None,
                      (training.to_dict() or {}) if training.exists else {}, records)


def judge_counted(db: firestore.Client, model: str, version: str, settings: Settings, state: dict,
                  read: ModelState | None = None) -> tuple[SuccessRate, ReleaseOutcome, RetrainRequest | None]:
    """What newly counted reports on ``version`` may change: its windowed success rate, the release
    verdict, and a success-rate retrain (asked once, by the production version only). ``read``: the
    pointer and records this event already read (the release rules read them otherwise)."""
    thresholds = settings.thresholds
    since = datetime.now(timezone.utc) - timedelta(seconds=thresholds.success_window_s)
    recent = version_tally(db, model, version, since=since)
    rate = success_rate(recent.correct, recent.total)
    release = (evaluate_release(model, settings, read.pointer, read.records) if read is not None and read.pointer
               else evaluate_release(model, settings))
    # Only the version serving the fleet asks for a retrain: a bad canary is rolled back by the release
    # rules, and late reports about a replaced version say nothing about what devices run now.
    if release.production not in (None, version):
        return rate, release, None
    # While a canary rolls out, the release rules are judging the candidate fix: a retrain now would replace it
    # (a newer candidate supersedes the canary) before its evidence is in. If it is rolled back, production's
    # next low-success report asks.
    if release.canary is not None:
        return rate, release, None

    def request(users: int | None) -> RetrainRequest | None:
        return success_rate_request(model, version, rate, thresholds.min_feedback_samples,
                                    thresholds.min_success_rate, state.get("last_run_id"),
                                    users, thresholds.min_distinct_users)

    # Distinct users are counted only when the rate alone would ask and the cause is not yet asked for
    # (one more count query, which a run's worth of low-success reports would otherwise each pay).
    alone = request(None)
    wanted = (alone if alone is None or is_recorded(state, alone.cause)
              else request(distinct_users(db, model, version, since)))
    if wanted is not None and not is_recorded(state, wanted.cause):
        # The decision that the serving version's success rate fell below the floor (shown by the data, from
        # enough users): once per cause, as the request it makes; Cloud Monitoring alerts on it per version.
        log("WARNING", "success_rate_dropped",
            f"{model} {version}: {rate.correct}/{rate.total} correct, at most {rate.high:.1%} with "
            f"{rate.confidence:.0%} confidence, below {thresholds.min_success_rate:.1%}",
            model=model, model_version=version, correct=rate.correct, total=rate.total,
            upper_bound=round(rate.high, 4), threshold=thresholds.min_success_rate, cause=wanted.cause)
    return rate, release, retrain_requests.ask_once(wanted, state, settings)


def handle_feedback(event: FirestoreDocumentEvent, settings: Settings) -> FeedbackOutcome:
    """on_feedback's work."""
    where = _feedback_path(event.document)
    if where is None or event.change not in ("created", "written") or event.value is None:
        return FeedbackOutcome("ignored", f"not a feedback creation: {event.change} {event.document}")
    model, feedback_id = where
    # The model's labels and its own thresholds and release (kept by this instance for a bounded time).
    labels, settings = model_settings.definition(model, settings)
    db = firestore_client(settings.project_id)
    try:
        feedback = parse_feedback(model, event.value, labels)
    except InvalidFeedback as exc:
        images.quarantine_feedback(db, model, feedback_id, event.document, str(exc))
        log("WARNING", "feedback_rejected", str(exc), model=model, document=event.document, reason="invalid_feedback")
        return FeedbackOutcome("rejected", str(exc))

    read = read_model_state(db, model, feedback.model_version)
    state = read.training
    labelled = 0
    new_data = None
    if feedback.true_label is not None and feedback.capture is not None:
        labelled = images.apply_confirmation(db, model, feedback.capture, images.user_vote(feedback), labels,
                                             settings.thresholds.min_agreeing_labellers)
        new_data = retrain_requests.new_data(model, settings, state) if labelled else None

    thresholds = settings.thresholds
    counted = admit_report(db, model, event.document, feedback, event.created, thresholds)
    if not counted:
        # Over its user's cap (or deleted since): no count moved, so no decision can change; only its label applied.
        requests = (new_data,) if new_data is not None else ()
        log("INFO", "feedback_not_counted", f"{model} {feedback.model_version}: over the user's cap",
            model=model, model_version=feedback.model_version, cap=thresholds.feedback_per_user_cap,
            labelled_images=labelled)
        return FeedbackOutcome("not_counted", "over the user's cap per version and window" if counted is False
                               else "the report no longer exists", labelled_images=labelled, retrain_requests=requests)
    rate, release, low_success = judge_counted(db, model, feedback.model_version, settings, state, read)
    requests = tuple(request for request in (new_data, low_success) if request is not None)
    log("INFO", "feedback_counted", f"{model} {feedback.model_version}: {rate.correct}/{rate.total}",
        model=model, model_version=feedback.model_version, correct=rate.correct, total=rate.total,
        upper_bound=round(rate.high, 4), labelled_images=labelled)
    return FeedbackOutcome("counted", rate=rate, labelled_images=labelled, retrain_requests=requests, release=release)
