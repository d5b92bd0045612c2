"""Adapter: how many confirmed captures on production the field holdout holds, and whether a request waits.

``shared.field_evidence`` holds the rule; this counts the image documents it needs (only when
``training.field_holdout_wait_s`` is set and the request is a drift or success-rate one).
"""

from __future__ import annotations

from datetime import datetime, timezone

from google.cloud import firestore

from shared import layout
from shared.config import Settings
from shared.field_evidence import FIELD_REASONS, field_wait, first_asked, is_held_out_capture
from shared.gcp import model_registry
from shared.gcp.clients import firestore_client
from shared.retrain import RetrainRequest


def held_out_captures(model: str, version: str, settings: Settings, enough: int) -> int:
    """Confirmed, live captures taken on ``version`` that the field holdout keeps (counting stops at ``enough``)."""
    query = (firestore_client(settings.project_id).collection(layout.images_collection(model))
             .where(filter=firestore.FieldFilter("model_version", "==", version))
             .where(filter=firestore.FieldFilter("labelled", "==", True)))
    held = 0
    for snapshot in query.stream():
        held += is_held_out_capture(snapshot.to_dict() or {}, settings.gate.field_holdout_share)
        if held >= enough:
            break
    return held


def wait_for_field(request: RetrainRequest, settings: Settings, now: datetime | None = None) -> str | None:
    """Why ``request`` waits for field evidence before it may launch, or None (the rule off, or satisfied)."""
    max_wait = settings.training.field_holdout_wait_s
    if max_wait <= 0 or request.reason not in FIELD_REASONS:
        return None
    pointer = model_registry.load_pointer(request.model, settings)
    if pointer is None or pointer.production is None:
        return None  # nothing in the field yet to judge a candidate against
    asked = first_asked([request.requested_at, *(p.get("requested_at") for p in request.evidence.get("pending") or [])])
    waited = ((now or datetime.now(timezone.utc)) - asked).total_seconds() if asked else 0.0
    if waited >= max_wait:
        return None
    needed = settings.gate.min_field_holdout
    held = held_out_captures(request.model, pointer.production.version, settings, needed)
    return field_wait(request.reason, held, needed, pointer.production.version, waited, max_wait)
