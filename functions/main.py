"""Cloud Functions entry points: decode the event, hand it to ``shared``, return.

Deployed as 2nd-gen functions (see infra/terraform) and served locally by
functions-framework, one process per function. Raising asks for a retry
(bounded by the subscription's dead-letter policy). A malformed event is
permanent: it is logged with its reason, a Pub/Sub message is forwarded to its
dead-letter topic, and the event is acknowledged.

Each handler imports its use case where it runs: functions-framework loads
this whole file for every target, so module-level imports would give each
function process every other handler's libraries (scipy, PIL, the Storage and
Pub/Sub clients) too. ``edgeloop bench footprint`` measures what each loads,
and tests/unit/functions/test_footprint.py holds each to its own.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.config import get_settings
from shared.errors import MalformedEventError
from shared.logs import log

flask = functions_framework.flask  # the Flask functions-framework serves with, pinned through it


class _NotACloudEvent(Exception):
    """A request the framework decoded that still cannot be an event; its message is the reason."""


def _acknowledge_malformed(source_topic: str | None = None) -> Callable:
    """A malformed event can never succeed: log why (and dead-letter a Pub/Sub message) instead of retrying."""

    def decorate(handler: Callable[[CloudEvent], Any]) -> Callable[[CloudEvent], Any]:
        @functools.wraps(handler)
        def wrapper(cloud_event: CloudEvent) -> Any:
            if flask.has_request_context():
                problem = events.cloud_event_problem(cloud_event)  # e.g. a structured event whose type is a list
                if problem:
                    raise _NotACloudEvent(problem)  # answered 400 by _not_a_cloud_event, like bytes the framework refused
                flask.g.edgeloop_handling = True  # from here on a failure is the handler's, not the request's
            try:
                return handler(cloud_event)
            except MalformedEventError as exc:
                from shared.gcp.bus import MAX_REASON_CHARS, forward_malformed

                settings = get_settings()
                topic = getattr(settings.topics, source_topic) if source_topic else None
                forwarded = forward_malformed(cloud_event, topic, handler.__name__, exc, settings) if topic else None
                log("ERROR", "malformed_event", str(exc)[:MAX_REASON_CHARS], function=handler.__name__,
                    event_id=cloud_event.get("id"), event_type=cloud_event.get("type"), dead_letter_message_id=forwarded)
                return None

        return wrapper

    return decorate


@functions_framework.errorhandler(Exception)
def _not_a_cloud_event(error: Exception) -> Any:
    """A request functions-framework cannot read as a CloudEvent never reaches a handler: the framework answers
    400, or 500 for a body it cannot even decode (JSON nested past the recursion limit, an over-long integer).
    Answer 400 and log why, as for any malformed event: retrying the same bytes cannot succeed. A handler's own
    failure still answers 500 (and is retried). Explaining the request cannot turn it into a 500 either."""
    if flask.g.get("edgeloop_handling"):
        raise error  # functions-framework's crash handler answers 500
    if flask.request.method != "POST" and getattr(error, "code", None):
        return error  # not an event at all (a health probe's GET /robots.txt): its own 404/405, nothing logged
    try:
        reason = str(error) if isinstance(error, _NotACloudEvent) else events.not_a_cloud_event(
            flask.request.headers, flask.request.get_data(), error)
    except Exception as exc:  # noqa: BLE001 - the last handler must answer; an unexplained request is still not an event
        reason = f"not a CloudEvent: the framework could not read it ({type(error).__name__}; {type(exc).__name__} explaining why)"
    log("ERROR", "malformed_event", reason, function=flask.current_app.name,
        event_id=(flask.request.headers.get("ce-id") or "")[:100] or None,
        event_type=(flask.request.headers.get("ce-type") or "")[:100] or None, dead_letter_message_id=None)
    return reason, 400


@functions_framework.cloud_event
@_acknowledge_malformed("storage_events")
def on_upload(cloud_event: CloudEvent) -> None:
    from shared.gcp.ingest import ingest_object

    obj = events.decode_storage_event(cloud_event)
    outcome = ingest_object(obj, get_settings())
    log("INFO", "object_ingested", f"{outcome.status} gs://{obj.bucket}/{obj.name}#{obj.generation}",
        function="on_upload", event_id=obj.event_id, object=obj.name, generation=obj.generation,
        status=outcome.status, reason=outcome.reason, image_id=outcome.image_id)


@functions_framework.cloud_event
@_acknowledge_malformed()
def on_feedback(cloud_event: CloudEvent) -> None:
    from shared.gcp.feedback import handle_feedback

    doc = events.decode_firestore_event(cloud_event)
    outcome = handle_feedback(doc, get_settings())
    log("INFO", "feedback_handled", f"{outcome.status} {doc.document}", function="on_feedback",
        event_id=doc.event_id, document=doc.document, status=outcome.status, reason=outcome.reason)


@functions_framework.cloud_event
@_acknowledge_malformed("drift_checks")
def check_drift(cloud_event: CloudEvent) -> None:
    from shared.gcp.tick import handle_tick

    message = events.decode_pubsub(cloud_event)
    for check in handle_tick(message.json_or_none(), message.message_id, get_settings()):
        log("INFO", "drift_check_done", check.report.detail, function="check_drift", event_id=message.message_id,
            model=check.model, model_version=check.version, status=check.report.status)


@functions_framework.cloud_event
@_acknowledge_malformed("retrain_requests")
def launch_training(cloud_event: CloudEvent) -> None:
    from shared.gcp.launch import handle_retrain_message

    message = events.decode_pubsub(cloud_event)
    request, outcome = handle_retrain_message(message.json(), message.published_at(), get_settings())
    log("INFO", "retrain_handled", outcome.detail, function="launch_training", model=request.model,
        action=outcome.action, run_id=outcome.run_id, cause=request.cause)
