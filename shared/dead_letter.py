"""Adapter: a malformed Pub/Sub message goes straight to its topic's dead-letter topic.

Retrying bytes that can never decode only burns delivery attempts; forwarding
them (with the reason) and acknowledging keeps them for an operator, exactly
where a message that exhausted its retries ends up.
"""

from __future__ import annotations

from typing import Any

from shared import events
from shared.config import Settings
from shared.errors import MalformedEventError
from shared.gcp_clients import publisher_client, topic_path

MAX_REASON_CHARS = 1000
MALFORMED_ATTRIBUTE = "edgeloop_error"  # the reason a handler refused the message (gcp_dead_letters keeps these)


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
    return future.result(timeout=30)
