"""Firestore REST typed values ⇄ plain Python values.

Devices talk to Firestore over its REST API (no server-side client library), in
which every field is a one-key object such as ``{"stringValue": "v3"}``. Pure
functions; unknown or malformed value shapes raise ``ValueError`` naming the
field, so a broken document is refused with a clear message.
"""

from __future__ import annotations

import base64
import math
from typing import Any


def decode_fields(fields: Any, where: str = "") -> dict[str, Any]:
    """A REST ``fields`` object as a plain dict."""
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise ValueError(f"{where or 'document'}: fields must be an object, got {type(fields).__name__}")
    return {name: decode_value(value, f"{where}.{name}" if where else name) for name, value in fields.items()}


def decode_value(value: Any, where: str) -> Any:
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{where}: expected one typed value such as {{'stringValue': …}}, got {value!r:.80}")
    (kind, inner), = value.items()
    if kind == "nullValue":
        return None
    if kind == "booleanValue" and isinstance(inner, bool):
        return inner
    if kind == "integerValue" and isinstance(inner, (str, int)) and not isinstance(inner, bool):
        try:
            return int(inner)
        except ValueError:
            raise ValueError(f"{where}: integerValue {inner!r} is not an integer") from None
    if kind == "doubleValue" and isinstance(inner, (int, float, str)) and not isinstance(inner, bool):
        try:
            return float(inner)  # the REST API writes NaN and Infinity as strings
        except ValueError:
            raise ValueError(f"{where}: doubleValue {inner!r} is not a number") from None
    if kind in ("stringValue", "timestampValue", "referenceValue") and isinstance(inner, str):
        return inner
    if kind == "bytesValue" and isinstance(inner, str):
        try:
            return base64.b64decode(inner, validate=True)
        except ValueError:
            raise ValueError(f"{where}: bytesValue is not base64") from None
    if kind == "arrayValue" and isinstance(inner, dict):
        values = inner.get("values", [])
        if not isinstance(values, list):
            raise ValueError(f"{where}: arrayValue.values must be a list")
        return [decode_value(item, f"{where}[{i}]") for i, item in enumerate(values)]
    if kind == "mapValue" and isinstance(inner, dict):
        return decode_fields(inner.get("fields", {}), where)
    if kind == "geoPointValue" and isinstance(inner, dict):
        return dict(inner)
    raise ValueError(f"{where}: unsupported or malformed value {kind!r}")


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
    if isinstance(value, dict):
        return {"mapValue": {"fields": encode_fields(value)}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [encode_value(item) for item in value]}}
    raise TypeError(f"cannot write {type(value).__name__} to Firestore")


def encode_fields(values: dict[str, Any]) -> dict[str, Any]:
    return {str(name): encode_value(value) for name, value in values.items()}
