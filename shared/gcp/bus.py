"""Adapter: the Pub/Sub messages that are not retrain requests (those are ``retrain_requests``).

The scheduler's drift-check tick, and malformed messages forwarded straight to
their topic's dead-letter topic: retrying bytes that can never decode only
burns delivery attempts; forwarding them (with the reason) and acknowledging
keeps them for an operator, exactly where a message that exhausted its
retries ends up.
"""

from __future__ import annotations

import json
from typing import Any

from shared import events
from shared.config import Settings
from shared.errors import MalformedEventError
from shared.events import MALFORMED_ATTRIBUTE
from shared.gcp.clients import publisher_client, topic_path

MAX_REASON_CHARS = 1000
PUBLISH_TIMEOUT_S = 30


def request_drift_check(model: str, settings: Settings) -> str:
    """What Cloud Scheduler's tick sends: check ``model`` now (drift, sweep, reconciliation). Returns the message id."""
    return publisher_client().publish(topic_path(settings.topics.drift_checks, settings.project_id),
                                      json.dumps({"model": model}).encode()).result(timeout=PUBLISH_TIMEOUT_S)


def forward_malformed(cloud_event: Any, source_topic: str, function: str, error: Exception, settings: Settings) -> str | None:
    """Publish the message to the dead-letter topic of ``source_topic``; None if the event is not a Pub/Sub message at all."""
    try:
        message = events.decode_pubsub(cloud_event)
    except MalformedEventError:
        return None
    attributes = {
        **message.attributes,
        MALFORMED_ATTRIBUTE: str(error)[:MAX_REASON_CHARS],
        "edgeloop_function": function,
        "edgeloop_source_message_id": message.message_id,
    }
    future = publisher_client().publish(
        topic_path(settings.topics.dead_letter(source_topic), settings.project_id), message.data, **attributes
    )
    return future.result(timeout=PUBLISH_TIMEOUT_S)
