"""Real events through the real local stack reach the functions served by functions-framework."""

import json
import uuid

import firebase_admin
import pytest
import requests
from firebase_admin import credentials, firestore as admin_firestore, storage as admin_storage
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, storage

from edgeloop.localstack.function_logs import log_entries, wait_for_entry
from shared import layout
from shared.digits import load_digits_rgb
from tests.integration.helpers import user_headers as _user_token


class _EmulatorCredential(credentials.Base):
    """firebase-admin needs some credential; against emulators an anonymous one is right."""

    def get_credential(self):
        return AnonymousCredentials()


@pytest.fixture(scope="module")
def firebase_app(local_stack):
    app = firebase_admin.initialize_app(
        _EmulatorCredential(),
        {"projectId": local_stack.project_id, "storageBucket": local_stack.bucket},
        name=f"test-{uuid.uuid4().hex[:6]}",
    )
    yield app
    firebase_admin.delete_app(app)


@pytest.fixture(scope="module", autouse=True)
def digits_registered(local_stack):
    """on_upload accepts images only for a registered model and its labels."""
    db = firestore.Client(project=local_stack.project_id, credentials=AnonymousCredentials())
    db.document(layout.model_doc("digits")).set({"model": "digits", "labels": [str(i) for i in range(10)]}, merge=True)


def _bucket(stack):
    return storage.Client(project=stack.project_id, credentials=AnonymousCredentials()).bucket(stack.bucket)


def test_uploading_an_image_with_google_cloud_storage_delivers_a_gcs_notification_to_on_upload(local_stack):
    digit = load_digits_rgb()[3]
    name = layout.dataset_object("digits", digit.label, f"{uuid.uuid4().hex}.png")
    blob = _bucket(local_stack).blob(name)
    blob.upload_from_string(digit.png(), content_type="image/png")

    entry = wait_for_entry(local_stack, "on_upload", lambda e: e.get("object") == name and e["event"] == "object_ingested")
    assert entry["event"] == "object_ingested"
    assert entry["generation"] == blob.generation
    assert entry["status"] == "accepted"


def test_overwriting_an_object_delivers_a_second_event_for_the_new_generation(local_stack):
    name = layout.upload_object("digits", "user-1", uuid.uuid4().hex, "png")
    blob = _bucket(local_stack).blob(name)
    blob.upload_from_string(load_digits_rgb()[1].png(), content_type="image/png")
    first = blob.generation
    blob.upload_from_string(load_digits_rgb()[2].png(), content_type="image/png")
    assert blob.generation != first
    wait_for_entry(local_stack, "on_upload", lambda e: e.get("object") == name and e["generation"] == blob.generation)
    generations = {e["generation"] for e in log_entries(local_stack, "on_upload") if e.get("object") == name}
    assert generations == {first, blob.generation}


def test_firebase_admin_storage_talks_to_the_same_emulator_unchanged(local_stack, firebase_app):
    name = layout.dataset_object("digits", "7", f"{uuid.uuid4().hex}.png")
    admin_storage.bucket(app=firebase_app).blob(name).upload_from_string(load_digits_rgb()[7].png(), content_type="image/png")
    wait_for_entry(local_stack, "on_upload", lambda e: e.get("object") == name)
    assert _bucket(local_stack).blob(name).exists()


def test_writing_a_feedback_document_fires_the_firestore_trigger_at_on_feedback(local_stack, firebase_app):
    feedback_id = uuid.uuid4().hex
    document = layout.feedback_doc("digits", feedback_id)
    fields = {"uid": "user-1", "model_version": "v1", "predicted_label": "3", "confidence": 0.42, "correct": False}
    admin_firestore.client(app=firebase_app).document(document).set(fields)

    entry = wait_for_entry(local_stack, "on_feedback", lambda e: e.get("document") == document)
    assert entry["event"] == "feedback_handled" and entry["status"] == "counted"


def test_documents_outside_the_trigger_pattern_do_not_fire_it(local_stack):
    db = firestore.Client(project=local_stack.project_id, credentials=AnonymousCredentials())
    marker = uuid.uuid4().hex
    db.document(f"runs/{marker}").set({"reason": "manual"})
    feedback = layout.feedback_doc("digits", marker)
    db.document(feedback).set({"uid": "u", "correct": True})
    wait_for_entry(local_stack, "on_feedback", lambda e: e.get("document") == feedback)
    assert not [e for e in log_entries(local_stack, "on_feedback") if e.get("document") == f"runs/{marker}"]


def test_the_drift_checks_topic_pushes_to_check_drift(local_stack):
    from shared.config import Settings

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(local_stack.project_id, Settings().topics.drift_checks)
    message_id = publisher.publish(topic, json.dumps({"model": "digits"}).encode(), origin="test").result(timeout=10)
    entry = wait_for_entry(local_stack, "check_drift", lambda e: e.get("event_id") == message_id)
    assert entry["event"] == "drift_check_done" and entry["model"] == "digits"


def test_the_retrain_requests_topic_pushes_to_launch_training(local_stack):
    from shared.config import Settings

    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(local_stack.project_id, Settings().topics.retrain_requests)
    message_id = publisher.publish(topic, json.dumps({"model": "digits"}).encode(), origin="test").result(timeout=10)
    entry = wait_for_entry(local_stack, "launch_training", lambda e: e.get("event_id") == message_id)
    assert entry["event"] == "malformed_event" and "cause" in entry["message"]


def test_every_push_subscription_has_a_dead_letter_topic_and_bounded_retries(local_stack):
    from shared.config import Settings

    settings = Settings()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in (settings.topics.storage_events, settings.topics.retrain_requests, settings.topics.drift_checks):
        subscriptions = list(pubsub_v1.PublisherClient().list_topic_subscriptions(
            topic=f"projects/{local_stack.project_id}/topics/{topic}"
        ))
        assert len(subscriptions) == 1, topic
        subscription = subscriber.get_subscription(subscription=subscriptions[0])
        assert subscription.push_config.push_endpoint.startswith("http://127.0.0.1:")
        assert subscription.dead_letter_policy.dead_letter_topic.endswith(f"/topics/{settings.topics.dead_letter(topic)}")
        assert subscription.dead_letter_policy.max_delivery_attempts == settings.delivery.max_delivery_attempts
        dead_letter_subscriptions = list(pubsub_v1.PublisherClient().list_topic_subscriptions(
            topic=subscription.dead_letter_policy.dead_letter_topic
        ))
        assert dead_letter_subscriptions, f"dead letters of {topic} would be dropped: no subscription keeps them"


def test_a_malformed_push_is_acknowledged_and_logged_with_its_reason(local_stack):
    response = requests.post(
        local_stack.url("on_upload") + "/",
        json={"message": {"data": "%%%", "messageId": "bad-1", "attributes": {}}, "subscription": "projects/p/subscriptions/s"},
        timeout=10,
    )
    assert response.status_code == 200
    entry = wait_for_entry(local_stack, "on_upload", lambda e: e.get("event") == "malformed_event" and e.get("event_id") == "bad-1")
    assert "not valid base64" in entry["message"]


def test_firestore_rules_are_loaded_and_enforced_for_end_users(local_stack):
    base = f"{local_stack.url('firestore')}/v1/projects/{local_stack.project_id}/databases/(default)/documents"
    admin = {"Authorization": "Bearer owner"}
    assert requests.patch(f"{base}/models/digits", json={"fields": {"version": {"stringValue": "v1"}}}, headers=admin, timeout=10).ok
    assert requests.get(f"{base}/models/digits", timeout=10).status_code == 403  # anonymous
    assert requests.get(f"{base}/runs/anything", headers=_user_token("user-1", local_stack.project_id), timeout=10).status_code == 403


def test_a_signed_in_user_may_read_the_model_pointer(local_stack):
    base = f"{local_stack.url('firestore')}/v1/projects/{local_stack.project_id}/databases/(default)/documents"
    requests.patch(f"{base}/models/digits", json={"fields": {"version": {"stringValue": "v1"}}}, headers={"Authorization": "Bearer owner"}, timeout=10)
    response = requests.get(f"{base}/models/digits", headers=_user_token("user-1", local_stack.project_id), timeout=10)
    assert response.status_code == 200, response.text
