"""Whole requests fuzzed at the HTTP level, against each function as functions-framework serves it.

What is specified, for on_upload, on_feedback, check_drift and launch_training alike:

* a request that cannot be an event is answered 400 with exactly one ``malformed_event`` log line whose
  message is the answer: one line, saying what is wrong, the same for the same request, bounded. That is
  bytes that are not JSON text, JSON that is not an object, JSON nested deeper than ``events.MAX_EVENT_DEPTH``
  or holding an integer Python will not convert, binary-mode headers missing, empty or of an unknown
  specversion, a structured event whose id, source, specversion or type is not a non-empty string;
* an event the handler refuses (MalformedEventError) is acknowledged with exactly one such line, and a Pub/Sub
  message is forwarded to its topic's dead-letter topic;
* nothing a client sends is answered 5xx (Pub/Sub would retry it into the dead-letter topic); a handler's own
  failure, the backend down, still is (test_handlers.py).

The backends are fakes (the handlers' real work is tested on the local stack); the functions-framework app,
the CloudEvents decoding, shared.events and the error handling are the real ones.
"""

from __future__ import annotations

import base64
import gzip
import importlib
import io
import json
from contextlib import redirect_stdout
from dataclasses import dataclass
from types import SimpleNamespace

import flask
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from functions import main
from shared import events
from shared.gcp.bus import MAX_REASON_CHARS

FUNCTIONS = ("on_upload", "on_feedback", "check_drift", "launch_training")
SUCCESS_EVENTS = {"object_ingested", "feedback_handled", "drift_check_done", "retrain_handled"}
MAX_REASON = 500
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PUBSUB = events.PUBSUB_PUBLISHED
FIRESTORE = "google.cloud.firestore.document.v1.created"
NATIVE_TYPE = {"on_upload": PUBSUB, "on_feedback": FIRESTORE, "check_drift": PUBSUB, "launch_training": PUBSUB}
DOCUMENT = "projects/p/databases/(default)/documents/models/digits/feedback/f1"


# --- the served functions ------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    text: str
    entries: list[dict]
    stdout: str
    escaped: list[str]  # exceptions that reached Flask's last handler (a 500)

    @property
    def malformed(self) -> list[dict]:
        return [e for e in self.entries if e.get("event") == "malformed_event"]

    @property
    def handled(self) -> list[dict]:
        return [e for e in self.entries if e.get("event") in SUCCESS_EVENTS]


_CHECK = SimpleNamespace(model="digits", version="v1", report=SimpleNamespace(detail="fake", status="ok"))
# function → (the use-case module its handler imports, the call it makes there, the fake's answer)
BACKENDS = {
    "on_upload": ("shared.gcp.ingest", "ingest_object", SimpleNamespace(status="accepted", reason=None, image_id="i-1")),
    "on_feedback": ("shared.gcp.feedback", "handle_feedback", SimpleNamespace(status="ignored", reason="fake")),
    "check_drift": ("shared.gcp.tick", "handle_tick", [_CHECK]),
    "launch_training": ("shared.gcp.launch", "handle_retrain_message",
                        (SimpleNamespace(model="digits", cause="fake"), SimpleNamespace(detail="fake", action="none", run_id=None))),
}


class Served:
    """One function as functions-framework serves it, its backend replaced by a fake that records its calls.

    Each handler imports its use case when it runs, so the fake replaces the call in the use-case module.
    """

    def __init__(self, function: str, patch: pytest.MonkeyPatch):
        from functions_framework import create_app

        self.function = function
        app = create_app(target=function, source=main.__file__, signature_type="cloudevent")
        self.client = app.test_client()
        self.escaped: list[str] = []
        self._record = lambda _sender, exception, **_: self.escaped.append(repr(exception)[:500])
        flask.got_request_exception.connect(self._record, app)
        self.calls: list[str] = []
        self.forwarded: list[tuple[str, str]] = []
        self.failure: Exception | None = None
        module, name, result = BACKENDS[function]
        patch.setattr(importlib.import_module(module), name, self._backend(name, result))

    def _backend(self, name: str, result):
        def fake(*_args):
            self.calls.append(name)
            if self.failure is not None:
                raise self.failure
            return result

        return fake

    def _forward(self, cloud_event, topic, function, error, settings):
        self.forwarded.append((topic, function))
        return "dead-letter-1"

    def post(self, body: bytes, headers) -> Answer:
        self.calls.clear()
        self.forwarded.clear()
        self.escaped.clear()
        out = io.StringIO()
        with redirect_stdout(out):
            # a stream, not data=: the test client would build its own form body for an empty one
            response = self.client.post("/", input_stream=io.BytesIO(body), content_length=len(body), headers=headers)
        entries = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]  # every line is JSON
        return Answer(response.status_code, response.get_data(as_text=True), entries, out.getvalue(), list(self.escaped))


@pytest.fixture(scope="module")
def served():
    with pytest.MonkeyPatch.context() as patch:
        functions = {function: Served(function, patch) for function in FUNCTIONS}
        # one dead-lettering call for every function: the fake hands it to the function that forwarded
        patch.setattr(importlib.import_module("shared.gcp.bus"), "forward_malformed",
                      lambda cloud_event, topic, function, *rest: functions[function]._forward(cloud_event, topic, function, *rest))
        yield functions


def assert_answered(served: Served, body: bytes, headers, *, refused: bool = False) -> Answer:
    """The specification, for one request: never 5xx; 400 → one reason line; 2xx → acknowledged or handled, once."""
    answer = served.post(body, headers)
    context = (served.function, answer.status, answer.text[:300], answer.escaped)
    assert answer.status < 500 and not answer.escaped, context
    if answer.status == 400:
        (entry,) = answer.malformed
        reason = entry["message"]
        assert reason == answer.text, context
        assert reason.startswith("not a CloudEvent: ") and "\n" not in reason and len(reason) <= MAX_REASON, reason
        assert entry["severity"] == "ERROR" and entry["function"] == served.function and entry["dead_letter_message_id"] is None
        assert served.calls == [] and served.forwarded == [], "a refused request reached the handler"
        again = served.post(body, headers)
        assert (again.status, again.text) == (400, reason), "the reason is not deterministic"
    else:
        assert not refused, f"expected 400, got {answer.status}: {answer.entries}"
        assert answer.status == 200, context
        assert (len(answer.malformed), len(answer.handled)) in ((1, 0), (0, 1)), answer.entries
        if answer.malformed:
            assert len(answer.malformed[0]["message"]) <= MAX_REASON_CHARS
    return answer


# --- strategies ----------------------------------------------------------------------------------

LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",))
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=12,
)
not_objects = json_values.filter(lambda v: not isinstance(v, dict))


def dumps(value) -> str:
    return json.dumps(value)  # floats may come out as NaN/Infinity: Python's reader takes them, others do not


@st.composite
def deep_json(draw, least: int = events.MAX_EVENT_DEPTH + 1) -> str:
    """JSON nested ``least`` or more levels deep (past the decoder's recursion limit, too)."""
    depth = draw(st.integers(least, 3000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"data":[', "]}")]))
    return opener * depth + dumps(draw(json_scalars)) + closer * depth


@st.composite
def huge_number(draw) -> str:
    """A JSON document holding an integer longer than Python converts (sys.get_int_max_str_digits())."""
    pattern = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=1, max_size=5)))
    digits = "9" + (pattern * 6000)[: draw(st.integers(4300, 6000))]
    template = draw(st.sampled_from(["{}", "[{}]", '{{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {}}}',
                                     '{{"x": [1, {{"y": -{}}}]}}']))
    return template.format(digits)


def encoded(text: str):
    """The same text as the bytes a client might send: UTF-8 (with a BOM), UTF-16/32, Latin-1, gzip, cut short."""
    return st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "latin-1", "gzip", "cut"]).map(
        lambda how: gzip.compress(text.encode()) if how == "gzip" else text.encode()[: len(text) // 2] if how == "cut"
        else text.encode(how, errors="replace"))


CONTENT_TYPES = [None, "application/json", "application/cloudevents+json", "application/cloudevents+json; charset=utf-8",
                 "application/json; charset=latin-1", "application/cloudevents-batch+json", "text/plain",
                 "application/octet-stream", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
content_types = st.sampled_from(CONTENT_TYPES) | st.text(LATIN1, max_size=30)
header_values = st.text(LATIN1, max_size=30)


def with_content_type(headers: list, content_type) -> list:
    return headers + ([("Content-Type", content_type)] if content_type is not None else [])


# Bodies that are not a JSON object (nor any of its encodings), or that no JSON reader should be made to read.
not_an_object_body = st.one_of(
    st.binary(max_size=300).filter(lambda b: not b.strip().startswith(b"{")),
    not_objects.map(dumps).flatmap(encoded),
    deep_json().flatmap(encoded),
    huge_number().map(str.encode),
    st.just(b""),
)


def binary_headers(function: str, **overrides) -> list:
    headers = {"ce-id": "evt-1", "ce-source": "//fuzz", "ce-specversion": "1.0", "ce-type": NATIVE_TYPE[function],
               **overrides}
    return [(key, value) for key, value in headers.items() if value is not None]


@st.composite
def broken_binary_headers(draw, function: str) -> list:
    """Binary-mode headers of which at least one required one is absent or empty, or the specversion unknown."""
    headers = dict(binary_headers(function))
    broken = draw(st.lists(st.sampled_from(events.CLOUDEVENT_HEADERS), min_size=1, max_size=3, unique=True))
    for name in broken:
        if name == "ce-specversion" and draw(st.booleans()):
            headers[name] = draw(header_values.filter(lambda v: v.strip() not in events.CLOUDEVENT_VERSIONS and v.strip()))
        elif draw(st.booleans()):
            headers[name] = ""
        else:
            del headers[name]
    extra = draw(st.lists(st.tuples(st.sampled_from(["ce-subject", "ce-time", "ce-dataschema", "ce-x"]), header_values),
                          max_size=2))
    return list(headers.items()) + extra


def pubsub_envelope(message: dict) -> dict:
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


@st.composite
def fuzzed_native_data(draw, function: str):
    """The data a function expects (a Pub/Sub push, a Storage object, a Firestore document), fields fuzzed."""
    if function == "on_feedback":
        value = draw(st.one_of(json_values, st.fixed_dictionaries(
            {"name": st.just(DOCUMENT) | json_values},
            optional={"fields": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values})))
        # updateMask.fieldPaths stays a list or absent: see test_event_data_no_decoder_can_read_is_acknowledged_as_malformed
        mask = draw(st.none() | st.fixed_dictionaries({}, optional={"fieldPaths": st.lists(st.text(max_size=5), max_size=2)}))
        data = {"value": value, **({"updateMask": mask} if mask is not None else {})}
        return draw(st.sampled_from([data, {"oldValue": value}, value]))
    payload = draw(st.binary(max_size=40) | json_values.map(lambda v: dumps(v).encode()))
    message = draw(st.fixed_dictionaries(
        {},
        optional={
            "data": st.just(base64.b64encode(payload).decode()) | json_values,
            "attributes": st.dictionaries(st.text(max_size=12), st.text(max_size=12) | json_values, max_size=3)
            | json_values | st.just({"payloadFormat": "JSON_API_V1", "eventType": "OBJECT_FINALIZE"}),
            "messageId": st.text(max_size=10) | json_values,
            # publishTime stays a string: see test_event_data_no_decoder_can_read_is_acknowledged_as_malformed
            "publishTime": st.sampled_from(["2026-01-01T00:00:00Z", "", "yesterday"]),
        },
    ))
    return draw(st.sampled_from([pubsub_envelope(message), message, {"bucket": "b", "name": "n", "generation": "1"}]))


# --- requests that cannot be an event --------------------------------------------------------------

@pytest.mark.parametrize("function", FUNCTIONS)
@FUZZ
@given(body=not_an_object_body, content_type=content_types)
def test_a_body_that_is_not_a_json_object_is_refused_400_with_one_reason(served, function, body, content_type):
    assert_answered(served[function], body, with_content_type([], content_type), refused=True)


@pytest.mark.parametrize("function", FUNCTIONS)
@FUZZ
@given(data=st.data())
def test_binary_mode_headers_that_cannot_be_an_event_are_refused_400(served, function, data):
    headers = data.draw(broken_binary_headers(function))
    body = data.draw(st.binary(max_size=100) | json_values.map(lambda v: dumps(v).encode()).filter(
        lambda b: b"specversion" not in b))
    content_type = data.draw(st.sampled_from(["application/json", "application/octet-stream", None]))
    answer = assert_answered(served[function], body, with_content_type(headers, content_type), refused=True)
    # missing: the framework refuses it; present but empty: it decodes it, and the check before the handler refuses it
    assert any(words in answer.text for words in ("binary-mode headers", "ce-specversion", "is empty)")), answer.text


@pytest.mark.parametrize("function", FUNCTIONS)
@FUZZ
@given(data=st.data())
def test_binary_mode_data_nested_too_deep_or_with_an_unreadable_number_is_refused_400(served, function, data):
    body = data.draw(deep_json().map(str.encode) | huge_number().map(str.encode))
    content_type = data.draw(st.sampled_from(["application/json", "application/octet-stream", "text/plain", None]))
    answer = assert_answered(served[function], body, with_content_type(binary_headers(function), content_type), refused=True)
    assert f"more than {events.MAX_EVENT_DEPTH} levels deep" in answer.text or "digits" in answer.text


@st.composite
def structured_with_a_bad_attribute(draw, function: str) -> dict:
    good = {"id": "evt-1", "source": "//fuzz", "specversion": "1.0", "type": NATIVE_TYPE[function]}
    broken = draw(st.lists(st.sampled_from(sorted(good)), min_size=1, unique=True))
    event = dict(good)
    for name in broken:
        how = draw(st.sampled_from(["absent", "empty", "not a string"] + (["unknown"] if name == "specversion" else [])))
        if how == "absent":
            del event[name]
        elif how == "empty":
            event[name] = ""
        elif how == "unknown":
            event[name] = draw(st.text(max_size=8).filter(lambda v: v not in events.CLOUDEVENT_VERSIONS))
        else:
            event[name] = draw(json_values.filter(lambda v: not isinstance(v, str)))
    event["data"] = draw(fuzzed_native_data(function))
    return event


@pytest.mark.parametrize("function", FUNCTIONS)
@FUZZ
@given(data=st.data())
def test_a_structured_event_whose_attributes_are_not_non_empty_strings_is_refused_400(served, function, data):
    event = data.draw(structured_with_a_bad_attribute(function))
    content_type = data.draw(st.sampled_from(["application/cloudevents+json", "application/json", None]))
    # with Content-Type application/cloudevents+json, ce-* headers do not make it binary mode
    headers = binary_headers(function) if content_type == "application/cloudevents+json" and data.draw(st.booleans()) else []
    answer = assert_answered(served[function], dumps(event).encode(), with_content_type(headers, content_type), refused=True)
    assert "lacks" in answer.text or "specversion" in answer.text, answer.text


@pytest.mark.parametrize("function", FUNCTIONS)
@FUZZ
@given(text=deep_json() | huge_number(), content_type=st.sampled_from(["application/cloudevents+json", "application/json"]))
def test_a_structured_body_nested_too_deep_or_with_an_unreadable_number_is_refused_400(served, function, text, content_type):
    answer = assert_answered(served[function], text.encode(), [("Content-Type", content_type)], refused=True)
    assert f"more than {events.MAX_EVENT_DEPTH} levels deep" in answer.text or "digits" in answer.text


@pytest.mark.parametrize("function", FUNCTIONS)
def test_an_event_nested_too_deep_for_the_limit_but_not_the_decoder_is_refused_before_the_handler(served, function):
    data = json.dumps({"message": {"data": ""}, "deep": json.loads("[" * 200 + "]" * 200)}).encode()
    answer = assert_answered(served[function], data, binary_headers(function, **{"Content-Type": "application/json"}),
                             refused=True)
    assert answer.text == f"not a CloudEvent: the event nests JSON more than {events.MAX_EVENT_DEPTH} levels deep"


# --- any request -----------------------------------------------------------------------------------

@st.composite
def any_request(draw, function: str) -> tuple[bytes, list]:
    mode = draw(st.sampled_from(["binary", "broken binary", "structured", "none"]))
    if mode == "binary":
        overrides = draw(st.fixed_dictionaries({}, optional={
            "ce-type": st.sampled_from([PUBSUB, FIRESTORE, events.STORAGE_FINALIZED]) | header_values,
            "ce-id": header_values, "ce-source": header_values}))
        headers = binary_headers(function, **overrides)
    elif mode == "broken binary":
        headers = draw(broken_binary_headers(function))
    else:
        headers = []
    if mode == "structured":
        event = draw(st.fixed_dictionaries(
            {"specversion": st.sampled_from(["1.0", "0.3"]) | json_values, "id": st.text(max_size=6) | json_values,
             "source": st.just("//fuzz") | json_values,
             "type": st.sampled_from([PUBSUB, FIRESTORE, events.STORAGE_FINALIZED]) | json_values},
            optional={"data": fuzzed_native_data(function), "data_base64": st.text(max_size=8) | json_values,
                      "subject": json_values}))
        body = draw(encoded(dumps(event)))
    else:
        body = draw(st.one_of(
            fuzzed_native_data(function).map(dumps).flatmap(encoded),
            not_an_object_body,
            st.binary(max_size=200),
        ))
    content_type = draw(content_types)
    duplicated = draw(st.lists(st.sampled_from([h for h in headers if h[0].startswith("ce-")] or [("ce-x", "1")]), max_size=1))
    return body, with_content_type(headers + duplicated, content_type)


@pytest.mark.parametrize("function", FUNCTIONS)
@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_no_request_is_answered_5xx_and_each_is_logged_as_malformed_at_most_once(served, function, data):
    body, headers = data.draw(any_request(function))
    assert_answered(served[function], body, headers)


# --- the reason itself -----------------------------------------------------------------------------

@FUZZ
@given(headers=st.dictionaries(st.sampled_from([*events.CLOUDEVENT_HEADERS, "content-type", "ce-x", "Ce-Id"]),
                               header_values, max_size=6),
       body=st.binary(max_size=200) | not_an_object_body | json_values.map(lambda v: dumps(v).encode()))
def test_the_reason_never_raises_is_one_bounded_line_and_depends_only_on_the_request(headers, body):
    reason = events.not_a_cloud_event(headers, body)
    assert reason.startswith("not a CloudEvent: ") and "\n" not in reason and len(reason) <= MAX_REASON
    assert events.not_a_cloud_event(dict(headers), bytes(body)) == reason


def test_the_reasons_say_what_is_wrong():
    depth = events.MAX_EVENT_DEPTH
    cases = {
        (b"[" * 5000 + b"]" * 5000, ()): f"no ce-* headers and a 10000-byte body nesting JSON more than {depth} levels deep",
        (b"1" * 5000, ()): "no ce-* headers and a 5000-byte body holding a number of more than 4300 digits",
        (b"[" * 5000 + b"]" * 5000, ("ce",)): f"binary-mode data is a 10000-byte body nesting JSON more than {depth} levels deep",
        (b"\x80abc", ()): "no ce-* headers and a 4-byte body that is not UTF-8 (nor UTF-16/32) text",
        (b"{oops", ()): "no ce-* headers and a 5-byte body that is not JSON (Expecting property name enclosed in double quotes at character 1)",
        (b"null", ()): "no ce-* headers and a JSON null, not an object",
        ('[1]'.encode("utf-16"), ()): "no ce-* headers and a JSON list, not an object",
        (b'{"specversion": "1.0", "id": 7, "source": "s", "type": ""}', ()):
            "no ce-* headers and the JSON object lacks id, type (id is a JSON number, not a string; type is empty)",
        (b'{"specversion": "0.2", "id": "1", "source": "s", "type": "t"}', ()):
            "no ce-* headers and the JSON object has specversion '0.2', not one of ('0.3', '1.0')",
    }
    for (body, mode), expected in cases.items():
        headers = dict(binary_headers("check_drift")) if mode else {}
        assert events.not_a_cloud_event(headers, body) == f"not a CloudEvent: {expected}"
    structured = {"Content-Type": "application/cloudevents+json", **dict(binary_headers("check_drift"))}
    assert events.not_a_cloud_event(structured, b"[]") == "not a CloudEvent: application/cloudevents+json and a JSON list, not an object"
    assert events.not_a_cloud_event({**structured, "ce-specversion": "9"}, b"{}") == (
        "not a CloudEvent: ce-specversion '9' is not one of ('0.3', '1.0')")  # complete ce-* headers name the version
    assert events.not_a_cloud_event({"ce-id": "1", "ce-type": "t"}, b"{}") == (
        "not a CloudEvent: binary-mode headers ce-source, ce-specversion missing or empty")


# --- the error handler, and what is not malformed --------------------------------------------------

def test_explaining_an_unreadable_request_cannot_itself_fail(served, monkeypatch):
    def broken(*_args):
        raise RecursionError("explaining failed")

    monkeypatch.setattr(events, "not_a_cloud_event", broken)
    for function in FUNCTIONS:
        answer = assert_answered(served[function], b"[" * 5000 + b"]" * 5000, [("Content-Type", "application/json")],
                                 refused=True)
        assert answer.text == "not a CloudEvent: the framework could not read it (RecursionError; RecursionError explaining why)"


@pytest.mark.parametrize("function", ["on_upload", "check_drift", "launch_training"])
@FUZZ
@given(data=st.data())
def test_a_pubsub_event_the_handler_refuses_is_acknowledged_and_dead_lettered(served, function, data):
    message = data.draw(st.one_of(
        st.fixed_dictionaries({"data": st.text(max_size=10).filter(lambda s: not _is_base64(s)), "messageId": st.just("m-1")}),
        st.fixed_dictionaries({"data": st.just(""), "messageId": st.just("m-1"),
                               "attributes": st.dictionaries(st.text(max_size=5), json_values.filter(lambda v: not isinstance(v, str)),
                                                             min_size=1, max_size=2)}),
        st.fixed_dictionaries({"data": json_values.filter(lambda v: not isinstance(v, str)), "messageId": st.just("m-1")}),
    ))
    served_function = served[function]
    answer = assert_answered(served_function, dumps(pubsub_envelope(message)).encode(),
                             binary_headers(function, **{"Content-Type": "application/json"}))
    assert answer.status == 200 and len(answer.malformed) == 1 and served_function.calls == []
    topic = {"on_upload": "storage_events", "check_drift": "drift_checks", "launch_training": "retrain_requests"}[function]
    from shared.config import get_settings

    assert served_function.forwarded == [(getattr(get_settings().topics, topic), function)]
    assert answer.malformed[0]["dead_letter_message_id"] == "dead-letter-1" and answer.malformed[0]["event_id"] == "evt-1"


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
        return True
    except ValueError:
        return False


def test_a_firestore_event_the_handler_refuses_is_acknowledged(served):
    answer = assert_answered(served["on_feedback"], json.dumps({"value": {"name": "not/a/document"}}).encode(),
                             binary_headers("on_feedback", **{"Content-Type": "application/json"}))
    assert answer.status == 200 and served["on_feedback"].calls == [] and served["on_feedback"].forwarded == []
    assert "is not projects/*/databases/*/documents/*" in answer.malformed[0]["message"]


def test_a_good_event_still_reaches_the_handler(served):
    push = pubsub_envelope({"data": base64.b64encode(b'{"model": "digits"}').decode(), "messageId": "m-1"})
    answer = assert_answered(served["check_drift"], json.dumps(push).encode(),
                             binary_headers("check_drift", **{"Content-Type": "application/json"}))
    assert answer.status == 200 and served["check_drift"].calls == ["handle_tick"] and answer.malformed == []


# --- well-formed events whose data cannot be decoded: acknowledged as malformed, never retried ---------

KNOWN = {
    # PubSubMessage.json catches only UnicodeDecodeError/JSONDecodeError: RecursionError and the integer-length ValueError escape
    "message data nested past the decoder's recursion limit": (
        ["on_upload", "check_drift", "launch_training"],
        lambda: pubsub_envelope({"data": base64.b64encode(b"[" * 3000 + b"]" * 3000).decode(), "messageId": "m-1",
                                 "attributes": {"payloadFormat": "JSON_API_V1", "eventType": "OBJECT_FINALIZE"}})),
    "message data holding a 5000-digit integer": (
        ["on_upload", "check_drift", "launch_training"],
        lambda: pubsub_envelope({"data": base64.b64encode(b"9" * 5000).decode(), "messageId": "m-1",
                                 "attributes": {"payloadFormat": "JSON_API_V1", "eventType": "OBJECT_FINALIZE"}})),
    # PubSubMessage.published_at calls .replace on whatever publishTime is
    "publishTime that is not a string": (
        ["launch_training"],
        lambda: pubsub_envelope({"data": base64.b64encode(b"{}").decode(), "messageId": "m-1", "publishTime": 5})),
    # decode_firestore_event: tuple(updateMask.fieldPaths) of an int
    "updateMask.fieldPaths that is not a list": (
        ["on_feedback"], lambda: {"value": {"name": DOCUMENT}, "updateMask": {"fieldPaths": 5}}),
    # firestore_values.decode_value: int() of an integerValue string longer than 4300 digits
    "integerValue of 5000 digits": (
        ["on_feedback"], lambda: {"value": {"name": DOCUMENT, "fields": {"n": {"integerValue": "9" * 5000}}}}),
}


@pytest.mark.parametrize("kind, function", [(kind, f) for kind, (functions, _) in KNOWN.items() for f in functions])
def test_event_data_no_decoder_can_read_is_acknowledged_as_malformed(served, kind, function):
    data = KNOWN[kind][1]()
    headers = binary_headers(function, **{"Content-Type": "application/json"})
    answer = assert_answered(served[function], json.dumps(data).encode(), headers)
    assert answer.status == 200 and len(answer.malformed) == 1
