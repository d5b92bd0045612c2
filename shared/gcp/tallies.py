"""Adapter: counted feedback per version, in tally buckets; device records counted by aggregation queries.

on_feedback admits each report once (``admit_report``, one transaction): it
stamps the time the report was created (``received_at``) and whether it counts
(``counted``: ``shared.feedback_admission`` caps each user's counted reports
per version and window), and adds a counted report to its version's tally
bucket (``shared.tally_buckets``: one document per time bucket and shard) in
the same transaction, so a report is tallied exactly once, and a redelivered
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

from datetime import datetime, timedelta, timezone
from typing import Iterable

from google.cloud import firestore
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


def admit_report(db: firestore.Client, model: str, document: str, feedback: Feedback, created: datetime | None,
                 thresholds: Thresholds) -> bool | None:
    """Whether the report counts, decided once (one transaction; None if the report no longer exists).

    Stamps the report with when it was created (the event's createTime, else the document's) and
    ``counted``; a counted report also updates its user's per-version document and is added to its
    version's tally bucket (``shared.tally_buckets``), in the same transaction. A redelivery finds the
    report already decided and writes nothing, so the same report never counts (nor is tallied) twice
    and keeps its verdict; two reports of one user serialise on the user's document, so the cap
    (``feedback_per_user_cap`` per ``success_window_s``) holds under concurrency. The tally bucket is
    written without being read (increments), so reports of different users never wait on each other.
    The trigger fires on creation only, so this update does not trigger on_feedback again.
    """
    report_ref = db.document(document)
    user_ref = db.document(layout.feedback_user_doc(model, feedback.model_version, feedback.uid))
    window = timedelta(seconds=thresholds.success_window_s)

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> bool | None:
        read = {s.reference.path: s for s in transaction.get_all([report_ref, user_ref])}  # one round trip
        report, user = read[report_ref.path], read[user_ref.path]
        if not report.exists:
            return None
        decided = (report.to_dict() or {}).get("counted")
        if isinstance(decided, bool):
            return decided
        at = created or report.create_time
        admission = admit((user.to_dict() or {}).get("admitted") or [] if user.exists else [], at,
                          thresholds.feedback_per_user_cap, window)
        transaction.update(report_ref, {"received_at": at, "counted": admission.counted})
        if admission.counted:
            transaction.set(user_ref, {"model_version": feedback.model_version, "uid": feedback.uid,
                                       "admitted": list(admission.admitted), "last_counted_at": admission.last})
            start = tally_buckets.bucket_start(at, thresholds.tally_bucket_s)
            bucket = tally_buckets.bucket_id(start, tally_buckets.shard_of(document, thresholds.tally_shards))
            transaction.set(db.document(layout.tally_doc(model, feedback.model_version, bucket)), {
                "model_version": feedback.model_version, "start": start,
                TALLY_END: start + timedelta(seconds=thresholds.tally_bucket_s),
                TALLY_TOTAL: firestore.Increment(1), TALLY_CORRECT: firestore.Increment(int(feedback.correct)),
            }, merge=True)
        return admission.counted

    return run(db.transaction(max_attempts=ADMISSION_ATTEMPTS))


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
