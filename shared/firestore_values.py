"""Firestore typed values ⇄ plain Python values: the one codec for devices and functions.

Devices read and write Firestore over its REST API, and Firestore triggers
deliver documents as proto3 JSON; both spell every field as a one-key object
such as ``{"stringValue": "v3"}``. Pure functions; a value that is not one of
Firestore's shapes raises ``MalformedDocumentError`` naming the field, so a
broken document is refused with a clear message.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import MalformedDocumentError

_INT64 = re.compile(r"-?[0-9]{1,19}")  # Firestore integers are int64


def decode_fields(fields: Any, where: str = "") -> dict[str, Any]:
    """A ``fields`` object (REST or proto3 JSON) as a plain dict."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise MalformedDocumentError(f"Firestore fields at {where or 'document'} must be an object, "
                                     f"got {type(fields).__name__}")
    return {name: decode_value(value, f"{where}.{name}" if where else name) for name, value in fields.items()}


def decode_value(value: Any, where: str) -> Any:
    """One typed ``Value`` as a plain value: timestamps become aware datetimes, bytes become bytes."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise MalformedDocumentError(f"Firestore value at {where} must be an object with exactly one type key")
    (kind, raw), = value.items()
    if kind == "nullValue":
        return None
    if kind == "booleanValue" and isinstance(raw, bool):
        return raw
    if kind == "integerValue":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and _INT64.fullmatch(raw):
            return int(raw)  # proto3 JSON writes int64 as a string
        raise MalformedDocumentError(f"Firestore integerValue at {where} is not an integer: {raw!r}")
    if kind == "doubleValue" and isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
        try:
            return float(raw)  # proto3 JSON writes NaN/Infinity as strings
        except ValueError:
            raise MalformedDocumentError(f"Firestore doubleValue at {where} is not a number: {raw!r}") from None
    if kind == "timestampValue" and isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedDocumentError(f"Firestore timestampValue at {where} is not RFC 3339: {raw!r}") from None
    if kind in ("stringValue", "referenceValue") and isinstance(raw, str):
        return raw
    if kind == "bytesValue" and isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedDocumentError(f"Firestore bytesValue at {where} is not base64") from None
    if kind == "geoPointValue" and isinstance(raw, Mapping):
        point = {axis: raw.get(axis, 0.0) for axis in ("latitude", "longitude")}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point.values()):
            raise MalformedDocumentError(f"Firestore geoPointValue at {where} needs numeric latitude/longitude")
        return {axis: float(v) for axis, v in point.items()}
    if kind == "arrayValue" and isinstance(raw, Mapping):
        values = raw.get("values", [])
        if not isinstance(values, list):
            raise MalformedDocumentError(f"Firestore arrayValue at {where} must hold a list of values")
        return [decode_value(v, f"{where}[{i}]") for i, v in enumerate(values)]
    if kind == "mapValue" and isinstance(raw, Mapping):
        return decode_fields(raw.get("fields", {}), where)
    raise MalformedDocumentError(f"Firestore value at {where} has unsupported or mistyped kind {kind!r}")


def encode_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"refusing to write a non-finite number {value}")
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": value.isoformat()}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"mapValue": {"fields": encode_fields(value)}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_value(item) for item in value]}}
    raise TypeError(f"cannot write {type(value).__name__} to Firestore")


def encode_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(name): encode_value(value) for name, value in values.items()}
