"""Adapter: counted feedback per version, in tally buckets; device records counted by aggregation queries.

on_feedback admits each report once (``admit_report``: one commit conditional on
the report and its user's document being as the event read them, else one
transaction): it stamps the time the report was created (``received_at``) and whether it counts
(``counted``: ``shared.feedback_admission`` caps each user's counted reports
per version and window), and adds a counted report to its version's tally
bucket (``shared.tally_buckets``: one document per time bucket and shard) in
the same commit, so a report is tallied exactly once, and a redelivered
trigger changes no tally. A version's correct and total counted reports, over
a window or its lifetime, are one sum aggregation over its bucket documents:
it reads index entries per bucket document, at most
``(success_window_s / tally_bucket_s + 1) x tally_shards`` for a window,
however many reports the window holds (a count over the reports themselves
would read one index entry per report, on every report: a cost growing with
the square of the report rate). Distinct users are counted on the
per-(version, user) documents admission keeps.

The fleet inventory (``fleet_version``): each device sets its own record
``models/{model}/devices/{uid}`` (shared/telemetry.py) at most once a period,
so no document is written by more than one device nor more than about once an
hour: a million devices are about 280 writes/s spread over a million
documents, against Firestore's one write per second per document. Nothing is
counted on write. Per version, one query over the records with that
``model_version`` and a ``last_seen`` within the window counts the devices and
sums their prediction counts and latency histogram buckets (``BUCKETS`` + 2
aggregations, five per request), each reading one index entry per 1,000
records instead of the records. The histograms add, so the sums are the
histogram of the fleet's latencies on that version, from which p50/p95 follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1 import aggregation, base_aggregation

from shared import layout, tally_buckets
from shared.config import Thresholds
from shared.feedback import Feedback
from shared.feedback_admission import admit
from shared.lifecycle import Tally
from shared.telemetry import BUCKET_KEYS, HISTOGRAM_FIELD, LAST_SEEN_FIELD, FleetVersion

FLEET_WINDOW = timedelta(hours=24)
AGGREGATIONS_PER_QUERY = 5  # Firestore's limit per aggregation request
ADMISSION_ATTEMPTS = 50  # one user's reports contend on their per-version document until the cap is reached
TALLY_TOTAL, TALLY_CORRECT, TALLY_END = "total", "correct", "end"  # a tally bucket's sums, and when it ends


def version_tally(db: firestore.Client, model: str, version: str, since: datetime | None = None,
                  counted_only: bool = True) -> Tally:
    """Correct and total counted feedback reports of one version: over its lifetime, or those tallied in the
    buckets that end after ``since`` (whole buckets: ``shared.tally_buckets``). One sum aggregation.

    ``counted_only=False``: every report written, counted or not, handled or not (lifetime only; two count
    queries over the reports themselves, for checks, not for decisions).
    """
    if not counted_only:
        if since is not None:
            raise ValueError("reports not counted are tallied nowhere: their count is over the version's lifetime")
        base = db.collection(layout.feedback_collection(model)).where(
            filter=firestore.FieldFilter("model_version", "==", version))
        total = int(base.count().get()[0][0].value)
        correct = int(base.where(filter=firestore.FieldFilter("correct", "==", True)).count().get()[0][0].value)
        return Tally(correct, total)
    buckets: firestore.Query | firestore.CollectionReference = db.collection(layout.tally_collection(model, version))
    if since is not None:
        buckets = buckets.where(filter=firestore.FieldFilter(TALLY_END, ">", since))
    request = buckets.sum(TALLY_CORRECT, alias=TALLY_CORRECT).sum(TALLY_TOTAL, alias=TALLY_TOTAL)
    values = {result.alias: int(result.value or 0) for result in request.get()[0]}
    return Tally(values.get(TALLY_CORRECT, 0), values.get(TALLY_TOTAL, 0))


def distinct_users(db: firestore.Client, model: str, version: str, since: datetime) -> int:
    """Users with a counted report on ``version`` received at or after ``since`` (one count query)."""
    query = db.collection(layout.feedback_users_collection(model)).where(
        filter=firestore.FieldFilter("model_version", "==", version)
    ).where(filter=firestore.FieldFilter("last_counted_at", ">=", since))
    return int(query.count().get()[0][0].value)


def admission_refs(db: firestore.Client, model: str, document: str,
                   feedback: Feedback) -> tuple[firestore.DocumentReference, firestore.DocumentReference]:
    """The report and its user's per-version document: what admitting a report reads."""
    return db.document(document), db.document(layout.feedback_user_doc(model, feedback.model_version, feedback.uid))


@dataclass(frozen=True)
class Admission:
    """A report's admission: whether it counts, and what this call added to its version's tally."""

    counted: bool | None  # None: the report no longer exists
    tallied_until: datetime | None = None  # the end of the bucket this call added it to; None: this call added nothing

    def adds_to(self, since: datetime) -> bool:
        """Whether this call's addition is in a windowed tally of the buckets that end after ``since``."""
        return self.tallied_until is not None and self.tallied_until > since


class _Contended(Exception):
    """Someone wrote the report or its user's document after this event read them: the transaction decides."""


def admit_report(db: firestore.Client, model: str, document: str, feedback: Feedback, created: datetime | None,
                 thresholds: Thresholds, read: Mapping[str, DocumentSnapshot] | None = None) -> Admission:
    """Whether the report counts, decided once (``counted`` None if the report no longer exists).

    Stamps the report with when it was created (the event's createTime, else the document's) and
    ``counted``; a counted report also updates its user's per-version document and is added to its
    version's tally bucket (``shared.tally_buckets``), in the same commit. A redelivery finds the
    report already decided and writes nothing, so the same report never counts (nor is tallied) twice
    and keeps its verdict; two reports of one user serialise on the user's document, so the cap
    (``feedback_per_user_cap`` per ``success_window_s``) holds under concurrency. The tally bucket is
    written without being read (increments), so reports of different users never wait on each other.
    The trigger fires on creation only, so this update does not trigger on_feedback again.

    ``read``: the report and its user's document as this event already read them (``admission_refs``, in
    the round trip that read its model's state). The admission is then one commit whose preconditions
    say neither document changed since (the report's update time; the user's update time, or that it
    still does not exist); if either did (a redelivery deciding the report, the same user's other
    report), nothing is written and the transaction below decides from what is there now.

    ``tallied_until`` tells a caller that summed the tally before this call whether to add the report itself:
    set only when this call wrote the report's count (a redelivery adds nothing).
    """
    report_ref, user_ref = admission_refs(db, model, document, feedback)
    if read is not None:
        try:
            return _admit_unless_changed(db, model, report_ref, user_ref, read[report_ref.path],
                                         read[user_ref.path], feedback, created, thresholds)
        except _Contended:
            pass

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> Admission:
        now = {s.reference.path: s for s in transaction.get_all([report_ref, user_ref])}  # one round trip
        admission, writes = _admission(db, model, now[report_ref.path], now[user_ref.path], feedback, created,
                                       thresholds)
        for ref, fields, merge in writes:
            transaction.set(ref, fields, merge=merge)
        return admission

    return run(db.transaction(max_attempts=ADMISSION_ATTEMPTS))


def _admit_unless_changed(db: firestore.Client, model: str, report_ref: firestore.DocumentReference,
                          user_ref: firestore.DocumentReference, report: DocumentSnapshot, user: DocumentSnapshot,
                          feedback: Feedback, created: datetime | None, thresholds: Thresholds) -> Admission:
    """The admission as one commit, on the condition that ``report`` and ``user`` are still as read."""
    admission, writes = _admission(db, model, report, user, feedback, created, thresholds)
    if not writes:
        return admission  # decided already, or deleted: nothing to write
    batch = db.batch()
    for ref, fields, merge in writes:
        if ref.path == report_ref.path:
            batch.update(ref, fields, option=db.write_option(last_update_time=report.update_time))
        elif ref.path == user_ref.path and user.exists:
            batch.update(ref, fields, option=db.write_option(last_update_time=user.update_time))
        elif ref.path == user_ref.path:
            batch.create(ref, fields)
        else:
            batch.set(ref, fields, merge=merge)
    try:
        batch.commit()
    except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound) as exc:
        raise _Contended() from exc
    return admission


def _admission(db: firestore.Client, model: str, report: DocumentSnapshot, user: DocumentSnapshot, feedback: Feedback,
               created: datetime | None, thresholds: Thresholds,
               ) -> tuple[Admission, list[tuple[firestore.DocumentReference, dict[str, Any], bool]]]:
    """The admission of a report and what it writes, (document, fields, merge) each, from the two documents read."""
    if not report.exists:
        return Admission(None), []
    decided = (report.to_dict() or {}).get("counted")
    if isinstance(decided, bool):
        return Admission(decided), []
    at = created or report.create_time
    window = timedelta(seconds=thresholds.success_window_s)
    capped = admit((user.to_dict() or {}).get("admitted") or [] if user.exists else [], at,
                   thresholds.feedback_per_user_cap, window)
    writes = [(report.reference, {"received_at": at, "counted": capped.counted}, True)]
    if not capped.counted:
        return Admission(False), writes
    writes.append((user.reference, {"model_version": feedback.model_version, "uid": feedback.uid,
                                    "admitted": list(capped.admitted), "last_counted_at": capped.last}, False))
    start = tally_buckets.bucket_start(at, thresholds.tally_bucket_s)
    end = start + timedelta(seconds=thresholds.tally_bucket_s)
    bucket = tally_buckets.bucket_id(start, tally_buckets.shard_of(report.reference.path, thresholds.tally_shards))
    writes.append((db.document(layout.tally_doc(model, feedback.model_version, bucket)), {
        "model_version": feedback.model_version, "start": start, TALLY_END: end,
        TALLY_TOTAL: firestore.Increment(1), TALLY_CORRECT: firestore.Increment(int(feedback.correct)),
    }, True))
    return Admission(True, tallied_until=end), writes


def fleet_version(db: firestore.Client, model: str, version: str, since: datetime) -> FleetVersion:
    """Devices whose last report, at or after ``since``, was on ``version``: how many, their predictions, latency."""
    query = (db.collection(layout.devices_collection(model))
             .where(filter=firestore.FieldFilter("model_version", "==", version))
             .where(filter=firestore.FieldFilter(LAST_SEEN_FIELD, ">=", since)))
    wanted: list[base_aggregation.BaseAggregation] = [
        base_aggregation.CountAggregation(alias="devices"),
        base_aggregation.SumAggregation("predictions", alias="predictions"),
        *(base_aggregation.SumAggregation(f"{HISTOGRAM_FIELD}.{key}", alias=key) for key in BUCKET_KEYS),
    ]
    values: dict[str, float] = {}
    for start in range(0, len(wanted), AGGREGATIONS_PER_QUERY):
        request = aggregation.AggregationQuery(query)
        request.add_aggregations(wanted[start:start + AGGREGATIONS_PER_QUERY])
        for result in request.get()[0]:
            values[result.alias] = result.value or 0
    return FleetVersion(devices=int(values.get("devices", 0)), predictions=int(values.get("predictions", 0)),
                        histogram=tuple(int(values.get(key, 0)) for key in BUCKET_KEYS))


def fleet_by_version(db: firestore.Client, model: str, versions: Iterable[str],
                     now: datetime | None = None, window: timedelta = FLEET_WINDOW) -> dict[str, FleetVersion]:
    """``fleet_version`` of each version over the last ``window`` (24 h)."""
    since = (now or datetime.now(timezone.utc)) - window
    return {version: fleet_version(db, model, version, since) for version in versions}
