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
training state, the reported version's record, the report and its user's document, and beside it (in another
thread) the reported version's windowed sum; the admission, one commit conditional on the report and the
user's document being unchanged since (a transaction when either changed), after which the report's own count
is added to the sum it could not have seen; the release rules' own reads only when the reported version is not
the one they judge, or when a verdict is in sight. Two round trips in line on the quiet path.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from google.cloud import firestore
from pydantic import ValidationError

from shared.config import Settings
from shared.count_pacing import CountPacer
from shared.events import FirestoreDocumentEvent
from shared.feedback import Feedback, InvalidFeedback, parse_feedback
from shared import layout
from shared.gcp import images, model_settings, retrain_requests
from shared.gcp.clients import firestore_client
from shared.gcp.release import ReleaseOutcome, evaluate_release
from shared.gcp.tallies import Admission, admission_refs, admit_report, distinct_users, version_tally
from shared.lifecycle import Tally
from shared.logs import log
from shared.registry import ModelPointer, VersionRecord
from shared.retrain import RetrainRequest, is_recorded, reports_until_success_rate_request, success_rate_request
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
    also: dict[str, Any] = field(default_factory=dict)  # path → snapshot of the other documents read with them


def read_model_state(db: firestore.Client, model: str, version: str | None,
                     also: Sequence[firestore.DocumentReference] = ()) -> ModelState:
    """The pointer, the training state and ``version``'s record (if it exists), in one ``get_all``: the version
    a report is about is usually the one the release rules judge (production, or the canary in rollout).
    ``also``: documents read in the same round trip (the report and its user's, for its admission)."""
    refs = [db.document(layout.model_doc(model)), db.document(layout.training_control_doc(model))]
    if version is not None and VERSION_ID.fullmatch(version):
        refs.append(db.document(layout.version_doc(model, version)))
    read = {s.reference.path: s for s in db.get_all([*refs, *also])}
    pointer, training, *record = (read[ref.path] for ref in refs)
    records = {}
    if record and record[0].exists:
        try:
            records[version] = VersionRecord.model_validate(record[0].to_dict())
        except ValidationError:  # judged or not, the release rules read it themselves, as they always did
            pass
    return ModelState(ModelPointer.model_validate(pointer.to_dict()) if pointer.exists else None,
                      (training.to_dict() or {}) if training.exists else {}, records,
                      {ref.path: read[ref.path] for ref in also})


def _window_since(settings: Settings) -> datetime:
    """Where a version's windowed success rate starts now (``thresholds.success_window_s`` back)."""
    return datetime.now(timezone.utc) - timedelta(seconds=settings.thresholds.success_window_s)


def judge_counted(db: firestore.Client, model: str, version: str, settings: Settings, state: dict,
                  read: ModelState | None = None, recent: tuple[datetime, Tally] | None = None,
                  sum_rate: bool = True) -> tuple[SuccessRate | None, ReleaseOutcome, RetrainRequest | None]:
    """What newly counted reports on ``version`` may change: its windowed success rate, the release
    verdict, and a success-rate retrain (asked once, by the production version only). ``read``: the
    pointer and records this event already read (the release rules read them otherwise); ``recent``:
    (since, tally) of ``version``'s window as this event already summed it (summed here otherwise);
    ``sum_rate`` False: the rate is not summed (``shared.count_pacing`` says no retrain can be due), so only
    the release rules judge."""
    thresholds = settings.thresholds
    release = (evaluate_release(model, settings, read.pointer, read.records) if read is not None and read.pointer
               else evaluate_release(model, settings))
    if recent is None and not sum_rate:
        return None, release, None
    since, recent = recent if recent is not None else _window_tally(db, model, version, settings)
    rate = success_rate(recent.correct, recent.total)
    key = _sum_key(settings, model, version)
    # Only the version serving the fleet asks for a retrain: a bad canary is rolled back by the release
    # rules, and late reports about a replaced version say nothing about what devices run now.
    # While a canary rolls out, the release rules are judging the candidate fix: a retrain now would replace it
    # (a newer candidate supersedes the canary) before its evidence is in. If it is rolled back, production's
    # next low-success report asks.
    if release.production not in (None, version) or release.canary is not None:
        _sums.counted(key, slack=math.inf)  # no retrain from this version's rate until the sum is old
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
    asked = retrain_requests.ask_once(wanted, state, settings)
    # Recorded only once asked (a failed publish is retried with the report, which then sums again). A cause
    # recorded, or just asked for, leaves nothing to sum for until the sum is old: by then launch_training has
    # recorded it, or the request is asked again.
    done = asked is not None or (alone is not None and is_recorded(state, alone.cause))
    _sums.counted(key, slack=math.inf if done else reports_until_success_rate_request(
        recent.correct, recent.total, thresholds.min_feedback_samples, thresholds.min_success_rate))
    return rate, release, asked


def judge_production(model: str, settings: Settings) -> RetrainRequest | None:
    """The scheduler's backstop for the paced sum: production's windowed rate judged as its next report would be
    (on_feedback sums it only when a retrain could be due; with several instances, the last reports before a
    quiet spell may leave one due)."""
    db = firestore_client(settings.project_id)
    read = read_model_state(db, model, None)
    if read.pointer is None or read.pointer.production is None:
        return None
    return judge_counted(db, model, read.pointer.production.version, settings, read.training, read)[2]


def _window_tally(db: firestore.Client, model: str, version: str, settings: Settings) -> tuple[datetime, Tally]:
    since = _window_since(settings)
    return since, version_tally(db, model, version, since=since)


# The windowed sum runs beside the event's first read, not after its admission: one round trip fewer in line.
_ALONGSIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="on_feedback-sum")
# (project, model, version) → this instance's last windowed sum; its slack: the reports until a retrain could be due.
_sums = CountPacer()


def _sum_key(settings: Settings, model: str, version: str) -> tuple[str, str, str]:
    return settings.project_id, model, version


def _with_this_report(summed: Future, admission: Admission, feedback: Feedback) -> tuple[datetime, Tally] | None:
    """The window's tally including this report, from a sum taken before its admission committed: the sum
    plus what this admission added, when it added anything (None otherwise: a redelivery's report was
    tallied by an earlier delivery that the sum may or may not have seen, so it is summed again)."""
    if admission.tallied_until is None:
        return None
    since, before = summed.result()
    if not admission.adds_to(since):
        return since, before
    return since, Tally(before.correct + int(feedback.correct), before.total + 1)


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

    paced = not _sums.should_count(_sum_key(settings, model, feedback.model_version),
                                   settings.caching.success_rate_sum_interval_s)
    summed = None if paced else _ALONGSIDE.submit(_window_tally, db, model, feedback.model_version, settings)
    read = read_model_state(db, model, feedback.model_version, also=admission_refs(db, model, event.document, feedback))
    state = read.training
    labelled = 0
    new_data = None
    if feedback.true_label is not None and feedback.capture is not None:
        labelled = images.apply_confirmation(db, model, feedback.capture, images.user_vote(feedback), labels,
                                             settings.thresholds.min_agreeing_labellers)
        new_data = retrain_requests.new_data(model, settings, state) if labelled else None

    thresholds = settings.thresholds
    if summed is not None:
        summed.result()  # the sum must not see this report's own count: it is added below, once
    admission = admit_report(db, model, event.document, feedback, event.created, thresholds, read.also)
    counted = admission.counted
    if not counted:
        # Over its user's cap (or deleted since): no count moved, so no decision can change; only its label applied.
        requests = (new_data,) if new_data is not None else ()
        log("INFO", "feedback_not_counted", f"{model} {feedback.model_version}: over the user's cap",
            model=model, model_version=feedback.model_version, cap=thresholds.feedback_per_user_cap,
            labelled_images=labelled)
        return FeedbackOutcome("not_counted", "over the user's cap per version and window" if counted is False
                               else "the report no longer exists", labelled_images=labelled, retrain_requests=requests)
    rate, release, low_success = judge_counted(db, model, feedback.model_version, settings, state, read,
                                               _with_this_report(summed, admission, feedback) if summed is not None else None,
                                               sum_rate=not paced)
    requests = tuple(request for request in (new_data, low_success) if request is not None)
    if rate is None:
        log("INFO", "feedback_counted", f"{model} {feedback.model_version}: counted (its rate not summed: no "
            "retrain can be due yet)", model=model, model_version=feedback.model_version, labelled_images=labelled)
        return FeedbackOutcome("counted", labelled_images=labelled, retrain_requests=requests, release=release)
    log("INFO", "feedback_counted", f"{model} {feedback.model_version}: {rate.correct}/{rate.total}",
        model=model, model_version=feedback.model_version, correct=rate.correct, total=rate.total,
        upper_bound=round(rate.high, 4), labelled_images=labelled)
    return FeedbackOutcome("counted", rate=rate, labelled_images=labelled, retrain_requests=requests, release=release)
