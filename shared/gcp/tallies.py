"""Adapter: feedback documents counted per version by aggregation queries (no counter document, no hot spot).

Each count reads one index entry per 1,000 feedback documents, and a
redelivered trigger recomputes the same numbers. on_feedback admits each
report once (``admit_report``): it stamps the time the report was created
(``received_at``), so a count can cover a recent window only, and whether it
counts (``counted``: ``shared.feedback_admission`` caps each user's counted
reports per version and window). Counts cover counted reports only; distinct
users are counted on the per-(version, user) documents admission keeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.cloud import firestore

from shared import layout
from shared.feedback import Feedback
from shared.feedback_admission import admit
from shared.lifecycle import Tally

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
