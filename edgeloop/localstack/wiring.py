"""Event wiring of the local stack: which event reaches which function.

* storage → Pub/Sub: the storage emulator publishes a GCS notification for every
  finalized object to the storage-events topic;
* Pub/Sub → functions: a push subscription per routed topic, each with a
  dead-letter topic and a bounded retry policy;
* Firestore → functions: document triggers registered with the Firestore emulator.

infra/terraform wires the same routes in Google Cloud (tests/infra checks that they agree).
"""

from __future__ import annotations

import os

import requests

from edgeloop.localstack.state import StackError, StackState
from shared.config import Settings

# Which topic (a Topics field) pushes to which function.
PUSH_ROUTES = {"storage_events": "on_upload", "retrain_requests": "launch_training", "drift_checks": "check_drift"}
# Firestore triggers: function -> (event type, document pattern below /documents).
FIRESTORE_TRIGGERS = {
    "on_feedback": ("providers/cloud.firestore/eventTypes/document.create", "models/{model}/feedback/{feedbackId}"),
}


def storage_notification_topic(settings: Settings) -> str:
    """The topic the storage emulator publishes its object notifications to."""
    return settings.topics.storage_events


def firestore_trigger_address(state: StackState) -> str:
    """Where the Firestore emulator delivers trigger events: it takes one address, the triggered function's server."""
    return f"{state.host}:{state.ports['on_feedback']}"


def create_topics_and_subscriptions(state: StackState, settings: Settings) -> None:
    """Topics, dead-letter topics (each with a pull subscription so nothing is dropped) and push subscriptions."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1
    from google.protobuf.duration_pb2 import Duration

    # The clients take the emulator's address from the environment when they are made. Set it only for that:
    # a process that starts a second stack (a test, a benchmark) must keep talking to the stack it was using.
    caller_host = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = state.client_env()["PUBSUB_EMULATOR_HOST"]
    try:
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    finally:
        if caller_host is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = caller_host
    delivery = settings.delivery

    def ensure(call, **request):
        try:
            call(request=request)
        except AlreadyExists:
            pass

    for topic_field, function in PUSH_ROUTES.items():
        topic = getattr(settings.topics, topic_field)
        dead_letter = settings.topics.dead_letter(topic)
        for name in (topic, dead_letter):
            ensure(publisher.create_topic, name=publisher.topic_path(state.project_id, name))
        ensure(
            subscriber.create_subscription,
            name=subscriber.subscription_path(state.project_id, dead_letter),
            topic=publisher.topic_path(state.project_id, dead_letter),
        )
        ensure(
            subscriber.create_subscription,
            name=subscriber.subscription_path(state.project_id, f"{topic}-to-{function}"),
            topic=publisher.topic_path(state.project_id, topic),
            push_config={"push_endpoint": state.url(function) + "/"},
            ack_deadline_seconds=delivery.ack_deadline_s,
            dead_letter_policy={
                "dead_letter_topic": publisher.topic_path(state.project_id, dead_letter),
                "max_delivery_attempts": delivery.max_delivery_attempts,
            },
            retry_policy={
                "minimum_backoff": Duration(seconds=delivery.min_backoff_s),
                "maximum_backoff": Duration(seconds=delivery.max_backoff_s),
            },
        )


def register_firestore_triggers(state: StackState) -> None:
    for function, (event_type, pattern) in FIRESTORE_TRIGGERS.items():
        resource = f"projects/{state.project_id}/databases/(default)/documents/{pattern}"
        response = requests.put(
            f"{state.url('firestore')}/emulator/v1/projects/{state.project_id}/triggers/{function}",
            json={"eventTrigger": {"resource": resource, "eventType": event_type, "service": "firestore.googleapis.com"}},
            timeout=60,  # the emulator's first answer here takes seconds (11 s measured on a busy 2-core machine)
        )
        if not response.ok:
            raise StackError(f"registering Firestore trigger {function} failed: {response.status_code} {response.text}")
