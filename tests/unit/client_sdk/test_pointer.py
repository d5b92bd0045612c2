"""The pointer a device reads comes from outside: a valid one parses, anything else is refused with
a PointerError that names the problem — never another exception, never a model."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from client_sdk.errors import PointerError
from shared.firestore_values import decode_fields, encode_fields
from client_sdk.pointer import parse_pointer

REF = {
    "version": "v3", "path": "models/digits/v3/model.tflite", "sha256": "ab" * 32, "size": 1234,
    "signature": "c2ln", "labels": ["0", "1"], "input": {"height": 32, "width": 32, "channels": 3, "dtype": "uint8"},
    "min_sdk_version": 1,
}
POINTER = {"model": "digits", "labels": ["0", "1"], "production": REF, "rollout": {"candidate": None, "percent": 0.0}}


def document(values):
    return {"name": "projects/p/databases/(default)/documents/models/digits", "fields": encode_fields(values)}


def test_a_pointer_written_by_the_publisher_parses():
    pointer = parse_pointer("digits", document(POINTER))
    assert pointer.production.version == "v3" and pointer.production.size == 1234
    assert pointer.production.input.height == 32 and pointer.rollout.candidate is None


def test_the_rest_value_codec_round_trips():
    values = {"a": None, "b": True, "c": 7, "d": 0.5, "e": "x", "f": [1, "y", {"g": [2.5]}], "h": {}}
    assert decode_fields(encode_fields(values)) == values


@pytest.mark.parametrize(
    "change, message",
    [
        ({"production": {**REF, "sha256": "xyz"}}, "production.sha256"),
        ({"production": {**REF, "size": 0}}, "production.size"),
        ({"production": {**REF, "version": "latest"}}, "production.version"),
        ({"production": {**REF, "input": {"height": 0, "width": 32}}}, "production.input.height"),
        ({"production": {**REF, "path": "models/other/v3/model.tflite"}}, "production.path"),
        ({"production": {**REF, "path": "uploads/digits/u/x.png"}}, "production.path"),
        ({"production": {**REF, "labels": []}}, "production.labels is empty"),
        ({"rollout": {"candidate": {**REF, "signature": 5}, "percent": 10}}, "rollout.candidate.signature"),
        ({"rollout": {"candidate": REF, "percent": 150}}, "rollout.percent"),
        ({"model": "letters"}, "names model"),
        ({"labels": "0123"}, "labels"),
    ],
)
def test_a_pointer_breaking_the_contract_is_refused_with_the_field_named(change, message):
    with pytest.raises(PointerError, match=message.replace(".", r"\.")):
        parse_pointer("digits", document({**POINTER, **change}))


@pytest.mark.parametrize("raw", [None, [], "doc", {"fields": []}, {"fields": {"model": {"stringValue": 1}}},
                                 {"fields": {"model": {"integerValue": "x"}}}, {"fields": {"model": {"weird": 1}}},
                                 {"fields": {"model": {}}}])
def test_malformed_rest_json_is_refused(raw):
    with pytest.raises(PointerError, match="models/digits"):
        parse_pointer("digits", raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["model", "labels", "production", "rollout", "updated", "x"]), json_values))
def test_any_well_typed_but_arbitrary_document_parses_or_is_refused_cleanly(values):
    try:
        parse_pointer("digits", document(values))
    except PointerError as exc:
        assert str(exc).startswith("models/digits")


@settings(max_examples=300)
@given(st.recursive(json_values, lambda inner: st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=30))
def test_any_json_at_all_is_refused_cleanly_or_parses(raw):
    try:
        parse_pointer("digits", raw if isinstance(raw, dict) else {"fields": raw})
    except PointerError:
        pass


@given(st.sampled_from(sorted(REF)), json_values)
def test_one_fuzzed_field_of_a_valid_production_ref_never_crashes(field, value):
    try:
        pointer = parse_pointer("digits", document({**POINTER, "production": {**REF, field: value}}))
    except PointerError:
        return
    assert pointer.production is not None  # whatever passed still satisfies the contract
    json.dumps(pointer.model_dump(mode="json"))
