"""Cloud Functions entry points: decode the event, hand it to ``shared``, return.

Deployed as 2nd-gen functions (see infra/terraform) and served locally by
functions-framework, one process per function. Raising asks for a retry;
a malformed event is permanent, so it is logged with its reason and acknowledged.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.errors import MalformedEventError
from shared.logs import log


def _acknowledge_malformed(handler: Callable[[CloudEvent], Any]) -> Callable[[CloudEvent], Any]:
    """A malformed event can never succeed: log why and ack instead of retrying forever."""

    @functools.wraps(handler)
    def wrapper(cloud_event: CloudEvent) -> Any:
        try:
            return handler(cloud_event)
        except MalformedEventError as exc:
            log(
                "ERROR",
                "malformed_event",
                str(exc),
                function=handler.__name__,
                event_id=cloud_event.get("id"),
                event_type=cloud_event.get("type"),
            )
            return None

    return wrapper


@functions_framework.cloud_event
@_acknowledge_malformed
def on_upload(cloud_event: CloudEvent) -> None:
    obj = events.decode_storage_event(cloud_event)
    log("INFO", "object_received", f"{obj.event_type} gs://{obj.bucket}/{obj.name}#{obj.generation}",
        function="on_upload", event_id=obj.event_id, object=obj.name, generation=obj.generation,
        size=obj.size, content_type=obj.content_type, metadata=dict(obj.metadata))


@functions_framework.cloud_event
@_acknowledge_malformed
def on_feedback(cloud_event: CloudEvent) -> None:
    doc = events.decode_firestore_event(cloud_event)
    log("INFO", "document_received", f"{doc.change} {doc.document}",
        function="on_feedback", event_id=doc.event_id, document=doc.document, fields=doc.value)


@functions_framework.cloud_event
@_acknowledge_malformed
def check_drift(cloud_event: CloudEvent) -> None:
    message = events.decode_pubsub(cloud_event)
    log("INFO", "message_received", "drift check requested",
        function="check_drift", event_id=message.message_id, attributes=dict(message.attributes))


@functions_framework.cloud_event
@_acknowledge_malformed
def launch_training(cloud_event: CloudEvent) -> None:
    message = events.decode_pubsub(cloud_event)
    log("INFO", "message_received", "retrain requested",
        function="launch_training", event_id=message.message_id, request=message.json())
