"""The pointer document as a device reads it: REST JSON in, a checked ``ModelPointer`` out.

Whatever is in the document comes from outside the device, so anything that
does not follow the registry contract raises ``PointerError`` with the field
and the problem; it never crashes the app and never selects a model.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from client_sdk.errors import PointerError
from shared import layout
from shared.firestore_values import decode_fields
from shared.registry import ModelPointer, ModelRef


def parse_pointer(model: str, document: Any) -> ModelPointer:
    """The pointer of ``model`` from a Firestore REST document, or ``PointerError``."""
    if not isinstance(document, dict):
        raise PointerError(f"models/{model}: expected a document object, got {type(document).__name__}")
    try:
        values = decode_fields(document.get("fields"))
    except ValueError as exc:
        raise PointerError(f"models/{model}: {exc}") from None
    return pointer_from_values(model, values)


def pointer_from_values(model: str, values: dict[str, Any]) -> ModelPointer:
    try:
        pointer = ModelPointer.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors())
        raise PointerError(f"models/{model}: {problems}") from None
    if pointer.model != model:
        raise PointerError(f"models/{model}: document names model {pointer.model!r}")
    for role, ref in (("production", pointer.production), ("rollout.candidate", pointer.rollout.candidate)):
        if ref is not None:
            _check_ref(model, role, ref)
    return pointer


def _check_ref(model: str, role: str, ref: ModelRef) -> None:
    expected = layout.model_object(model, ref.version)
    if ref.path != expected:
        # A device downloads only the object the layout names for this version: a pointer
        # cannot send it to another model's file or anywhere else in the bucket.
        raise PointerError(f"models/{model}: {role}.path is {ref.path!r}, expected {expected!r}")
    if not ref.labels:
        raise PointerError(f"models/{model}: {role}.labels is empty")
