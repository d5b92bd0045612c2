"""Adapter: what landed in the dead-letter topics, and replaying it after an outage.

Two kinds of message end there. A handler refuses a malformed one at once and
forwards it with ``edgeloop_error`` (shared.gcp.bus): replaying it would
only bring it back. Pub/Sub moves one there after ``max_delivery_attempts``
failed deliveries, e.g. while a function was down: once the outage is over,
replaying it to its topic is how the event still gets handled (every handler
is idempotent, so a message that was in fact handled is harmless to replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.api_core import exceptions as gexc

from shared.config import Settings
from shared.events import MALFORMED_ATTRIBUTE
from shared.gcp.clients import publisher_client, subscriber_client, subscription_path, topic_path

# Every topic whose push subscription dead-letters (a Topics field each).
SOURCE_TOPICS = ("storage_events", "retrain_requests", "drift_checks")
PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"  # attributes Pub/Sub adds when it gives up on a message
PULL_BATCH = 100
PULL_WAIT_S = 3.0


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # the topic it was first published to
    message_id: str
    attributes: dict[str, str] = field(repr=False)
    data: bytes = field(repr=False)

    @property
    def malformed(self) -> str | None:
        """Why a handler refused it, or None if its deliveries ran out (then it is worth replaying)."""
        return self.attributes.get(MALFORMED_ATTRIBUTE)

    @property
    def original_attributes(self) -> dict[str, str]:
        return {k: v for k, v in self.attributes.items() if not k.startswith(PUBSUB_DEAD_LETTER_PREFIX)}


def drain(settings: Settings, replay: bool) -> list[DeadLetter]:
    """Every message waiting in the dead-letter subscriptions.

    With ``replay``, messages whose deliveries ran out are published to their topic again and removed from
    the dead-letter subscription; malformed ones, and everything when not replaying, stay where they are.
    """
    subscriber, publisher = subscriber_client(), publisher_client()
    found: list[DeadLetter] = []
    for topic_field in SOURCE_TOPICS:
        topic = getattr(settings.topics, topic_field)
        subscription = subscription_path(settings.topics.dead_letter(topic), settings.project_id)
        kept: list[str] = []  # held (not acknowledged) until the end, so the next pull returns new ones only
        while True:
            try:  # an empty subscription answers a pull only at its deadline: keep that short
                response = subscriber.pull(request={"subscription": subscription, "max_messages": PULL_BATCH},
                                           timeout=PULL_WAIT_S, retry=None)
            except gexc.DeadlineExceeded:
                break
            if not response.received_messages:
                break
            done: list[str] = []
            for received in response.received_messages:
                message = received.message
                letter = DeadLetter(topic, message.message_id, dict(message.attributes), bytes(message.data))
                found.append(letter)
                if replay and letter.malformed is None:
                    publisher.publish(topic_path(topic, settings.project_id), letter.data,
                                      **letter.original_attributes).result(timeout=30)
                    done.append(received.ack_id)
                else:
                    kept.append(received.ack_id)
            if done:
                subscriber.acknowledge(request={"subscription": subscription, "ack_ids": done})
        if kept:  # back at once, not after the ack deadline
            subscriber.modify_ack_deadline(request={"subscription": subscription, "ack_ids": kept,
                                                    "ack_deadline_seconds": 0})
    return found
