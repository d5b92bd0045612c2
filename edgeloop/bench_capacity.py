"""``edgeloop bench capacity``: count what one upload and one report cost, on a fresh local stack.

The stack is seeded and v1 trained and published (so reports are judged as in production), then its on_upload
and on_feedback processes are stopped and the same handlers (functions/main.py, called as plain functions, as
functions-framework calls them) run here, one event at a time, with this process's clients counting every
operation (edgeloop.opcount): device captures uploaded with their metadata, and reports from distinct users.
A device's update check is counted by ``bench client``'s poll through the client SDK.
"""

from __future__ import annotations

import base64
import statistics
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cloudevents.http import CloudEvent

from edgeloop.capacity import EventCost
from shared import layout

SEED_IMAGES = 400
COUNTED_EVENTS = 50
COUNTED_KEYS = {  # EventCost field → the opcount key it sums
    "firestore_reads": "firestore.reads", "firestore_writes": "firestore.writes",
    "firestore_deletes": "firestore.deletes", "aggregations": "firestore.aggregations",
    "storage_class_a": "storage.class_a", "storage_class_b": "storage.class_b",
    "messages_published": "pubsub.messages",
}


def _event_cost(deltas: list, seconds: list[float]) -> EventCost:
    return EventCost(seconds=statistics.median(seconds),
                     **{field: sum(d[key] for d in deltas) / len(deltas) for field, key in COUNTED_KEYS.items()})


def _count(handler, events: list[CloudEvent], counter) -> EventCost:
    deltas, seconds = [], []
    for event in events:
        before = counter.snapshot()
        start = time.perf_counter()
        handler(event)
        seconds.append(time.perf_counter() - start)
        deltas.append(counter.snapshot() - before)
    return _event_cost(deltas, seconds)


def _upload_events(model: str, settings, count: int) -> tuple[list[CloudEvent], float]:
    """Device captures uploaded with an app's metadata; their notifications as the push subscription delivers them."""
    from edgeloop.localstack.gcs_notification import notification_message
    from shared.digits import load_digits_rgb
    from shared.gcp.clients import storage_client

    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    events, sizes = [], []
    for i, digit in enumerate(load_digits_rgb()[-count:]):
        blob = bucket.blob(layout.upload_object(model, f"capacity-user-{i}", uuid.uuid4().hex, "png"))
        blob.metadata = {"predicted_label": digit.label, "confidence": "0.42", "model_version": "v1",
                         "capture_reason": "random_sample"}
        blob.upload_from_string(digit.png(), content_type="image/png")
        data, attributes = notification_message(blob._properties)
        sizes.append(len(data))
        message = {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": uuid.uuid4().hex,
                   "publishTime": datetime.now(timezone.utc).isoformat()}
        events.append(CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": message["messageId"],
                                  "source": "//pubsub.googleapis.com/bench"},
                                 {"message": message, "subscription": "projects/p/subscriptions/bench"}))
    return events, statistics.mean(sizes)


def measure(state, settings, console, device_dir: Path, model: str = "digits", events: int = COUNTED_EVENTS) -> dict:
    """Per-event operations of on_upload and on_feedback, and the reads of one device update check."""
    from edgeloop import bench_stack
    from edgeloop.localstack.faults import kill_component
    from edgeloop.opcount import counting
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from functions import main
    from shared.tally_buckets import bucket_documents

    seeded = seed_dataset(model, settings, console, train=True, limit=SEED_IMAGES)
    run = wait_for_outcome(seeded.run_id, settings, console)
    if run["status"] != "published":
        raise RuntimeError(f"no v1 to judge reports against: run {run['status']} {run.get('error') or ''}")
    poll = bench_stack.client_poll(model, state, settings, device_dir)
    for name in ("on_upload", "on_feedback"):  # the handlers run here instead, where their clients are counted
        kill_component(state.path, name)
    uploads, notification_bytes = _upload_events(model, settings, events)
    reports = bench_stack.report_events(model, state, settings, events)
    with counting(settings.project_id) as counter:
        upload = _count(main.on_upload, uploads, counter)
        report = _count(main.on_feedback, reports, counter)
    return {"upload": upload, "report": report, "reads_per_poll": poll["unchanged_reads_per_poll"],
            "notification_bytes": notification_bytes, "events": events, "window_s": settings.thresholds.success_window_s,
            "tally_documents": bucket_documents(settings.thresholds.success_window_s, settings.thresholds.tally_bucket_s,
                                                settings.thresholds.tally_shards)}


def markdown(counted: dict) -> str:
    """BENCHMARKS.md's capacity section: the counted costs, then the model's table for the standard loads."""
    from edgeloop.capacity import DEPLOYED, STANDARD_LOADS, Prices, capacity, markdown_table

    prices = Prices()
    rows = [capacity(load, counted["upload"], counted["report"], counted["reads_per_poll"], DEPLOYED,
                     counted["window_s"], counted["notification_bytes"], prices, counted["tally_documents"])
            for load in STANDARD_LOADS]
    per_event = "\n".join(
        f"| {name} | {c.firestore_reads:.1f} | {c.firestore_writes:.1f} | {c.firestore_deletes:.1f} | {c.aggregations:.1f} | "
        f"{c.storage_class_a:.1f} / {c.storage_class_b:.1f} | {c.messages_published:.2f} | {c.seconds * 1000:.0f} ms |"
        for name, c in (("on_upload (a device capture)", counted["upload"]), ("on_feedback (a report)", counted["report"])))
    sizing = ", ".join(f"{name} {s.concurrency} requests at once, {s.vcpu:g} vCPU, {s.memory_gib:g} GiB"
                       for name, s in DEPLOYED.items())
    sources = "\n".join(f"- {source}" for source in prices.sources)
    window_days = counted["window_s"] / 86400
    return f"""## Capacity (`edgeloop bench capacity`)

Operations counted per event on a fresh local stack ({counted['events']} device captures through on_upload's handler,
{counted['events']} reports from distinct users through on_feedback's, v1 in production; edgeloop/opcount.py counts
at the clients), and a device's update check through the client SDK ({counted['reads_per_poll']:.1f} document
reads). Handler time is measured on the emulators on this shared 2-core machine, an overestimate of production's.

| event | Firestore reads | writes | deletes | aggregation queries (count, sum) | Storage class A / B | messages published | handler time (median) |
|---|---|---|---|---|---|---|---|
{per_event}

The model (edgeloop/capacity.py, unit-tested) turns these into the table below, with the deployed sizing ({sizing};
infra/terraform `function_limits`), a 30-day month and the free tiers taken off. Reports are as many as uploads.
An aggregation query is billed one read per 1,000 index entries it scans: on_feedback's success rate is one sum
over the version's tally buckets of the last {window_days:.0f} days (shared/tally_buckets.py: a document per time
bucket and shard, at most {counted['tally_documents']:,} in the window), so its reads per report stay the same at any
report rate (a count over the reports themselves would scan every report of the window on every report).

{markdown_table(rows)}

Prices in USD, read on {prices.read_on}:
{sources}
"""
