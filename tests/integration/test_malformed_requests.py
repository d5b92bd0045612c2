"""Requests that cannot be an event, sent to each function's real endpoint on the local stack.

Each of these answered 500 (so a Pub/Sub push would be retried into its dead-letter topic) until the error
handler could explain them: the framework's JSON reader overflowed the stack on deeply nested JSON, or refused an
integer longer than Python converts, and the handler then failed the same way explaining it; a structured event
whose type is not a string failed the handler's type check. The fuzzing is in tests/unit/functions; this checks
the served processes answer the same: 400, one malformed_event line with the reason, still alive.
"""

from __future__ import annotations

import json

import pytest
import requests

from edgeloop.localstack.function_logs import log_entries
from edgeloop.localstack.stack import pid_alive
from shared import events
from tests.integration.helpers import eventually

FUNCTIONS = ("on_upload", "on_feedback", "check_drift", "launch_training")
NATIVE_TYPE = {"on_upload": events.PUBSUB_PUBLISHED, "on_feedback": "google.cloud.firestore.document.v1.created",
               "check_drift": events.PUBSUB_PUBLISHED, "launch_training": events.PUBSUB_PUBLISHED}
DEEP = b"[" * 5000 + b"]" * 5000
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def requests_for(function: str) -> list[tuple[str, dict, bytes, str]]:
    """(kind, headers, body, words of the reason)."""
    binary = {"ce-id": "deep-1", "ce-source": "//test", "ce-specversion": "1.0", "ce-type": NATIVE_TYPE[function],
              "Content-Type": "application/json"}
    event = {"specversion": "1.0", "id": "x-1", "source": "//test", "type": NATIVE_TYPE[function], "data": {}}
    return [
        ("structured JSON nested 5000 deep", {"Content-Type": "application/json"}, DEEP,
         f"no ce-* headers and a 10000-byte body nesting JSON more than {events.MAX_EVENT_DEPTH} levels deep"),
        ("binary-mode data nested 5000 deep", binary, DEEP,
         f"binary-mode data is a 10000-byte body nesting JSON more than {events.MAX_EVENT_DEPTH} levels deep"),
        ("a structured event holding a 5000-digit integer", STRUCTURED,
         json.dumps(event).replace('"data": {}', '"data": 9' + "0" * 4999).encode(), "holding a number of more than"),
        ("a structured event whose type is a list", STRUCTURED, json.dumps({**event, "type": [event["type"]]}).encode(),
         "the event lacks type (type is a JSON list, not a string)"),
        ("a JSON array", STRUCTURED, b"[]", "a JSON list, not an object"),
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_request_that_cannot_be_an_event_is_answered_400_with_one_reason(local_stack, function):
    for kind, headers, body, reason in requests_for(function):
        before = len(log_entries(local_stack, function))
        response = requests.post(local_stack.url(function) + "/", data=body, headers=headers, timeout=10)
        assert response.status_code == 400, (kind, response.status_code, response.text[:300])
        assert response.text.startswith("not a CloudEvent: ") and reason in response.text, (kind, response.text)
        logged = eventually(lambda: [e for e in log_entries(local_stack, function)[before:]
                                     if e.get("event") == "malformed_event" and e["message"] == response.text], 10, kind)
        (entry,) = logged
        assert entry["severity"] == "ERROR" and entry["function"] == function
    assert pid_alive(local_stack.pids[function])
