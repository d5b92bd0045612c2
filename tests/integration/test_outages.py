"""Bursts of events under duplicate, reordered and late delivery, crashed functions and a restarted emulator.

The invariants, checked once everything has been delivered: every distinct
accepted upload is one live, new image document (counted once by the
new-data count), a retrain is asked for once, and nothing is silently lost:
an event a dead function never got is done late by the scheduler's tick
(shared/gcp/reconcile.py), and what Pub/Sub dead-lettered comes back with
``edgeloop dead-letters --replay``.

The storage emulator is restarted with SIGTERM: it keeps metadata on disk but
flushes it every half second, so a SIGKILL could forget an object whose upload
had already succeeded, a loss real Cloud Storage does not have.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import firestore, pubsub_v1
from google.cloud.storage.retry import DEFAULT_RETRY

from edgeloop.localstack import stack as localstack
from edgeloop.localstack.function_logs import log_entries, wait_for_entry
from edgeloop.localstack.gcs_notification import notification_message
from shared import layout
from shared.config import Settings
from shared.digits import load_digits_rgb
from shared.gcp.bus import request_drift_check
from shared.gcp.images import count_new_labelled
from tests.integration.faults import paused
from tests.integration.helpers import bucket, control, db, eventually, fresh_model, image_docs

SETTINGS = Settings()
EDGELOOP = str(Path(sys.executable).parent / "edgeloop")
DIGITS = load_digits_rgb()


def publish_notification(stack, properties: dict) -> None:
    data, attributes = notification_message(properties)
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(publisher.topic_path(stack.project_id, SETTINGS.topics.storage_events), data,
                      **attributes).result(timeout=30)


def upload_once(stack, name: str, content: bytes):
    """Create the object if it does not exist, retrying through outages; a retry that finds it created is done."""
    blob = bucket(stack).blob(name)
    try:
        blob.upload_from_string(content, content_type="image/png", if_generation_match=0,
                                retry=DEFAULT_RETRY.with_deadline(120))
    except gexc.PreconditionFailed:  # an earlier attempt did create it; its response was lost in the outage
        pass
    return bucket(stack).get_blob(name)


def ingested_count(stack, model: str) -> int:
    prefix = f"dataset/{model}/"
    return sum(1 for e in log_entries(stack, "on_upload")
               if e.get("event") == "object_ingested" and str(e.get("object", "")).startswith(prefix))


def assert_each_upload_counted_once(stack, model: str, live: dict[str, int]) -> None:
    """``live``: object name → its live generation. Exactly those are new images; nothing else is."""
    docs = image_docs(stack, model)
    new = {(d["object"], d["generation"]) for d in docs if d["status"] == "new"}
    assert new == set(live.items()), f"{len(new)} new image documents for {len(live)} live uploads"
    assert all(d["status"] == "superseded" for d in docs if (d["object"], d["generation"]) not in new)
    assert count_new_labelled(db(stack), model) == len(live)
    causes = eventually(lambda: [p["cause"] for p in control(stack, model).get("pending") or []],
                        what="the new-data request recorded")
    assert causes == [f"new_data:{model}:after-start"]


def test_a_burst_delivered_twice_out_of_order_and_late_counts_every_upload_once(local_stack):
    model = fresh_model(local_stack, "burst")
    count = SETTINGS.thresholds.new_data_images + 6
    names = [layout.dataset_object(model, d.label, f"{i}.png") for i, d in enumerate(DIGITS[:count])]
    with paused(local_stack, "on_upload"):  # every delivery waits: late, and piling up
        blobs = [upload_once(local_stack, name, DIGITS[i].png()) for i, name in enumerate(names)]
        old = [dict(b._properties) for b in blobs[:4]]
        rewritten = [bucket(local_stack).blob(b.name) for b in blobs[:4]]
        for blob, digit in zip(rewritten, DIGITS[100:104]):  # four objects overwritten by a second generation
            blob.upload_from_string(digit.png(), content_type="image/png")
        live = {b.name: b.generation for b in blobs[4:]} | {b.name: int(b.generation) for b in rewritten}
        # Every notification again, in random order, and the first generations' once more after the second's.
        again = [dict(b._properties) for b in blobs[4:]] + [dict(b._properties) for b in rewritten] + old
        random.Random(7).shuffle(again)
        for properties in again + old:
            publish_notification(local_stack, properties)
    deliveries = count + 4 + len(again) + len(old)
    eventually(lambda: ingested_count(local_stack, model) >= deliveries, 180, f"{deliveries} deliveries handled")
    assert_each_upload_counted_once(local_stack, model, live)


@contextlib.contextmanager
def crashed(stack, function: str):
    """The function's processes SIGKILLed for the block, then started again on the same port."""
    localstack.kill_component(stack.directory, function)
    try:
        yield
    finally:
        stack.pids[function] = localstack.start_component(stack.directory, function, SETTINGS).pids[function]


def test_uploads_whose_function_was_down_are_ingested_by_the_next_scheduler_tick(local_stack):
    model = fresh_model(local_stack, "crash")
    count = SETTINGS.thresholds.new_data_images + 2
    names = [layout.dataset_object(model, DIGITS[i].label, f"{i}.png") for i in range(count)]
    before = [upload_once(local_stack, name, DIGITS[i].png()) for i, name in enumerate(names[:2])]
    eventually(lambda: len(image_docs(local_stack, model)) == 2, 60, "the first two registered")
    with crashed(local_stack, "on_upload"):  # the emulator gives up on pushes to a dead endpoint within seconds
        with ThreadPoolExecutor(4) as pool:
            blobs = list(pool.map(lambda i: upload_once(local_stack, names[i], DIGITS[i].png()), range(2, count)))
        rewritten = []
        for blob, digit in zip(before, DIGITS[200:202]):  # overwritten while nobody listens
            fresh = bucket(local_stack).blob(blob.name)
            fresh.upload_from_string(digit.png(), content_type="image/png")
            rewritten.append(fresh)
        time.sleep(5)
    time.sleep(SETTINGS.thresholds.reconcile_after_s)  # until the tick may take them as lost
    live = {b.name: b.generation for b in blobs + rewritten}
    request_drift_check(model, SETTINGS)  # the scheduler's tick
    eventually(lambda: len([d for d in image_docs(local_stack, model) if d["status"] == "new"]) >= count, 120,
               "every upload registered by the tick")
    assert_each_upload_counted_once(local_stack, model, live)
    superseded = {d["object"] for d in image_docs(local_stack, model) if d["status"] == "superseded"}
    assert superseded == {b.name for b in before}
    entry = wait_for_entry(local_stack, "check_drift", lambda e: e.get("event") == "events_reconciled"
                           and e.get("model") == model)
    assert len(entry["objects"]) == count  # 30 lost uploads and 2 lost overwrites


def test_confirmations_whose_trigger_was_lost_are_applied_by_the_next_scheduler_tick(local_stack):
    model = fresh_model(local_stack, "lostfb")
    captures = [upload_once(local_stack, layout.upload_object(model, "u1", uuid.uuid4().hex, "png"), DIGITS[i].png())
                for i in range(3)]
    eventually(lambda: len(image_docs(local_stack, model)) == 3, 60, "the captures registered")
    with crashed(local_stack, "on_feedback"):  # the Firestore emulator does not retry a trigger it could not deliver
        for blob, digit in zip(captures, DIGITS[:3]):
            wrong = str((int(digit.label) + 1) % 10)
            db(local_stack).document(layout.feedback_doc(model, uuid.uuid4().hex)).set(
                {"uid": "u1", "model_version": "v1", "predicted_label": wrong, "confidence": 0.3, "correct": False,
                 "true_label": digit.label, "capture": blob.name})
        time.sleep(3)
    time.sleep(SETTINGS.thresholds.reconcile_after_s)
    request_drift_check(model, SETTINGS)  # the scheduler's tick
    labelled = eventually(lambda: all(d["labelled"] for d in image_docs(local_stack, model)) and
                          image_docs(local_stack, model), 60, "every capture labelled by the tick")
    assert sorted(d["label"] for d in labelled) == sorted(d.label for d in DIGITS[:3])
    assert {d["confirmed_by"] for d in labelled} == {"u1"}


def test_reports_whose_trigger_was_lost_are_admitted_and_judged_by_the_next_scheduler_tick(local_stack):
    """A poor success rate reported while on_feedback was down still asks for its retrain, each report counted once."""
    model = fresh_model(local_stack, "lostreport")
    count = SETTINGS.thresholds.min_feedback_samples
    reports = [layout.feedback_doc(model, uuid.uuid4().hex) for _ in range(count)]
    with crashed(local_stack, "on_feedback"):
        batch = db(local_stack).batch()
        for i, path in enumerate(reports):  # distinct users, as an honest fleet's; sent_at as the SDKs stamp it
            batch.create(db(local_stack).document(path), {
                "uid": f"user-{i}", "model_version": "v1", "predicted_label": "3", "confidence": 0.4,
                "correct": False, layout.FEEDBACK_SENT_AT: firestore.SERVER_TIMESTAMP})
        batch.commit()
        time.sleep(3)
    assert not any("counted" in (db(local_stack).document(p).get().to_dict() or {}) for p in reports)
    time.sleep(SETTINGS.thresholds.reconcile_after_s)
    request_drift_check(model, SETTINGS)  # the scheduler's tick
    (request,) = eventually(lambda: control(local_stack, model).get("pending"), 60, "the success-rate request")
    assert request["reason"] == "success_rate" and request["evidence"]["total"] == count
    assert all(db(local_stack).document(p).get().get("counted") is True for p in reports)
    entry = wait_for_entry(local_stack, "check_drift", lambda e: e.get("event") == "events_reconciled"
                           and e.get("model") == model)
    assert entry["reports"] == count
    request_drift_check(model, SETTINGS)  # the next tick starts where this one stopped: nothing more to admit
    eventually(lambda: len([e for e in log_entries(local_stack, "check_drift") if e.get("model") == model
                            and e.get("event") == "drift_check_done"]) >= 2, 60, "the second tick")
    reconciled = [e for e in log_entries(local_stack, "check_drift") if e.get("event") == "events_reconciled"
                  and e.get("model") == model]
    assert len(reconciled) == 1
    looked_until = db(local_stack).document(layout.reconcile_doc(model)).get().get("reports_until")
    assert looked_until > max(db(local_stack).document(p).get().get(layout.FEEDBACK_SENT_AT) for p in reports)


def test_messages_whose_deliveries_ran_out_are_replayed_and_malformed_ones_kept(local_stack):
    """What Pub/Sub dead-letters after max_delivery_attempts comes back with `edgeloop dead-letters --replay`."""
    from edgeloop.bench_naive import upload_undelivered

    model = fresh_model(local_stack, "dlq")
    name = layout.dataset_object(model, "4", "late.png")
    # Stored while on_upload's delivery is paused and its notification dropped: as if every delivery had failed.
    upload_undelivered(local_stack, SETTINGS, [(name, DIGITS[4].png())])
    assert not image_docs(local_stack, model)
    blob = bucket(local_stack).get_blob(name)
    data, attributes = notification_message(dict(blob._properties))
    publisher = pubsub_v1.PublisherClient()
    dead_letter = publisher.topic_path(local_stack.project_id, SETTINGS.topics.dead_letter(SETTINGS.topics.storage_events))
    publisher.publish(dead_letter, data, **attributes, CloudPubSubDeadLetterSourceDeliveryCount="5").result(timeout=30)
    publisher.publish(dead_letter, b"{", edgeloop_error="not JSON").result(timeout=30)
    listing = subprocess.run([EDGELOOP, "dead-letters", "--replay", "--dir", local_stack.directory],
                             check=True, capture_output=True, text=True, timeout=120).stdout
    assert "deliveries ran out" in listing and "replayed" in listing and "malformed: not JSON" in listing
    eventually(lambda: image_docs(local_stack, model), 60, "the replayed notification registered the image")
    kept = subprocess.run([EDGELOOP, "dead-letters", "--dir", local_stack.directory],
                          check=True, capture_output=True, text=True, timeout=120).stdout
    assert "malformed: not JSON" in kept and "deliveries ran out" not in kept


def test_the_storage_emulator_restarted_during_a_burst_loses_and_doubles_nothing(local_stack):
    model = fresh_model(local_stack, "restart")
    count = SETTINGS.thresholds.new_data_images + 10
    names = [layout.dataset_object(model, DIGITS[i].label, f"{uuid.uuid4().hex[:8]}.png") for i in range(count)]
    with ThreadPoolExecutor(4) as pool:
        uploads = [pool.submit(upload_once, local_stack, name, DIGITS[i].png()) for i, name in enumerate(names)]
        time.sleep(1.0)  # the burst is under way
        localstack.kill_component(local_stack.directory, "storage", crash=False)  # a restart, not a crash: see below
        time.sleep(2.0)  # uploads fail and back off meanwhile
        local_stack.pids["storage"] = localstack.start_component(local_stack.directory, "storage", SETTINGS).pids["storage"]
        blobs = [future.result(timeout=180) for future in uploads]
    live = {b.name: b.generation for b in blobs}
    assert len(live) == count
    eventually(lambda: len([d for d in image_docs(local_stack, model) if d["status"] == "new"]) >= count, 120,
               "every upload registered")
    assert_each_upload_counted_once(local_stack, model, live)


def test_two_generations_handled_at_once_or_newest_first_leave_only_the_newest_counted(local_stack):
    """Versioned buckets keep old generations readable, so a late first generation must not count as well."""
    from functions import main as functions
    from tests.integration.test_faults import storage_event

    model = fresh_model(local_stack, "race")
    pairs = []
    with paused(local_stack, "on_upload"):
        for i in range(8):
            name = layout.dataset_object(model, "5", f"{i}.png")
            first = upload_once(local_stack, name, DIGITS[5].png())
            second = bucket(local_stack).blob(name)
            second.upload_from_string(DIGITS[15].png(), content_type="image/png")
            pairs.append((first, second))
        with ThreadPoolExecutor(8) as pool:  # half with both generations at the same time, half newest first
            list(pool.map(lambda blob: functions.on_upload(storage_event(blob)), [b for pair in pairs[:4] for b in pair]))
        for first, second in pairs[4:]:
            functions.on_upload(storage_event(second))
            functions.on_upload(storage_event(first))
        counted = {(d["object"], d["generation"]) for d in image_docs(local_stack, model) if d["status"] == "new"}
        assert counted == {(second.name, second.generation) for _, second in pairs}
    eventually(lambda: ingested_count(local_stack, model) >= 16, 120, "the stack's own deliveries handled")
    counted = {(d["object"], d["generation"]) for d in image_docs(local_stack, model) if d["status"] == "new"}
    assert counted == {(second.name, second.generation) for _, second in pairs}
