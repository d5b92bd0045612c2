"""The entry points called as plain functions (functions-framework's decorators leave them callable).

Only what needs no backend is here; the handlers' real work is tested on the local stack
(tests/integration/test_functions.py).
"""

import base64
import json

import pytest
from cloudevents.http import CloudEvent

from functions import main
from tests.conftest import golden_event


def _entries(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_a_malformed_event_is_acknowledged_with_its_reason_instead_of_retried(capsys):
    bad = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "s", "id": "7"}, {"nope": 1})
    for handler in (main.on_upload, main.check_drift, main.launch_training):
        assert handler(bad) is None  # returning (not raising) acknowledges the delivery
    entries = _entries(capsys)
    assert [e["function"] for e in entries] == ["on_upload", "check_drift", "launch_training"]
    assert all(e["severity"] == "ERROR" and e["event"] == "malformed_event" for e in entries)
    assert all("no 'message' object" in e["message"] for e in entries)


def test_on_feedback_refuses_a_pubsub_event(capsys):
    main.on_feedback(golden_event("pubsub_push_retrain"))
    (entry,) = _entries(capsys)
    assert entry["event"] == "malformed_event"
    assert "unexpected CloudEvent type" in entry["message"]


def _served(target: str):
    """The function as functions-framework serves it (it loads functions/main.py again, as module ``main``)."""
    from functions_framework import create_app

    return create_app(target=target, source=main.__file__, signature_type="cloudevent").test_client()


def test_a_request_the_framework_cannot_read_is_answered_400_and_logged_not_crashed(capsys):
    client = _served("on_feedback")
    for body, headers in [(b"\x80 not utf-8", {}), (b"[1, 2]", {}), (b"{}", {"ce-id": "x-1", "ce-source": "s"})]:
        response = client.post("/", data=body, headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 400 and response.text.startswith("not a CloudEvent")
    entries = _entries(capsys)
    assert [e["event"] for e in entries] == ["malformed_event"] * 3
    assert {e["function"] for e in entries} == {"on_feedback"} and entries[2]["event_id"] == "x-1"


def _push(payload: dict) -> dict:
    return {"message": {"data": base64.b64encode(json.dumps(payload).encode()).decode(), "messageId": "m-1"},
            "subscription": "projects/p/subscriptions/s"}


FEEDBACK_VALUE = {"name": "projects/p/databases/(default)/documents/models/digits/feedback/f1",
                  "fields": {"uid": {"stringValue": "u"}}}
# function → (the backend call its handler makes, in the use-case module it imports, the event type, a well-formed
# event's data)
GOOD_EVENTS = {
    "on_upload": ("shared.gcp.ingest.ingest_object", "google.cloud.storage.object.v1.finalized",
                  {"bucket": "b", "name": "uploads/digits/u-1/a.png", "generation": "1"}),
    "on_feedback": ("shared.gcp.feedback.handle_feedback", "google.cloud.firestore.document.v1.created", {"value": FEEDBACK_VALUE}),
    "check_drift": ("shared.gcp.tick.handle_tick", "google.cloud.pubsub.topic.v1.messagePublished", _push({"model": "digits"})),
    "launch_training": ("shared.gcp.launch.handle_retrain_message", "google.cloud.pubsub.topic.v1.messagePublished",
                        _push({"model": "digits", "reason": "manual", "cause": "manual:digits:1"})),
}


@pytest.mark.parametrize("function", sorted(GOOD_EVENTS))
def test_a_handler_failure_still_answers_500_so_the_event_is_retried(monkeypatch, capsys, function):
    client = _served(function)
    backend, event_type, data = GOOD_EVENTS[function]
    called = []

    def boom(*_):
        called.append(backend)
        raise RuntimeError("backend down")

    monkeypatch.setattr(backend, boom)  # the handler imports its use case when it runs: the fake is found there
    headers = {"ce-id": "f-1", "ce-source": "//test", "ce-specversion": "1.0", "ce-type": event_type,
               "Content-Type": "application/json"}
    response = client.post("/", json=data, headers=headers)
    assert response.status_code == 500 and called == [backend]
    assert [e for e in _entries(capsys) if e["event"] == "malformed_event"] == []  # a failure, not a malformed event


def test_a_malformed_message_that_cannot_be_dead_lettered_answers_500_so_it_is_retried(monkeypatch, capsys):
    client = _served("launch_training")
    called = []

    def pubsub_down(*_):
        called.append("forward_malformed")
        raise RuntimeError("pubsub down")

    monkeypatch.setattr("shared.gcp.bus.forward_malformed", pubsub_down)
    headers = {"ce-id": "r-1", "ce-source": "//test", "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    response = client.post("/", json={"message": {"data": "%% not base64", "messageId": "m-1"}}, headers=headers)
    assert response.status_code == 500 and called == ["forward_malformed"]
    assert _entries(capsys) == []  # logged once, when a redelivery is dead-lettered
