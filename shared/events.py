"""One decoder for every event shape Edgeloop receives.

Cloud Functions get CloudEvents from functions-framework. The payload inside
differs by source, and by environment for Firestore:

* Pub/Sub push (``google.cloud.pubsub.topic.v1.messagePublished``): data is
  ``{"message": {"data": base64, "attributes": {...}, ...}, "subscription": ...}``.
* GCS object notifications (JSON_API_V1) arrive as such a Pub/Sub message whose
  attributes describe the object and whose data is the object resource; an
  Eventarc direct Storage trigger (``google.cloud.storage.object.v1.finalized``)
  carries the object resource as data. Both decode to ``StorageObjectEvent``.
* Firestore triggers: production (2nd gen / Eventarc) sends protobuf
  ``DocumentEventData`` bytes, the local emulator sends the same message as JSON.
  Both decode to ``FirestoreDocumentEvent``.

Anything else raises ``MalformedEventError`` naming exactly what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from shared.errors import MalformedEventError
from shared.firestore_values import decode_fields

PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"
FIRESTORE_EVENT_TYPES = {
    "google.cloud.firestore.document.v1.created": "created",
    "google.cloud.firestore.document.v1.updated": "updated",
    "google.cloud.firestore.document.v1.deleted": "deleted",
    "google.cloud.firestore.document.v1.written": "written",
}
GCS_PAYLOAD_FORMAT = "JSON_API_V1"
GCS_EVENT_TYPES = frozenset({"OBJECT_FINALIZE", "OBJECT_METADATA_UPDATE", "OBJECT_DELETE", "OBJECT_ARCHIVE"})
# The attribute a malformed Pub/Sub message carries into its dead-letter topic: why a handler refused it.
MALFORMED_ATTRIBUTE = "edgeloop_error"

_DOCUMENT_NAME = re.compile(r"^projects/(?P<project>[^/]+)/databases/(?P<database>[^/]+)/documents/(?P<path>.+)$")


@dataclass(frozen=True)
class PubSubMessage:
    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    publish_time: str | None = None
    subscription: str | None = None
    delivery_attempt: int | None = None

    def json(self) -> Any:
        """The data as JSON, or a MalformedEventError saying why it is not."""
        try:
            return json.loads(self.data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep, an over-long number
            raise MalformedEventError(f"Pub/Sub message {self.message_id} data is not UTF-8 JSON: "
                                      f"{str(exc)[:200] or type(exc).__name__}") from None

    def json_or_none(self) -> Any:
        """The data as JSON; None for an empty message (the scheduler's "check everything")."""
        return self.json() if self.data.strip() else None

    def published_at(self) -> datetime:
        """When Pub/Sub accepted the message; now, if the push did not say."""
        return _timestamp(self.publish_time) or datetime.now(timezone.utc)


@dataclass(frozen=True)
class StorageObjectEvent:
    """One Storage object change (we act on OBJECT_FINALIZE)."""

    event_id: str
    event_type: str
    bucket: str
    name: str
    generation: int
    metageneration: int
    size: int
    content_type: str | None
    md5_hash: str | None
    crc32c: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    time_created: str | None = None
    overwrote_generation: int | None = None


@dataclass(frozen=True)
class FirestoreDocumentEvent:
    """A document change; ``value``/``old_value`` are plain Python field dicts."""

    event_id: str
    change: str  # created | updated | deleted | written
    project: str
    database: str
    document: str  # path below /documents, e.g. "models/digits/feedback/abc"
    value: dict[str, Any] | None
    old_value: dict[str, Any] | None
    update_mask: tuple[str, ...] = ()
    created: datetime | None = None  # when the document was created (Firestore's createTime), if the event says


# --- CloudEvent access -------------------------------------------------------

def _attributes(event: Any) -> Mapping[str, Any]:
    try:
        return event.get_attributes()
    except AttributeError:
        raise MalformedEventError(f"not a CloudEvent: {type(event).__name__}") from None


def _require_type(event: Any, accepted: set[str] | frozenset[str] | dict) -> str:
    attributes = _attributes(event)
    event_type = attributes.get("type")
    if event_type not in accepted:
        raise MalformedEventError(f"unexpected CloudEvent type {event_type!r}; expected one of {sorted(accepted)}")
    return event_type


def _event_id(event: Any) -> str:
    event_id = _attributes(event).get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEventError("CloudEvent has no id")
    return event_id


CLOUDEVENT_HEADERS = ("ce-id", "ce-source", "ce-specversion", "ce-type")  # binary mode's required attributes
CLOUDEVENT_VERSIONS = ("0.3", "1.0")
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"  # structured mode even when ce-* headers are present
# The deepest JSON an event may nest. A Firestore document at Firestore's own limit (maps 20 deep) is ~64 levels;
# Python's JSON decoder gives up near 1000 with a RecursionError, at a depth that depends on the caller's stack.
MAX_EVENT_DEPTH = 128
_JSON_TYPES = {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}
_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON text opens more than ``limit`` arrays/objects inside each other; no recursion, stops early."""
    depth = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        bracket = text[token.start()]
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def _data_nests_deeper_than(value: Any, limit: int) -> bool:
    """The same for decoded JSON (dicts and lists), without recursion."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth + 1 > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _json_problem(body: bytes, binary_data: bool = False) -> tuple[str | None, Any]:
    """(why ``body`` cannot be decoded as JSON, or None; the decoded value). Never raises.

    Decodes as ``json.loads(bytes)`` does (UTF-8, -16 or -32: how the framework reads a body), but bounds the
    depth first, so a deeply nested body is named instead of overflowing the stack. Binary-mode data need not be
    JSON text at all (it is then read as bytes): only what would break decoding JSON text is a problem there.
    """
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return (None if binary_data else f"a {len(body)}-byte body that is not UTF-8 (nor UTF-16/32) text"), None
    if _nests_deeper_than(text, MAX_EVENT_DEPTH):
        return f"a {len(body)}-byte body nesting JSON more than {MAX_EVENT_DEPTH} levels deep", None
    try:
        return None, json.loads(text)
    except json.JSONDecodeError as exc:
        return (None if binary_data else f"a {len(body)}-byte body that is not JSON ({exc.msg} at character {exc.pos})"), None
    except ValueError:  # the only other: an integer longer than Python converts
        return f"a {len(body)}-byte body holding a number of more than {sys.get_int_max_str_digits()} digits", None
    except RecursionError:  # bounded above; kept so that this never raises
        return f"a {len(body)}-byte body nesting JSON too deep to decode", None


def _attributes_problem(attributes: Mapping[str, Any]) -> str | None:
    """Why these are not a CloudEvent's attributes (id, source, specversion and type: non-empty strings), or None."""
    names = [h[3:] for h in CLOUDEVENT_HEADERS]
    lacking = [name for name in names if not isinstance(attributes.get(name), str) or not attributes[name]]
    if lacking:
        details = [f"{name} is empty" if attributes[name] == "" else f"{name} is a JSON {_json_type(attributes[name])}, not a string"
                   for name in lacking if name in attributes]
        return f"lacks {', '.join(lacking)}" + (f" ({'; '.join(details)})" if details else "")
    if attributes["specversion"] not in CLOUDEVENT_VERSIONS:
        return f"has specversion {attributes['specversion'][:20]!r}, not one of {CLOUDEVENT_VERSIONS}"
    return None


def cloud_event_problem(event: Any) -> str | None:
    """Why an event the framework decoded still cannot be one (wrong-typed attributes, data nested too deep), or None.

    Structured mode and converted background events carry attributes as JSON of any type; binary mode may send empty
    ones. Either is answered 400 like a request the framework could not read, before any handler sees it.
    """
    try:
        attributes = event.get_attributes()
    except AttributeError:
        return f"not a CloudEvent: a {type(event).__name__}"
    problem = _attributes_problem(attributes)
    if problem:
        return f"not a CloudEvent: the event {problem}"
    if any(_data_nests_deeper_than(value, MAX_EVENT_DEPTH) for value in (*attributes.values(), getattr(event, "data", None))):
        return f"not a CloudEvent: the event nests JSON more than {MAX_EVENT_DEPTH} levels deep"
    return None


def not_a_cloud_event(headers: Mapping[str, str], body: bytes, error: BaseException | None = None) -> str:
    """Why an HTTP request the framework could not read is not a CloudEvent (for the log, never echoing it).

    Binary mode carries the attributes as ``ce-*`` headers; structured mode is one JSON object holding them. The
    reason is one line, says what is wrong, depends only on the request (and ``error``'s class), and never raises.
    """
    present = {key.lower(): value for key, value in headers.items()}
    has_ce_headers = any(key.startswith("ce-") for key in present)
    if has_ce_headers and not present.get("content-type", "").startswith(STRUCTURED_CONTENT_TYPE):
        missing = [h for h in CLOUDEVENT_HEADERS if not present.get(h)]
        if missing:
            return f"not a CloudEvent: binary-mode headers {', '.join(missing)} missing or empty"
        if present["ce-specversion"] not in CLOUDEVENT_VERSIONS:
            return f"not a CloudEvent: ce-specversion {present['ce-specversion'][:20]!r} is not one of {CLOUDEVENT_VERSIONS}"
        problem, _ = _json_problem(body, binary_data=True)
        if problem:
            return f"not a CloudEvent: binary-mode data is {problem}"
    else:
        if all(h in present for h in CLOUDEVENT_HEADERS) and present["ce-specversion"] not in CLOUDEVENT_VERSIONS:
            # the framework takes the specversion from complete ce-* headers even in structured mode
            return f"not a CloudEvent: ce-specversion {present['ce-specversion'][:20]!r} is not one of {CLOUDEVENT_VERSIONS}"
        where = "application/cloudevents+json and" if has_ce_headers else "no ce-* headers and"
        problem, structured = _json_problem(body)
        if problem:
            return f"not a CloudEvent: {where} {problem}"
        if not isinstance(structured, dict):
            return f"not a CloudEvent: {where} a JSON {_json_type(structured)}, not an object"
        problem = _attributes_problem(structured)
        if problem:
            return f"not a CloudEvent: {where} the JSON object {problem}"
    cause = f" ({type(error).__name__})" if error is not None else ""
    return f"not a CloudEvent: the framework could not read it{cause}"


# --- Pub/Sub -------------------------------------------------------------------

def decode_pubsub(event: Any) -> PubSubMessage:
    """A Pub/Sub push CloudEvent → PubSubMessage."""
    _require_type(event, {PUBSUB_PUBLISHED})
    data = event.data
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise MalformedEventError("Pub/Sub event data is not JSON") from None
    if not isinstance(data, Mapping):
        raise MalformedEventError(f"Pub/Sub event data must be an object, got {type(data).__name__}")
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise MalformedEventError("Pub/Sub event data has no 'message' object")
    raw = message.get("data", "")
    if not isinstance(raw, str):
        raise MalformedEventError(f"message.data must be a base64 string, got {type(raw).__name__}")
    try:
        payload = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEventError("message.data is not valid base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise MalformedEventError("message.attributes must map strings to strings")
    message_id = message.get("messageId") or message.get("message_id") or _event_id(event)
    attempt = data.get("deliveryAttempt")
    publish_time = message.get("publishTime") or message.get("publish_time")
    if publish_time is not None and not isinstance(publish_time, str):
        raise MalformedEventError(f"message.publishTime must be an RFC 3339 string, got {type(publish_time).__name__}")
    return PubSubMessage(
        message_id=str(message_id),
        data=payload,
        attributes=dict(attributes),
        publish_time=publish_time,
        subscription=data.get("subscription"),
        delivery_attempt=attempt if isinstance(attempt, int) else None,
    )


# --- Storage -------------------------------------------------------------------

def _int_field(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise MalformedEventError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):  # an int64, as GCS sends it
        return int(value)
    raise MalformedEventError(f"{what} must be an integer, got {value!r}")


def object_from_resource(resource: Any, event_id: str, event_type: str, overwrote: int | None) -> StorageObjectEvent:
    if not isinstance(resource, Mapping):
        raise MalformedEventError(f"object resource must be a JSON object, got {type(resource).__name__}")
    for key in ("bucket", "name", "generation"):
        if key not in resource:
            raise MalformedEventError(f"object resource has no {key!r}")
    name, bucket = resource["name"], resource["bucket"]
    if not isinstance(name, str) or not name or not isinstance(bucket, str) or not bucket:
        raise MalformedEventError("object resource 'name' and 'bucket' must be non-empty strings")
    metadata = resource.get("metadata") or {}
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise MalformedEventError("object resource 'metadata' must map strings to strings")
    content_type = resource.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise MalformedEventError("object resource 'contentType' must be a string")
    return StorageObjectEvent(
        event_id=event_id,
        event_type=event_type,
        bucket=bucket,
        name=name,
        generation=_int_field(resource["generation"], "generation"),
        metageneration=_int_field(resource.get("metageneration", 1), "metageneration"),
        size=_int_field(resource.get("size", 0), "size"),
        content_type=content_type,
        md5_hash=resource.get("md5Hash"),
        crc32c=resource.get("crc32c"),
        metadata=dict(metadata),
        time_created=resource.get("timeCreated"),
        overwrote_generation=overwrote,
    )


def decode_storage_event(event: Any) -> StorageObjectEvent:
    """A GCS notification (via Pub/Sub) or a direct Storage CloudEvent → StorageObjectEvent."""
    event_type = _require_type(event, {PUBSUB_PUBLISHED, STORAGE_FINALIZED})
    if event_type == STORAGE_FINALIZED:
        return object_from_resource(event.data, _event_id(event), "OBJECT_FINALIZE", None)

    message = decode_pubsub(event)
    attrs = message.attributes
    if attrs.get("payloadFormat") != GCS_PAYLOAD_FORMAT:
        raise MalformedEventError(
            f"GCS notification payloadFormat is {attrs.get('payloadFormat')!r}, expected {GCS_PAYLOAD_FORMAT!r}"
        )
    gcs_event_type = attrs.get("eventType")
    if gcs_event_type not in GCS_EVENT_TYPES:
        raise MalformedEventError(f"GCS notification eventType {gcs_event_type!r} is not one of {sorted(GCS_EVENT_TYPES)}")
    overwrote = attrs.get("overwroteGeneration")
    obj = object_from_resource(
        message.json(),
        message.message_id,
        gcs_event_type,
        _int_field(overwrote, "overwroteGeneration") if overwrote is not None else None,
    )
    # The attributes and the resource describe the same object; disagreement means tampering or a bug.
    expected = {"bucketId": obj.bucket, "objectId": obj.name, "objectGeneration": str(obj.generation)}
    for key, value in expected.items():
        if attrs.get(key) != value:
            raise MalformedEventError(f"GCS notification attribute {key}={attrs.get(key)!r} disagrees with the object resource ({value!r})")
    return obj


# --- Firestore -----------------------------------------------------------------

def _document_json(event_data: Any) -> Mapping[str, Any]:
    """Production sends protobuf bytes, the emulator JSON; both become proto3 JSON."""
    if isinstance(event_data, (bytes, bytearray)):
        from google.events.cloud.firestore import DocumentEventData  # only needed for protobuf payloads

        try:
            message = DocumentEventData.deserialize(bytes(event_data))
        except Exception as exc:  # protobuf raises DecodeError or a RuntimeWarning-ish error
            raise MalformedEventError(f"Firestore event data is not a DocumentEventData protobuf: {exc}") from None
        return json.loads(DocumentEventData.to_json(message))
    if isinstance(event_data, Mapping):
        return event_data
    raise MalformedEventError(
        f"Firestore event data must be DocumentEventData protobuf bytes or JSON, got {type(event_data).__name__}"
    )


def _document(snapshot: Any, which: str) -> tuple[str | None, dict[str, Any] | None]:
    if snapshot is None or snapshot == {}:
        return None, None
    if not isinstance(snapshot, Mapping) or not isinstance(snapshot.get("name"), str):
        raise MalformedEventError(f"Firestore event {which} must be a document with a 'name'")
    return snapshot["name"], decode_fields(snapshot.get("fields", {}))


def decode_firestore_event(event: Any) -> FirestoreDocumentEvent:
    """A Firestore trigger CloudEvent (protobuf or JSON data) → FirestoreDocumentEvent."""
    event_type = _require_type(event, FIRESTORE_EVENT_TYPES)
    data = _document_json(event.data)
    new_name, value = _document(data.get("value"), "value")
    old_name, old_value = _document(data.get("oldValue"), "oldValue")
    name = new_name or old_name
    if name is None:
        raise MalformedEventError("Firestore event has neither 'value' nor 'oldValue'")
    match = _DOCUMENT_NAME.match(name)
    if match is None:
        raise MalformedEventError(f"Firestore document name {name!r} is not projects/*/databases/*/documents/*")
    mask = data.get("updateMask") or {}
    paths = mask.get("fieldPaths", []) if isinstance(mask, Mapping) else []
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise MalformedEventError("Firestore event updateMask.fieldPaths must be a list of strings")
    return FirestoreDocumentEvent(
        event_id=_event_id(event),
        change=FIRESTORE_EVENT_TYPES[event_type],
        project=match["project"],
        database=match["database"],
        document=match["path"],
        value=value,
        old_value=old_value,
        update_mask=tuple(paths),
        created=_create_time(data.get("value")),
    )


def _create_time(snapshot: Any) -> datetime | None:
    """The document's createTime (RFC 3339 in JSON; proto3 JSON of the protobuf too), None if absent or unreadable."""
    return _timestamp(snapshot.get("createTime") if isinstance(snapshot, Mapping) else None)


def _timestamp(raw: Any) -> datetime | None:
    """An RFC 3339 time an envelope carries, or None if absent or unreadable (it is informative only)."""
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)  # Python 3.11 reads RFC 3339's "Z" itself
    except ValueError:
        return None