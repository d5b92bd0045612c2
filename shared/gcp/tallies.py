"""Adapter: a version's feedback tally, counted by aggregation queries (no counter document, no hot spot).

Each count reads one index entry per 1,000 feedback documents, and a
redelivered trigger recomputes the same numbers.
"""

from __future__ import annotations

from google.cloud import firestore

from shared import layout
from shared.lifecycle import Tally


def version_tally(db: firestore.Client, model: str, version: str) -> Tally:
    """Correct and total feedback reports of one version."""
    base = db.collection(layout.feedback_collection(model)).where(
        filter=firestore.FieldFilter("model_version", "==", version)
    )
    total = int(base.count().get()[0][0].value)
    correct = int(base.where(filter=firestore.FieldFilter("correct", "==", True)).count().get()[0][0].value)
    return Tally(correct, total)
