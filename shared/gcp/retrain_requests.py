"""Adapter: retrain requests, published to launch_training's topic, and the triggers that ask once per cause.

Every request goes through ``publish_request``. Every trigger reads the
model's training state, lets a pure rule decide, and publishes only a cause
launch_training has not recorded yet: once a cause is served or queued,
counting again and asking again would change nothing, and every later event
would otherwise publish a duplicate.
"""

from __future__ import annotations

import math
import time
from typing import Any

from shared import launch_rules
from shared.config import Settings
from shared.count_pacing import CountPacer
from shared.gcp import images
from shared.gcp.bus import PUBLISH_TIMEOUT_S
from shared.gcp.clients import firestore_client, publisher_client, topic_path
from shared.gcp.model_registry import load_pointer
from shared.gcp.training_lock import training_state
from shared.logs import log
from shared.retrain import RetrainRequest, is_recorded, new_data_cause, new_data_request
from shared.ttl_cache import TtlCache

_published: TtlCache[bool] = TtlCache(max_entries=1024)  # (project, cause) this instance published
_counts = CountPacer()  # (project, model) → the last new-data count this instance ran, its slack the images to go


def publish_request(request: RetrainRequest, settings: Settings) -> str:
    """Send a retrain request to launch_training; returns the message id."""
    future = publisher_client().publish(
        topic_path(settings.topics.retrain_requests, settings.project_id),
        request.to_message(),
        model=request.model,
        reason=request.reason.value,
    )
    message_id = future.result(timeout=PUBLISH_TIMEOUT_S)
    log("INFO", "retrain_requested", request.cause, model=request.model, reason=request.reason.value,
        evidence=request.evidence, message_id=message_id)
    return message_id


def ask_once(request: RetrainRequest | None, state: dict[str, Any], settings: Settings) -> RetrainRequest | None:
    """Publish ``request`` unless its cause is already recorded; the request published, or None."""
    if request is None or is_recorded(state, request.cause):
        return None
    publish_request(request, settings)
    return request


def new_data(model: str, settings: Settings, state: dict[str, Any] | None = None, *,
             after_upload: bool = False) -> RetrainRequest | None:
    """Ask for a new_data run once enough labelled images arrived since the last run.

    Checked on redeliveries too: an earlier attempt may have died before publishing. The cause is the
    same each time (one per run), and the launcher runs at most one training per cause. Until launch_training
    records it, every upload would count and ask again: a cause this instance published is not counted for
    again for ``caching.published_cause_ttl_s`` (a publish that returned has reached the topic).
    ``after_upload``: called for one labelled image on_upload registered; the training state is read and the
    count runs only when ``shared.count_pacing`` says it may have crossed (``caching.new_data_count_interval_s``;
    a cause already asked for leaves nothing to count until then). Every other caller (a confirmation, the
    scheduler's tick) always counts.
    """
    key = (settings.project_id, model)
    if after_upload and not _counts.should_count(key, settings.caching.new_data_count_interval_s):
        return None  # counted lately, and the images registered since cannot have reached the threshold
    state = training_state(model, settings) if state is None else state
    since_run = state.get("last_run_id")
    cause = new_data_cause(model, since_run)
    if is_recorded(state, cause) or _published.get((settings.project_id, cause)):
        _counts.counted(key, slack=math.inf)  # asked already: nothing to count until the count is old
        return None
    threshold = settings.thresholds.new_data_images
    count = images.count_new_labelled(firestore_client(settings.project_id), model)
    request = new_data_request(model, count, threshold, since_run)
    if request is not None:
        publish_request(request, settings)  # if it fails, the pacer still says count: the retry asks again
        _published.put((settings.project_id, cause), True, settings.caching.published_cause_ttl_s)
    _counts.counted(key, slack=math.inf if request is not None else threshold - count)
    return request


def sweep_pending(model: str, settings: Settings) -> RetrainRequest | None:
    """Publish one request serving everything left pending once the model is free again (scheduled).

    Not while a canary rolls out: the release rules are judging the candidate fix, and a run now would
    replace it before its evidence is in; the causes stay pending until it is promoted or rolled back.
    """
    request = launch_rules.sweep_request(training_state(model, settings), model, time.time())
    if request is None:
        return None
    pointer = load_pointer(model, settings)  # read only when something would launch
    if pointer is not None and pointer.rollout.candidate is not None:
        return None
    publish_request(request, settings)
    return request
