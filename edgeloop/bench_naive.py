"""Benchmark baseline: the naive ingest handler (edgeloop/naive/main.py) on a running local stack.

It is served by functions-framework as the product's functions are and fed by a Pub/Sub push subscription
with the stack's delivery settings; the bench publishes the storage notifications of objects already in the
bucket (duplicates included, as GCS's at-least-once delivery sends them) and times them until the sharded
counter holds exactly one count per distinct object generation.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Sequence

from edgeloop.localstack.state import StackState
from shared.config import Settings

HANDLER_SOURCE = Path(__file__).parent / "naive" / "main.py"
TARGET = "naive_ingest"
TOPIC = "bench-naive-events"


def _count(db, counter: str) -> int:
    return sum(int((s.to_dict() or {}).get("count", 0)) for s in db.collection(counter).stream())


def run_naive(state: StackState, settings: Settings, messages: Sequence[tuple[bytes, dict[str, str]]],
              timeout_s: float = 600.0) -> dict[str, Any]:
    """Publish ``messages`` (data, attributes) to the naive handler; its events/s until the count is exact."""
    import requests
    from google.cloud import pubsub_v1
    from google.protobuf.duration_pb2 import Duration

    from edgeloop.localstack.processes import component_environment, free_port, spawn
    from edgeloop.localstack.tools import find_tools
    from edgeloop.naive.main import COUNTER
    from shared.gcp.clients import firestore_client

    distinct = len({(a["objectId"], a["objectGeneration"]) for _, a in messages})
    port = free_port(state.host)
    pid = spawn([str(find_tools().functions_framework), "--source", str(HANDLER_SOURCE), "--target", TARGET,
                 "--signature-type", "cloudevent", "--host", state.host, "--port", str(port)],
                component_environment(state), state.log_file(TARGET))
    url = f"http://{state.host}:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "robots.txt", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the naive handler did not start (log: {state.log_file(TARGET)})") from None
                time.sleep(0.2)
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        topic = publisher.topic_path(state.project_id, TOPIC)
        publisher.create_topic(name=topic)
        delivery = settings.delivery
        subscriber.create_subscription(request={
            "name": subscriber.subscription_path(state.project_id, f"{TOPIC}-to-{TARGET}"), "topic": topic,
            "push_config": {"push_endpoint": url}, "ack_deadline_seconds": delivery.ack_deadline_s,
            "retry_policy": {"minimum_backoff": Duration(seconds=delivery.min_backoff_s),
                             "maximum_backoff": Duration(seconds=delivery.max_backoff_s)}})
        db = firestore_client(settings.project_id)
        started = time.monotonic()
        for future in [publisher.publish(topic, data, **attributes) for data, attributes in messages]:
            future.result(timeout=60)
        count = 0
        while time.monotonic() - started < timeout_s:
            count = _count(db, COUNTER)
            if count >= distinct:
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
        time.sleep(2)  # late redeliveries would show as an over-count
        final = _count(db, COUNTER)
    finally:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return {"events": len(messages), "distinct": distinct, "counted": final, "exact": final == distinct,
            "seconds": seconds, "per_s": distinct / seconds}


def stored_notifications(settings: Settings, prefix: str, duplicate_every: int = 10) -> list[tuple[bytes, dict[str, str]]]:
    """The storage notification of every object under ``prefix``, and again for every ``duplicate_every``-th one."""
    from edgeloop.localstack.gcs_notification import notification_message
    from shared.gcp.clients import storage_client

    blobs = list(storage_client(settings.project_id).list_blobs(settings.bucket, prefix=prefix))
    messages = [notification_message(blob._properties) for blob in blobs]
    return messages + messages[::duplicate_every]
