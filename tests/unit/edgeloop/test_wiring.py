"""The local stack's Pub/Sub wiring, against recording clients instead of an emulator."""

import os

import pytest
from google.cloud import pubsub_v1

from edgeloop.localstack import wiring
from edgeloop.localstack.state import StackState
from shared.config import Settings


class RecordingClient:
    """Stands in for PublisherClient and SubscriberClient: remembers the emulator address it was made with."""

    made_with: list[str | None] = []
    requests: list[dict] = []

    def __init__(self):
        RecordingClient.made_with.append(os.environ.get("PUBSUB_EMULATOR_HOST"))

    topic_path = staticmethod(pubsub_v1.PublisherClient.topic_path)
    subscription_path = staticmethod(pubsub_v1.SubscriberClient.subscription_path)

    def create_topic(self, request):
        RecordingClient.requests.append(request)

    create_subscription = create_topic


@pytest.fixture
def recording(monkeypatch):
    RecordingClient.made_with, RecordingClient.requests = [], []
    monkeypatch.setattr(pubsub_v1, "PublisherClient", RecordingClient)
    monkeypatch.setattr(pubsub_v1, "SubscriberClient", RecordingClient)
    return RecordingClient


def _state() -> StackState:
    ports = {"firestore": 8001, "pubsub": 8002, "storage": 8003, "on_upload": 8004, "on_feedback": 8005,
             "check_drift": 8006, "launch_training": 8007}
    return StackState("id", "/tmp/stack", "127.0.0.1", "demo-edgeloop", "bucket", ports)


@pytest.mark.parametrize("caller_host", [None, "127.0.0.1:9999"])
def test_the_clients_talk_to_the_new_stack_and_the_callers_environment_is_left_as_it_was(recording, monkeypatch, caller_host):
    if caller_host is None:
        monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    else:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", caller_host)
    wiring.create_topics_and_subscriptions(_state(), Settings())
    assert recording.made_with == ["127.0.0.1:8002", "127.0.0.1:8002"]
    assert os.environ.get("PUBSUB_EMULATOR_HOST") == caller_host


def test_every_routed_topic_pushes_to_its_function_with_a_dead_letter_topic_and_bounded_retries(recording):
    settings = Settings()
    wiring.create_topics_and_subscriptions(_state(), settings)
    pushes = {r["push_config"]["push_endpoint"]: r for r in recording.requests if "push_config" in r}
    for topic_field, function in wiring.PUSH_ROUTES.items():
        topic = getattr(settings.topics, topic_field)
        push = pushes[f"{_state().url(function)}/"]
        assert push["topic"] == f"projects/demo-edgeloop/topics/{topic}"
        assert push["dead_letter_policy"] == {
            "dead_letter_topic": f"projects/demo-edgeloop/topics/{settings.topics.dead_letter(topic)}",
            "max_delivery_attempts": settings.delivery.max_delivery_attempts,
        }
        # A pull subscription keeps what is dead-lettered until `edgeloop dead-letters` reads it.
        assert {"name": f"projects/demo-edgeloop/subscriptions/{settings.topics.dead_letter(topic)}",
                "topic": f"projects/demo-edgeloop/topics/{settings.topics.dead_letter(topic)}"} in recording.requests
