"""Adapter: feedback documents counted per version by aggregation queries (no counter document, no hot spot).

Each count reads one index entry per 1,000 feedback documents, and a
redelivered trigger recomputes the same numbers. on_feedback stamps each
report with the time it was created (``received_at``), so a count can cover a
recent window only.
"""

from __future__ import annotations

from datetime import datetime

from google.cloud import firestore

from shared import layout
from shared.lifecycle import Tally


def version_tally(db: firestore.Client, model: str, version: str, since: datetime | None = None) -> Tally:
    """Correct and total feedback reports of one version (received at or after ``since``, if given)."""
    base = db.collection(layout.feedback_collection(model)).where(
        filter=firestore.FieldFilter("model_version", "==", version)
    )
    if since is not None:
        base = base.where(filter=firestore.FieldFilter("received_at", ">=", since))
    total = int(base.count().get()[0][0].value)
    correct = int(base.where(filter=firestore.FieldFilter("correct", "==", True)).count().get()[0][0].value)
    return Tally(correct, total)


def mark_received(db: firestore.Client, document: str, created: datetime | None) -> None:
    """Stamp a report with when it was created (the event's createTime; the server's clock if unknown).

    The same time on every redelivery, so a windowed count does not move. The trigger fires on creation
    only, so this update does not trigger on_feedback again.
    """
    db.document(document).update({"received_at": created or firestore.SERVER_TIMESTAMP})
