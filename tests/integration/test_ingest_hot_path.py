"""on_upload's hot path keeps every property with fewer round trips (issue 21): what an instance keeps between
events (a model's definition for caching.model_definition_ttl_s, the causes it asked for), and what it never keeps
(a model that is not registered yet)."""

from __future__ import annotations

import uuid

from edgeloop.localstack.function_logs import wait_for_entry
from edgeloop.opcount import counting
from shared import layout
from shared.config import Caching, Settings, Thresholds
from shared.digits import LABELS, load_digits_rgb
from shared.gcp import model_settings, retrain_requests
from tests.integration.helpers import bucket, control, db, eventually, fresh_model, image_docs

DIGITS = load_digits_rgb()[:2]


def _ingested(stack, blob) -> dict:
    return wait_for_entry(stack, "on_upload", lambda e: e.get("event") == "object_ingested"
                          and e.get("object") == blob.name and e["generation"] == blob.generation)


def test_a_model_created_after_its_first_upload_is_seen_by_the_next_one_at_once(local_stack):
    model = f"late-model-{uuid.uuid4().hex[:6]}"
    first = bucket(local_stack).blob(layout.dataset_object(model, "1", "a.png"))
    first.upload_from_string(DIGITS[1].png(), content_type="image/png")
    assert _ingested(local_stack, first)["reason"] == "unknown_model"  # not registered: nothing kept of it

    model_settings.create_model(model, LABELS, Settings())
    second = bucket(local_stack).blob(layout.dataset_object(model, "1", "b.png"))
    second.upload_from_string(DIGITS[1].png(), content_type="image/png")
    assert _ingested(local_stack, second)["status"] == "accepted"


def test_a_models_definition_is_kept_for_its_ttl_and_a_change_made_here_is_seen_at_once(local_stack):
    settings = Settings()
    model = f"kept-{uuid.uuid4().hex[:6]}"
    model_settings.create_model(model, ("a", "b"), settings, overrides={"thresholds": {"new_data_images": 5}})
    labels, own = model_settings.definition(model, settings)
    assert labels == {"a", "b"} and own.thresholds.new_data_images == 5

    # Another process changes the override: this instance keeps what it read until the ttl is over ...
    db(local_stack).document(layout.model_settings_doc(model)).set(
        {"overrides": {"thresholds": {"new_data_images": 7}}}, merge=True)
    with counting(local_stack.project_id) as counter:
        assert model_settings.definition(model, settings)[1].thresholds.new_data_images == 5
    assert counter.snapshot()["firestore.reads"] == 0
    # ... a ttl of 0 reads on every event, in one round trip for both documents ...
    with counting(local_stack.project_id) as counter:
        fresh = Settings(caching=Caching(model_definition_ttl_s=0))
        assert model_settings.definition(model, fresh)[1].thresholds.new_data_images == 7
    assert counter.snapshot()["firestore.rpc.BatchGetDocuments"] == 1 and counter.snapshot()["firestore.reads"] == 2
    # ... and a change made through this process is seen by it at once.
    model_settings.create_model(model, ("a", "b"), settings, overrides={"thresholds": {"new_data_images": 9}})
    assert model_settings.definition(model, settings)[1].thresholds.new_data_images == 9
    assert model_settings.definition(f"ghost-{uuid.uuid4().hex[:6]}", settings)[0] is None


def test_a_new_data_cause_this_instance_asked_for_is_neither_counted_nor_asked_again(local_stack):
    model = fresh_model(local_stack, "asked")  # paused: the request stays pending
    image = db(local_stack).document(layout.image_doc(model, "one"))
    image.set({"object": "x", "status": "new", "labelled": True, "label": "1"})
    settings = Settings(thresholds=Thresholds(new_data_images=1))
    with counting(local_stack.project_id) as counter:
        request = retrain_requests.new_data(model, settings)
        assert request is not None and request.cause == f"new_data:{model}:after-start"
        asked = counter.snapshot()
        assert retrain_requests.new_data(model, settings) is None  # before launch_training records it, too
        again = counter.snapshot() - asked
    assert asked["firestore.aggregations"] == 1 and asked["pubsub.messages"] == 1
    assert again["firestore.aggregations"] == 0 and again["pubsub.messages"] == 0
    pending = eventually(lambda: control(local_stack, model).get("pending"), 30, "the request recorded")
    assert [p["cause"] for p in pending] == [request.cause]
    # Once recorded, every instance skips the count (the training state says so), restarted ones included.
    retrain_requests._published.clear()
    with counting(local_stack.project_id) as counter:
        assert retrain_requests.new_data(model, settings) is None
    assert counter.snapshot()["firestore.aggregations"] == 0


def _paced_model(stack, prefix: str) -> tuple[str, Settings]:
    """A model whose new-data threshold is 3, training paused so its requests stay pending; settings whose
    count, once run, is not run again for a long time unless the uploads since could have crossed."""
    model = f"{prefix}-{uuid.uuid4().hex[:6]}"
    model_settings.create_model(model, LABELS, Settings(), overrides={"thresholds": {"new_data_images": 3}})
    db(stack).document(layout.training_control_doc(model)).set({"paused": True}, merge=True)
    settings = Settings(thresholds=Thresholds(new_data_images=3), caching=Caching(new_data_count_interval_s=600))
    return model, settings


def _labelled(stack, model: str, name: str) -> None:
    db(stack).document(layout.image_doc(model, name)).set({"object": name, "status": "new", "labelled": True, "label": "1"})


def test_after_an_upload_the_count_runs_only_when_the_images_since_could_have_crossed(local_stack):
    model, settings = _paced_model(local_stack, "paced")
    aggregations = []
    for image in ("one", "two", "three"):
        _labelled(local_stack, model, image)
        with counting(local_stack.project_id) as counter:
            request = retrain_requests.new_data(model, settings, after_upload=True)
        aggregations.append(counter.snapshot()["firestore.aggregations"])
    assert aggregations == [1, 0, 1]  # the first count, then none until the third image could reach 3
    assert request is not None and request.evidence["new_labelled_images"] == 3


def test_a_crossing_made_by_other_instances_is_asked_for_by_the_next_scheduler_tick(local_stack):
    from shared.gcp import tick

    model, settings = _paced_model(local_stack, "backstop")
    _labelled(local_stack, model, "mine")
    assert retrain_requests.new_data(model, settings, after_upload=True) is None  # counted 1
    _labelled(local_stack, model, "theirs-1")  # registered by other instances: this one does not know
    _labelled(local_stack, model, "theirs-2")
    with counting(local_stack.project_id) as counter:
        assert retrain_requests.new_data(model, settings, after_upload=True) is None  # 1 + 1 < 3: not counted
    assert counter.snapshot()["firestore.aggregations"] == 0
    tick.handle_tick({"model": model}, uuid.uuid4().hex, Settings())
    pending = eventually(lambda: control(local_stack, model).get("pending"), 30, "the tick's request recorded")
    assert [p["cause"] for p in pending] == [f"new_data:{model}:after-start"]


def _stored_event(stack, model: str, name: str):
    """The storage event of an object stored now, as on_upload decodes it from its notification; the stack's own
    on_upload never sees it (uploaded while its delivery is paused), so this process handles it first."""
    from edgeloop.bench_naive import upload_undelivered
    from shared import events
    from tests.integration.test_faults import storage_event

    object_name = layout.dataset_object(model, "1", name)
    upload_undelivered(stack, Settings(), [(object_name, DIGITS[1].png())])
    return events.decode_storage_event(storage_event(bucket(stack).get_blob(object_name)))


def test_a_repeated_notification_of_a_generation_this_instance_registered_costs_no_read_and_no_download(local_stack):
    from shared.gcp.ingest import ingest_object

    model = fresh_model(local_stack, "again")
    event = _stored_event(local_stack, model, f"{uuid.uuid4().hex[:8]}.png")
    with counting(local_stack.project_id) as counter:
        assert ingest_object(event, Settings()).status == "accepted"
        first = counter.snapshot()
        assert ingest_object(event, Settings()).status == "duplicate"
        again = counter.snapshot() - first
    assert first["storage.class_b"] >= 1 and first["firestore.writes"] == 2
    assert again["storage.class_b"] == 0 and again["firestore.reads"] == 0 and again["firestore.writes"] == 0
    # With nothing remembered (another instance, or a memory of 0 s) the image document still says so.
    forgetful = Settings(caching=Caching(registered_generation_ttl_s=0))
    other = _stored_event(local_stack, model, f"{uuid.uuid4().hex[:8]}.png")
    assert [ingest_object(other, forgetful).status for _ in range(2)] == ["accepted", "duplicate"]
    assert len(image_docs(local_stack, model)) == 2


def test_a_generation_whose_handling_failed_after_it_was_registered_is_handled_again(local_stack, monkeypatch):
    from shared.gcp import ingest

    model = fresh_model(local_stack, "failed")
    event = _stored_event(local_stack, model, f"{uuid.uuid4().hex[:8]}.png")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Pub/Sub unreachable")

    monkeypatch.setattr(ingest.retrain_requests, "new_data", unreachable)
    try:
        ingest.ingest_object(event, Settings())
    except ConnectionError:
        pass
    else:
        raise AssertionError("the failure should reach the caller, which asks for a retry")
    monkeypatch.undo()
    with counting(local_stack.project_id) as counter:
        assert ingest.ingest_object(event, Settings()).status == "duplicate"
    assert counter.snapshot()["firestore.reads"] > 0  # not answered from memory: the retry reaches new_data again
