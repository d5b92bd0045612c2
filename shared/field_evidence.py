"""May a retrain for the field's sake (drift, low success) launch yet? Only once the field can judge it.

A drift or success-rate retrain is asked to fix what devices meet in the field. The gate judges a
candidate on the field holdout (``shared.gate``): the user-confirmed captures that no run trains on,
picked by a hash of the object name (``in_field_holdout``). A run launched the moment the drift is
noticed finds few of the drifted captures confirmed yet: it would neither learn the drift nor be
gated on it. With ``training.field_holdout_wait_s`` set, such a request waits until the field
holdout holds ``gate.min_field_holdout`` confirmed captures taken on the production version (the
drift as production meets it), or until it has waited that long (then it launches, and the gate
reports the small holdout instead of gating on it). The scheduler's tick launches it once it may.

Pure rules; ``shared.gcp.field_evidence`` counts the captures.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Iterable, Mapping

from shared.retrain import RetrainReason

FIELD_REASONS = frozenset({RetrainReason.DRIFT, RetrainReason.SUCCESS_RATE})
WAITED_KEY = "field_wait"  # on a pending request's entry: what it waited for, the last time it was deferred for it


def in_field_holdout(object_name: str, share: float) -> bool:
    """Whether this field capture belongs to the field holdout: the same answer in every run (for one share).

    The trainer's split (``trainer_job.split.in_field_holdout``) holds out exactly these captures.
    """
    if not 0 < share < 1:
        raise ValueError(f"the field holdout share is a fraction in (0, 1), got {share}")
    digest = hashlib.sha256(object_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def is_held_out_capture(document: Mapping[str, Any], share: float) -> bool:
    """An image document (``models/{m}/images/{id}``) of a live, labelled field capture the holdout keeps."""
    return (document.get("kind") == "upload" and bool(document.get("labelled"))
            and document.get("status") in ("new", "used")
            and in_field_holdout(str(document.get("object", "")), share))


def first_asked(requested: Iterable[datetime | str | None]) -> datetime | None:
    """The earliest of a request's own time and those of the pending requests it carries."""
    stamps = [r if isinstance(r, datetime) else datetime.fromisoformat(r) for r in requested if r]
    return min(stamps) if stamps else None


def field_wait(reason: RetrainReason, held: int, needed: int, version: str, waited_s: float,
               max_wait_s: float) -> str | None:
    """Why a request for ``reason`` must wait for field evidence, or None when it may launch.

    ``held``: confirmed captures on ``version`` (production) in the field holdout; ``waited_s``: since
    the request (or the earliest one it carries) was first asked.
    """
    if max_wait_s <= 0 or reason not in FIELD_REASONS or held >= needed or waited_s >= max_wait_s:
        return None
    return (f"field holdout {held}/{needed} confirmed captures on {version} "
            f"(waits at most {max_wait_s:g} s, {waited_s:.0f} s so far)")
