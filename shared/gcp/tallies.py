"""Adapter: feedback documents and device records counted per version by aggregation queries (no counter
document, no hot spot).

Each count reads one index entry per 1,000 feedback documents, and a
redelivered trigger recomputes the same numbers. on_feedback admits each
report once (``admit_report``): it stamps the time the report was created
(``received_at``), so a count can cover a recent window only, and whether it
counts (``counted``: ``shared.feedback_admission`` caps each user's counted
reports per version and window). Counts cover counted reports only; distinct
users are counted on the per-(version, user) documents admission keeps.

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

from shared import layout
from shared.feedback import Feedback
from shared.feedback_admission import admit
from shared.lifecycle import Tally
from shared.telemetry import BUCKET_KEYS, HISTOGRAM_FIELD, LAST_SEEN_FIELD, FleetVersion

FLEET_WINDOW = timedelta(hours=24)
AGGREGATIONS_PER_QUERY = 5  # Firestore's limit per aggregation request
ADMISSION_ATTEMPTS = 50  # one user's reports contend on their per-version document until the cap is reached


def version_tally(db: firestore.Client, model: str, version: str, since: datetime | None = None,
                  counted_only: bool = True) -> Tally:
    """Correct and total counted feedback reports of one version (received at or after ``since``, if given).

    ``counted_only=False``: every report written, counted or not, handled or not (lifetime only).
    """
    base = db.collection(layout.feedback_collection(model)).where(
        filter=firestore.FieldFilter("model_version", "==", version)
    )
    if counted_only:
        base = base.where(filter=firestore.FieldFilter("counted", "==", True))
    if since is not None:
        base = base.where(filter=firestore.FieldFilter("received_at", ">=", since))
    total = int(base.count().get()[0][0].value)
    correct = int(base.where(filter=firestore.FieldFilter("correct", "==", True)).count().get()[0][0].value)
    return Tally(correct, total)


def distinct_users(db: firestore.Client, model: str, version: str, since: datetime) -> int:
    """Users with a counted report on ``version`` received at or after ``since`` (one count query)."""
    query = db.collection(layout.feedback_users_collection(model)).where(
        filter=firestore.FieldFilter("model_version", "==", version)
    ).where(filter=firestore.FieldFilter("last_counted_at", ">=", since))
    return int(query.count().get()[0][0].value)


def admit_report(db: firestore.Client, model: str, document: str, feedback: Feedback, created: datetime | None,
                 cap: int, window: timedelta) -> bool | None:
    """Whether the report counts, decided once (one transaction; None if the report no longer exists).

    Stamps the report with when it was created (the event's createTime, else the document's) and
    ``counted``, and on a counted report the user's per-version document. A redelivery finds the
    report already decided and writes nothing, so the same report never counts twice and keeps its
    verdict; two reports of one user serialise on the user's document, so the cap holds under
    concurrency. The trigger fires on creation only, so this update does not trigger on_feedback again.
    """
    report_ref = db.document(document)
    user_ref = db.document(layout.feedback_user_doc(model, feedback.model_version, feedback.uid))

    @firestore.transactional
    def run(transaction: firestore.Transaction) -> bool | None:
        report = report_ref.get(transaction=transaction)
        if not report.exists:
            return None
        decided = (report.to_dict() or {}).get("counted")
        if isinstance(decided, bool):
            return decided
        user = user_ref.get(transaction=transaction)
        at = created or report.create_time
        admission = admit((user.to_dict() or {}).get("admitted") or [] if user.exists else [], at, cap, window)
        transaction.update(report_ref, {"received_at": at, "counted": admission.counted})
        if admission.counted:
            transaction.set(user_ref, {"model_version": feedback.model_version, "uid": feedback.uid,
                                       "admitted": list(admission.admitted), "last_counted_at": admission.last})
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
