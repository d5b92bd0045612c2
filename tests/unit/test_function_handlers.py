"""The entry points called as plain functions (functions-framework's decorators leave them callable).

Only what needs no backend is here; the handlers' real work is tested on the local stack
(tests/integration/test_functions.py).
"""

import json

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
