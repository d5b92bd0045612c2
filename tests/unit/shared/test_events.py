"""The one event decoder: every shape we receive becomes a typed object, anything else a specific error."""

import base64
import copy
import json
from datetime import datetime, timezone

import pytest
from cloudevents.http import CloudEvent
from google.events.cloud.firestore import ArrayValue, Document, DocumentEventData, MapValue, Value
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeloop.localstack.gcs_notification import notification_message
from shared import events
from shared.errors import MalformedEventError
from tests.conftest import GOLDEN, golden_event

PUBSUB = events.PUBSUB_PUBLISHED


def _raw(name):
    return json.loads((GOLDEN / f"{name}.json").read_text())


def _event(raw):
    return CloudEvent(raw["attributes"], raw["data"])


def _pubsub_event(data: bytes, attributes: dict, message_id="m1"):
    return CloudEvent(
        {"type": PUBSUB, "source": "//pubsub.googleapis.com/projects/p/topics/t", "id": message_id},
        {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": message_id}},
    )


# --- Pub/Sub -----------------------------------------------------------------------

def test_pubsub_push_decodes_to_message_with_json_payload():
    message = events.decode_pubsub(golden_event("pubsub_push_retrain"))
    assert message.message_id == "42"
    assert message.attributes == {"origin": "cli"}
    assert message.json() == {"model": "digits", "reason": "manual"}
    assert message.subscription.endswith("retrain-requests-to-launch_training")


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda raw: raw["attributes"].update(type="google.cloud.storage.object.v1.finalized"), "unexpected CloudEvent type"),
        (lambda raw: raw.update(data=["not", "an", "object"]), "must be an object"),
        (lambda raw: raw["data"].pop("message"), "no 'message' object"),
        (lambda raw: raw["data"]["message"].update(data="***not base64***"), "not valid base64"),
        (lambda raw: raw["data"]["message"].update(data=12), "must be a base64 string"),
        (lambda raw: raw["data"]["message"].update(attributes={"n": 1}), "map strings to strings"),
    ],
)
def test_malformed_pubsub_events_are_refused_with_a_specific_reason(mutate, reason):
    raw = _raw("pubsub_push_retrain")
    mutate(raw)
    with pytest.raises(MalformedEventError, match=reason):
        events.decode_pubsub(_event(raw))


def test_non_json_pubsub_data_is_refused_when_json_is_expected():
    message = events.decode_pubsub(_pubsub_event(b"\xff\xfe not json", {}))
    with pytest.raises(MalformedEventError, match="not UTF-8 JSON"):
        message.json()


@pytest.mark.parametrize(
    "headers, body, reason",
    [
        ({"ce-id": "1", "ce-source": "s"}, b"{}", "binary-mode headers ce-specversion, ce-type missing"),
        ({"Ce-Id": "1", "Ce-Source": "s", "Ce-Type": "t", "Ce-Specversion": "2.0"}, b"{}", "ce-specversion '2.0'"),
        ({}, b"\x80\xff", "2-byte body that is not UTF-8"),
        ({}, b"hello", "5-byte body that is not JSON"),
        ({}, b"[1]", "a JSON list, not an object"),
        ({}, b'{"specversion": "1.0", "id": 5}', "lacks id, source, type"),
    ],
)
def test_a_request_that_is_not_a_cloudevent_is_explained_without_echoing_it(headers, body, reason):
    explained = events.not_a_cloud_event(headers, body)
    assert explained.startswith("not a CloudEvent: ") and reason in explained
    assert "hello" not in explained


def test_something_that_is_not_a_cloudevent_is_refused():
    with pytest.raises(MalformedEventError, match="not a CloudEvent"):
        events.decode_pubsub({"type": PUBSUB})


# --- Storage -----------------------------------------------------------------------

EXPECTED_OBJECT = dict(
    bucket="demo-edgeloop.firebasestorage.app",
    name="uploads/digits/user-1/5f0c.png",
    generation=1700000000000001,
    metageneration=1,
    size=1167,
    content_type="image/png",
    md5_hash="q1C2cv5+3rM0cJDRMxTH+g==",
    crc32c="dGjZQw==",
    metadata={"label": "3", "predicted_label": "8", "confidence": "0.41", "model_version": "v1"},
)


@pytest.mark.parametrize("golden", ["gcs_notification_pubsub", "storage_finalized_direct"])
def test_gcs_notification_and_direct_storage_event_decode_to_the_same_object(golden):
    obj = events.decode_storage_event(golden_event(golden))
    assert obj.event_type == "OBJECT_FINALIZE"
    for field, value in EXPECTED_OBJECT.items():
        assert getattr(obj, field) == value, field


def test_local_notifier_messages_decode_like_real_gcs_ones():
    """The local stack's notifier and the decoder agree on the GCS format (overwrites included)."""
    resource = _raw("storage_finalized_direct")["data"]
    data, attributes = notification_message(resource, overwrote_generation=1699999999999999)
    obj = events.decode_storage_event(_pubsub_event(data, attributes))
    assert obj.name == resource["name"] and obj.generation == int(resource["generation"])
    assert obj.overwrote_generation == 1699999999999999


def _gcs(mutate):
    raw = _raw("gcs_notification_pubsub")
    message = raw["data"]["message"]
    resource = json.loads(base64.b64decode(message["data"]))
    mutate(message["attributes"], resource)
    message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    return _event(raw)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda a, r: a.update(payloadFormat="NONE"), "payloadFormat is 'NONE'"),
        (lambda a, r: a.pop("payloadFormat"), "payloadFormat is None"),
        (lambda a, r: a.update(eventType="OBJECT_EXPLODE"), "eventType 'OBJECT_EXPLODE'"),
        (lambda a, r: a.update(objectId="dataset/other.png"), "objectId='dataset/other.png' disagrees"),
        (lambda a, r: a.update(objectGeneration="2"), "objectGeneration='2' disagrees"),
        (lambda a, r: a.update(overwroteGeneration="abc"), "overwroteGeneration must be an integer"),
        (lambda a, r: r.pop("name"), "has no 'name'"),
        (lambda a, r: r.pop("generation"), "has no 'generation'"),
        (lambda a, r: r.update(generation="12x"), "generation must be an integer"),
        (lambda a, r: r.update(generation="٣"), "generation must be an integer"),
        (lambda a, r: r.update(size=True), "size must be an integer"),
        (lambda a, r: r.update(metadata={"confidence": 0.4}), "'metadata' must map strings to strings"),
        (lambda a, r: r.update(contentType=["image/png"]), "'contentType' must be a string"),
        (lambda a, r: r.update(name=""), "must be non-empty strings"),
    ],
)
def test_malformed_gcs_notifications_are_refused_with_a_specific_reason(mutate, reason):
    with pytest.raises(MalformedEventError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        events.decode_storage_event(_gcs(mutate))


def test_gcs_notification_whose_data_is_not_json_is_refused():
    attributes = _raw("gcs_notification_pubsub")["data"]["message"]["attributes"]
    with pytest.raises(MalformedEventError, match="not UTF-8 JSON"):
        events.decode_storage_event(_pubsub_event(b"<xml/>", attributes))


def test_direct_storage_event_with_non_object_data_is_refused():
    raw = _raw("storage_finalized_direct")
    raw["data"] = "gs://bucket/name"
    with pytest.raises(MalformedEventError, match="object resource must be a JSON object"):
        events.decode_storage_event(_event(raw))


# --- Firestore ---------------------------------------------------------------------

EXPECTED_FEEDBACK = {
    "uid": "user-1",
    "correct": True,
    "confidence": 0.41,
    "count": -3,
    "tags": ["a", None],
    "extra": {"when": datetime(2026, 11, 23, 2, 33, 0, 506678, tzinfo=timezone.utc)},
}


def test_emulator_json_firestore_event_decodes_to_plain_fields():
    doc = events.decode_firestore_event(golden_event("firestore_created_emulator"))
    assert doc.change == "created"
    assert (doc.project, doc.database, doc.document) == ("demo-edgeloop", "(default)", "models/digits/feedback/f1")
    assert doc.value == EXPECTED_FEEDBACK
    assert doc.old_value is None
    assert doc.created == datetime(2026, 11, 23, 2, 33, 0, 506678, tzinfo=timezone.utc)  # value.createTime


def _production_event(data: DocumentEventData, event_type="google.cloud.firestore.document.v1.created"):
    """What 2nd-gen Eventarc delivers: DocumentEventData as protobuf bytes."""
    attributes = {
        "type": event_type,
        "source": "//firestore.googleapis.com/projects/demo-edgeloop/databases/(default)",
        "id": "prod-1",
        "datacontenttype": "application/protobuf",
    }
    return CloudEvent(attributes, DocumentEventData.serialize(data))


def test_production_protobuf_firestore_event_decodes_to_the_same_fields_as_the_emulator_json():
    name = "projects/demo-edgeloop/databases/(default)/documents/models/digits/feedback/f1"
    document = Document(
        name=name,
        fields={
            "uid": Value(string_value="user-1"),
            "correct": Value(boolean_value=True),
            "confidence": Value(double_value=0.41),
            "count": Value(integer_value=-3),
            "tags": Value(array_value=ArrayValue(values=[Value(string_value="a"), Value(null_value=0)])),
            "extra": Value(map_value=MapValue(fields={"when": Value(timestamp_value=EXPECTED_FEEDBACK["extra"]["when"])})),
        },
    )
    doc = events.decode_firestore_event(_production_event(DocumentEventData(value=document)))
    assert doc.document == "models/digits/feedback/f1"
    assert doc.value == EXPECTED_FEEDBACK
    assert doc.event_id == "prod-1"


def test_production_update_carries_old_value_and_update_mask():
    name = "projects/p/databases/(default)/documents/models/digits"
    data = DocumentEventData(
        value=Document(name=name, fields={"version": Value(string_value="v2")}),
        old_value=Document(name=name, fields={"version": Value(string_value="v1")}),
        update_mask={"field_paths": ["version"]},
    )
    doc = events.decode_firestore_event(_production_event(data, "google.cloud.firestore.document.v1.updated"))
    assert (doc.change, doc.value, doc.old_value, doc.update_mask) == (
        "updated", {"version": "v2"}, {"version": "v1"}, ("version",),
    )


def _firestore(mutate):
    raw = _raw("firestore_created_emulator")
    mutate(raw["data"])
    return _event(raw)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d.pop("value"), "neither 'value' nor 'oldValue'"),
        (lambda d: d["value"].pop("name"), "must be a document with a 'name'"),
        (lambda d: d["value"].update(name="models/digits/feedback/f1"), "is not projects/\\*/databases"),
        (lambda d: d["value"]["fields"].update(uid={"stringValue": 5}), "unsupported or mistyped kind 'stringValue'"),
        (lambda d: d["value"]["fields"].update(n={"integerValue": "1.5"}), "integerValue at n is not an integer"),
        (lambda d: d["value"]["fields"].update(n={"doubleValue": "fast"}), "doubleValue at n is not a number"),
        (lambda d: d["value"]["fields"].update(t={"timestampValue": "yesterday"}), "timestampValue at t is not RFC 3339"),
        (lambda d: d["value"]["fields"].update(b={"bytesValue": "%%%"}), "bytesValue at b is not base64"),
        (lambda d: d["value"]["fields"].update(x={"stringValue": "a", "booleanValue": True}), "exactly one type key"),
        (lambda d: d["value"]["fields"].update(x={"colourValue": "red"}), "kind 'colourValue'"),
        (lambda d: d["value"].update(fields=["uid"]), "fields at document must be an object"),
    ],
)
def test_malformed_firestore_events_are_refused_with_a_specific_reason(mutate, reason):
    with pytest.raises(MalformedEventError, match=reason):
        events.decode_firestore_event(_firestore(mutate))


def test_garbage_protobuf_bytes_are_refused():
    with pytest.raises(MalformedEventError, match="not a DocumentEventData protobuf"):
        events.decode_firestore_event(
            CloudEvent({"type": "google.cloud.firestore.document.v1.created", "source": "s", "id": "1"}, b"\xff\xff\xff\xff")
        )


def test_firestore_event_with_text_data_is_refused():
    with pytest.raises(MalformedEventError, match="must be DocumentEventData protobuf bytes or JSON, got str"):
        events.decode_firestore_event(
            CloudEvent({"type": "google.cloud.firestore.document.v1.created", "source": "s", "id": "1"}, "hello")
        )


# --- fuzzing: outside input never escapes as anything but MalformedEventError -------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _mutated(template, mutations):
    """Replace values at random paths of a golden event with arbitrary JSON."""
    raw = copy.deepcopy(template)
    for path, value in mutations:
        node = raw
        for key in path[:-1]:
            if isinstance(node, dict) and key in node:
                node = node[key]
        if isinstance(node, dict):
            node[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    "golden, decode",
    [
        ("pubsub_push_retrain", events.decode_pubsub),
        ("gcs_notification_pubsub", events.decode_storage_event),
        ("storage_finalized_direct", events.decode_storage_event),
        ("firestore_created_emulator", events.decode_firestore_event),
    ],
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fuzzed_events_decode_or_fail_with_malformed_event_error(golden, decode, data):
    template = _raw(golden)
    paths = [
        ("data", "message", "data"), ("data", "message", "attributes"), ("data", "message"), ("data",),
        ("data", "value", "fields"), ("data", "value", "name"), ("data", "name"), ("data", "generation"),
        ("data", "metadata"), ("data", "value"), ("data", "oldValue"),
    ]
    mutations = data.draw(st.lists(st.tuples(st.sampled_from(paths), json_values), min_size=1, max_size=3))
    raw = _mutated({"data": template["data"]}, mutations)
    try:
        decode(CloudEvent(template["attributes"], raw["data"]))
    except MalformedEventError:
        pass


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300))
def test_fuzzed_protobuf_bytes_decode_or_fail_with_malformed_event_error(payload):
    event = CloudEvent({"type": "google.cloud.firestore.document.v1.created", "source": "s", "id": "1"}, payload)
    try:
        events.decode_firestore_event(event)
    except MalformedEventError:
        pass


firestore_kinds = st.sampled_from(
    ["nullValue", "booleanValue", "integerValue", "doubleValue", "timestampValue", "stringValue",
     "bytesValue", "referenceValue", "geoPointValue", "arrayValue", "mapValue", "otherValue"]
)
firestore_values = st.recursive(
    st.dictionaries(firestore_kinds, json_values, min_size=1, max_size=2),
    lambda children: st.dictionaries(
        firestore_kinds,
        st.fixed_dictionaries({"values": st.lists(children, max_size=3)})
        | st.fixed_dictionaries({"fields": st.dictionaries(st.text(max_size=5), children, max_size=3)})
        | json_values,
        min_size=1,
        max_size=1,
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=8), firestore_values, max_size=4))
def test_fuzzed_firestore_field_values_decode_or_fail_with_malformed_event_error(fields):
    raw = _raw("firestore_created_emulator")
    raw["data"]["value"]["fields"] = fields
    try:
        events.decode_firestore_event(_event(raw))
    except MalformedEventError:
        pass
