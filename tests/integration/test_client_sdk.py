"""The client SDK against the local stack, acting as a signed-in end user (rules enforced by Firestore).

Models are published the way the publisher will: the signed file uploaded to
``models/{model}/{version}/model.tflite`` and the pointer document written with
admin credentials. Bad publishes (corrupted, truncated, wrongly signed,
contract-violating) are made the same way. Network faults go through a real
TCP link to the emulators that a test can take down or cut mid-transfer.

The SDK speaks Firebase Storage's protocol to the stack's endpoint, which
verifies its ID token and enforces storage.rules (their whole matrix is in
test_security_rules.py); Firestore enforces firestore.rules.
"""

from __future__ import annotations

import io
import time
import uuid

import pytest
import requests
from google.cloud import firestore, storage
from PIL import Image

from client_sdk import (
    Conditions, DownloadPolicy, EdgeloopClient, Endpoints, PermissionDenied, PointerError, RefusalReason, UpdateStatus,
)
from shared import integrity, layout
from shared.config import Client
from shared.digits import LABELS
from shared.registry import ModelPointer, Rollout
from shared.rollout import rollout_bucket
from tests.integration.helpers import bucket, db, eventually, signed_in, user_headers
from tests.integration.netfault import FaultyLink
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)

FAST = Client(backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=5)


# --- publishing (admin, as the trainer's publisher does) -----------------------------------

def publish(stack, model: str, production=None, candidate=None, percent=0.0, stored: dict | None = None) -> None:
    """Upload each ref's bytes (``stored[version]``) and point ``models/{model}`` at them."""
    for ref in (production, candidate):
        if ref is not None and stored and ref.version in stored:
            bucket(stack).blob(ref.path).upload_from_string(stored[ref.version], content_type="application/octet-stream")
    pointer = ModelPointer(model=model, labels=LABELS, production=production, rollout=Rollout(candidate=candidate, percent=percent))
    db(stack).document(layout.model_doc(model)).set(pointer.model_dump(mode="json"))


def fresh_model() -> str:
    return f"client-{uuid.uuid4().hex[:8]}"


def device(stack, tmp_path, model, key, uid="alice", device_id=None, storage_url=None, firestore_url=None, **options):
    endpoints = Endpoints(
        project_id=stack.project_id, bucket=stack.bucket,
        storage_url=storage_url or stack.url("storage"), firestore_url=firestore_url or stack.url("firestore"),
    )
    return EdgeloopClient(
        model, uid=uid, device_id=device_id or f"{uid}-phone", directory=tmp_path / (device_id or uid),
        public_key_pem=key.public_pem, endpoints=endpoints, id_token=signed_in(uid, stack.project_id).id_token,
        settings=options.pop("settings", FAST), seed=0, **options,
    )


def counted(client):
    return (client.transport.stats.document_reads, client.transport.stats.model_bytes)


@pytest.fixture(scope="module")
def published(local_stack, trained_models, signing_key):
    """A model id with v1 in production, and helpers to build refs for it."""
    model = fresh_model()
    v1 = trained_models["v1"].data
    ref = make_ref(model, "v1", v1, signing_key)
    publish(local_stack, model, production=ref, stored={"v1": v1})
    return model, ref


# --- update check ---------------------------------------------------------------------------

def test_an_unchanged_model_costs_one_document_read_and_no_model_bytes(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    client = device(local_stack, tmp_path, model, signing_key)
    assert client.check_for_update().status is UpdateStatus.UPDATED
    assert counted(client) == (1, v1.size)

    assert client.check_for_update().status is UpdateStatus.UNCHANGED
    assert counted(client) == (2, v1.size)

    restarted = device(local_stack, tmp_path, model, signing_key)  # same directory: the app restarted
    assert restarted.active == v1
    assert restarted.check_for_update().status is UpdateStatus.UNCHANGED
    assert counted(restarted) == (1, 0)


def two_versions(trained_models, signing_key):
    """A fresh model with v1 and v2 signed and ready to publish: (model, bytes per version, v1 ref, v2 ref)."""
    model = fresh_model()
    data = {v: trained_models[v].data for v in ("v1", "v2")}
    v1, v2 = (make_ref(model, v, data[v], signing_key) for v in ("v1", "v2"))
    return model, data, v1, v2


def test_a_changed_model_is_downloaded_once_verified_and_swapped_in(local_stack, trained_models, signing_key, tmp_path, digits):
    model, data, v1, v2 = two_versions(trained_models, signing_key)
    publish(local_stack, model, production=v1, stored=data)
    client = device(local_stack, tmp_path, model, signing_key)
    client.check_for_update()
    assert client.classify(digits[-1].rgb).model_version == "v1"

    publish(local_stack, model, production=v2, stored=data)
    reads, received = counted(client)
    result = client.check_for_update()
    assert result.status is UpdateStatus.UPDATED and result.target == v2
    assert counted(client) == (reads + 1, received + v2.size)  # exactly one download of exactly the file
    assert client.active == v2 and client.store.previous() == v1
    predictions = [client.classify(d.rgb) for d in digits[-100:]]
    assert {p.model_version for p in predictions} == {"v2"}
    assert sum(p.label == d.label for p, d in zip(predictions, digits[-100:])) > 70  # chance is 10
    assert client.check_for_update().status is UpdateStatus.UNCHANGED
    assert counted(client) == (reads + 2, received + v2.size)


def _corrupted(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    return bytes(flipped)


BAD_PUBLISHES = {
    # name: (how the stored file and its ref are made, the reason the client must give)
    "corrupted": (lambda m, d, k: (_corrupted(d), make_ref(m, "v2", d, k)), RefusalReason.DIGEST_MISMATCH),
    "truncated": (lambda m, d, k: (d[: len(d) // 2], make_ref(m, "v2", d, k)), RefusalReason.SIZE_MISMATCH),
    "wrong signature": (
        lambda m, d, k: (d, make_ref(m, "v2", d, k, signature=integrity.sign(integrity.generate_private_key_pem(), d))),
        RefusalReason.BAD_SIGNATURE,
    ),
    "labels contradict the pointer": (
        lambda m, d, k: (d, make_ref(m, "v2", d, k, labels=tuple("ABCDEFGHIJ"))), RefusalReason.CONTRACT_VIOLATION,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PUBLISHES))
def test_a_bad_model_is_refused_and_the_old_model_stays_active(local_stack, trained_models, signing_key, tmp_path, digits, case):
    make, reason = BAD_PUBLISHES[case]
    model = fresh_model()
    good = trained_models["v1"].data
    v1 = make_ref(model, "v1", good, signing_key)
    publish(local_stack, model, production=v1, stored={"v1": good})
    client = device(local_stack, tmp_path, model, signing_key)
    client.check_for_update()

    stored, bad_ref = make(model, trained_models["v2"].data, signing_key)
    publish(local_stack, model, production=bad_ref, stored={"v2": stored})
    result = client.check_for_update()
    assert result.status is UpdateStatus.REFUSED and result.detail.startswith(reason.value), result.detail
    assert client.active == v1 and client.classify(digits[0].rgb).model_version == "v1"

    _, received = counted(client)
    again = client.check_for_update()  # the same bad file is not fetched on every poll
    assert again.status is UpdateStatus.REFUSED and "refused before" in again.detail
    assert counted(client)[1] == received
    assert device(local_stack, tmp_path, model, signing_key).active == v1  # and after a restart


def test_a_model_needing_a_newer_sdk_is_not_downloaded(local_stack, published, trained_models, signing_key, tmp_path):
    model, v1 = published
    client = device(local_stack, tmp_path, model, signing_key)
    client.check_for_update()
    data = trained_models["v2"].data
    publish(local_stack, model, production=make_ref(model, "v2", data, signing_key, min_sdk_version=99), stored={"v2": data})
    try:
        _, received = counted(client)
        result = client.check_for_update()
        assert result.status is UpdateStatus.REFUSED and "needs SDK contract 99" in result.detail
        assert counted(client)[1] == received and client.active == v1
    finally:
        publish(local_stack, model, production=v1)


def test_a_malformed_pointer_is_refused_with_a_clear_error_and_changes_nothing(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    client = device(local_stack, tmp_path, model, signing_key)
    client.check_for_update()
    snapshot = db(local_stack).document(layout.model_doc(model)).get().to_dict()
    try:
        db(local_stack).document(layout.model_doc(model)).update({"production.sha256": "not-a-digest", "production.size": -1})
        with pytest.raises(PointerError, match=r"production\.sha256.*production\.size"):
            client.check_for_update()
        assert client.active == v1
    finally:
        db(local_stack).document(layout.model_doc(model)).set(snapshot)


def test_an_interrupted_download_resumes_where_it_stopped(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    link = FaultyLink(local_stack.url("storage"))
    link.cut_next_after = 12_000  # the response is dropped after 12 kB (headers included)
    try:
        client = device(local_stack, tmp_path, model, signing_key, storage_url=link.url)
        result = client.check_for_update()
    finally:
        link.close()
    assert result.status is UpdateStatus.UPDATED and client.active == v1
    assert counted(client)[1] == v1.size  # every byte once: the second request did not start over
    assert link.connections == 2
    (resumed,) = [r for r in link.requests if b"Range: bytes=" in r]
    resumed_from = int(resumed.split(b"Range: bytes=")[1].split(b"-")[0])
    assert 0 < resumed_from < 12_000


def test_a_server_side_rollback_reuses_the_kept_previous_model_without_downloading(local_stack, trained_models, signing_key, tmp_path):
    model, data, v1, v2 = two_versions(trained_models, signing_key)
    publish(local_stack, model, production=v1, stored=data)
    client = device(local_stack, tmp_path, model, signing_key)
    client.check_for_update()
    publish(local_stack, model, production=v2, stored=data)
    client.check_for_update()
    _, received = counted(client)
    publish(local_stack, model, production=v1)
    assert client.check_for_update().status is UpdateStatus.UPDATED
    assert client.active == v1 and counted(client)[1] == received
    assert client.rollback() == v2 and client.active == v2  # and the app can roll back locally too


def test_a_canary_reaches_exactly_the_devices_in_its_rollout_bucket(local_stack, trained_models, signing_key, tmp_path):
    model, data, v1, v2 = two_versions(trained_models, signing_key)
    publish(local_stack, model, production=v1, candidate=v2, percent=30, stored=data)
    fleet = [f"device-{i}" for i in range(200)]
    inside = next(d for d in fleet if rollout_bucket(d, model) < 30)
    outside = next(d for d in fleet if rollout_bucket(d, model) >= 30)
    for device_id, expected in ((inside, v2), (outside, v1)):
        client = device(local_stack, tmp_path, model, signing_key, device_id=device_id)
        client.check_for_update()
        assert client.active == expected, device_id


# --- download policies ------------------------------------------------------------------------

def test_local_policy_uses_the_installed_model_without_asking_the_backend(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    device(local_stack, tmp_path, model, signing_key).check_for_update()
    local = device(local_stack, tmp_path, model, signing_key, policy=DownloadPolicy.LOCAL)
    assert local.ensure_model() == v1 and counted(local) == (0, 0)
    latest = device(local_stack, tmp_path, model, signing_key, policy=DownloadPolicy.LATEST)
    assert latest.ensure_model() == v1 and counted(latest) == (1, 0)


def test_background_update_serves_the_installed_model_now_and_the_new_one_next(local_stack, trained_models, signing_key, tmp_path):
    model, data, v1, v2 = two_versions(trained_models, signing_key)
    publish(local_stack, model, production=v1, stored=data)
    client = device(local_stack, tmp_path, model, signing_key, policy=DownloadPolicy.LOCAL_WITH_BACKGROUND_UPDATE)
    assert client.ensure_model() == v1  # nothing installed: the first call waits
    publish(local_stack, model, production=v2, stored=data)
    assert client.ensure_model() == v1  # returns at once with what is installed
    client.wait_for_background_update(30)
    assert client.last_background_result.status is UpdateStatus.UPDATED and client.active == v2


def test_downloads_wait_for_the_apps_conditions(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    on_wifi = [False]
    client = device(local_stack, tmp_path, model, signing_key, conditions=Conditions(wifi=lambda: on_wifi[0], charging=lambda: True))
    result = client.check_for_update()
    assert result.status is UpdateStatus.DEFERRED and "wifi" in result.detail and counted(client) == (1, 0)
    on_wifi[0] = True
    assert client.check_for_update().status is UpdateStatus.UPDATED and client.active == v1


# --- capture, budgets, offline queue, feedback ------------------------------------------------------

def uploads_of(stack, model: str, uid: str) -> list[storage.Blob]:
    return list(bucket(stack).list_blobs(prefix=f"uploads/{model}/{uid}/"))


def test_captures_respect_the_daily_budget_and_carry_their_prediction(local_stack, published, signing_key, tmp_path, digits):
    model, v1 = published
    settings = FAST.model_copy(update={"capture_sample_rate": 1.0, "daily_capture_count": 2})  # capture everything, 2 a day
    client = device(local_stack, tmp_path, model, signing_key, uid="carol", settings=settings)
    client.ensure_model()
    predictions = [client.classify(d.rgb) for d in digits[:5]]
    assert [p.capture is not None for p in predictions] == [True, True, False, False, False]
    assert client.flush().delivered == 2
    blobs = {b.name: b for b in uploads_of(local_stack, model, "carol")}
    for prediction in predictions[:2]:
        blob = blobs[prediction.capture]
        stored = dict(blob.metadata)
        assert stored.pop("firebaseStorageDownloadTokens")  # Firebase Storage gives every new object one
        assert stored == {"predicted_label": prediction.label, "confidence": f"{prediction.confidence:.6f}",
                          "model_version": "v1", "capture_reason": "random_sample"}
        assert prediction.capture_reason == "random_sample"
        assert blob.content_type == "image/png"
        assert Image.open(io.BytesIO(blob.download_as_bytes())).size == (32, 32)
    restarted = device(local_stack, tmp_path, model, signing_key, uid="carol", settings=settings)
    assert restarted.classify(digits[6].rgb).capture is None  # the budget survived the restart


def test_offline_captures_and_feedback_survive_a_restart_and_become_a_labelled_image(local_stack, published, signing_key, tmp_path, digits):
    model, v1 = published
    settings = FAST.model_copy(update={"capture_sample_rate": 1.0})
    storage_link, firestore_link = FaultyLink(local_stack.url("storage")), FaultyLink(local_stack.url("firestore"))
    try:
        options = dict(uid="dave", settings=settings, storage_url=storage_link.url, firestore_url=firestore_link.url)
        client = device(local_stack, tmp_path, model, signing_key, **options)
        client.ensure_model()
        storage_link.go_down()
        firestore_link.go_down()  # the phone loses its network
        prediction = client.classify(digits[3].rgb)
        true_label = "3" if prediction.label != "3" else "8"  # the user corrects the prediction (any label will do)
        client.report(prediction, true_label=true_label)
        report = client.flush()
        assert (report.delivered, report.waiting) == (0, 2)
        del client  # the app is killed while offline

        storage_link.come_up()
        firestore_link.come_up()
        restarted = device(local_stack, tmp_path, model, signing_key, **options)
        assert len(restarted.outbox.pending()) == 2
        time.sleep(FAST.backoff_max_s)  # the failed item's next attempt time, kept on disk, has come
        report = restarted.flush()
        assert (report.delivered, report.waiting, report.rejected) == (2, 0, 0), report
    finally:
        storage_link.close()
        firestore_link.close()
    assert [b.name for b in uploads_of(local_stack, model, "dave")] == [prediction.capture]
    images = db(local_stack).collection(layout.images_collection(model))

    def labelled():
        docs = [s.to_dict() for s in images.where(filter=firestore.FieldFilter("object", "==", prediction.capture)).stream()]
        return docs if docs and docs[0].get("label") == true_label else None

    (image,) = eventually(labelled, what="on_upload + on_feedback to label the capture")
    assert image["labelled"] is True and image["confirmed_by"] == "dave"
    assert image["capture_reason"] == "random_sample"


def test_a_wrong_prediction_the_user_reports_with_its_input_is_uploaded_as_a_user_report(local_stack, published, signing_key, tmp_path, digits):
    model, v1 = published
    settings = FAST.model_copy(update={"capture_sample_rate": 0.0, "capture_below_confidence": 0.0})  # captures nothing
    client = device(local_stack, tmp_path, model, signing_key, uid="hank", settings=settings)
    client.ensure_model()
    right, wrong = client.classify(digits[1].rgb), client.classify(digits[2].rgb)
    assert right.capture is None and wrong.capture is None
    assert client.report(right, correct=True, image=digits[1].rgb).capture is None  # a right answer is not uploaded
    true_label = "2" if wrong.label != "2" else "7"
    reported = client.report(wrong, true_label=true_label, image=digits[2].rgb)
    assert reported.capture_reason == "user_report" and reported.capture.startswith(f"uploads/{model}/hank/")
    assert client.flush().delivered == 3  # one upload, two reports
    images = db(local_stack).collection(layout.images_collection(model))

    def labelled():
        docs = [s.to_dict() for s in images.where(filter=firestore.FieldFilter("object", "==", reported.capture)).stream()]
        return docs if docs and docs[0].get("label") == true_label else None

    (image,) = eventually(labelled, what="on_upload + on_feedback to label the reported input")
    assert image["capture_reason"] == "user_report" and image["confirmed_by"] == "hank"


# --- security rules, as the device sees them -------------------------------------------------------

def test_a_device_cannot_write_outside_its_own_user(local_stack, published, signing_key, tmp_path):
    model, _ = published
    client = device(local_stack, tmp_path, model, signing_key, uid="erin")
    feedback = {"uid": "erin", "model_version": "v1", "predicted_label": "3", "confidence": 0.4, "correct": False}
    collection = layout.feedback_collection(model)

    def report(document_id: str, values: dict) -> bool:  # as the outbox sends a report: stamped by the server
        return client.transport.create_document(collection, document_id, values, server_time=(layout.FEEDBACK_SENT_AT,))

    assert report(uuid.uuid4().hex, feedback)  # its own: allowed
    with pytest.raises(PermissionDenied):  # without the server's time of the write
        client.transport.create_document(collection, uuid.uuid4().hex, feedback)
    with pytest.raises(PermissionDenied):
        report(uuid.uuid4().hex, {**feedback, "uid": "frank"})
    for capture in (f"uploads/{model}/frank/x.png", f"uploads/other-model/erin/x.png", f"dataset/{model}/3/x.png"):
        with pytest.raises(PermissionDenied):
            report(uuid.uuid4().hex, {**feedback, "true_label": "5", "capture": capture})
    prediction = uuid.uuid4().hex  # a report may label only the capture of its own prediction
    with pytest.raises(PermissionDenied):
        report(uuid.uuid4().hex, {**feedback, "true_label": "5", "capture": f"uploads/{model}/erin/{prediction}.png"})
    assert report(prediction, {**feedback, "true_label": "5", "capture": f"uploads/{model}/erin/{prediction}.png"})
    headers = user_headers("erin", local_stack.project_id)
    hijack = requests.patch(client.transport.endpoints.document_url(layout.model_doc(model)), headers=headers, timeout=10,
                            json={"fields": {"model": {"stringValue": model}}})
    assert hijack.status_code == 403
    assert db(local_stack).document(layout.model_doc(model)).get().to_dict()["production"]["version"] == "v1"


def test_the_sdk_names_every_upload_under_its_own_uid(local_stack, published, signing_key, tmp_path, digits):
    # storage.rules restricts uploads to uploads/{model}/{uid}/ (the stack enforces them, see below);
    # this checks the SDK never asks for anything else.
    model, _ = published
    client = device(local_stack, tmp_path, model, signing_key, uid="gina", settings=FAST.model_copy(update={"capture_sample_rate": 1.0}))
    client.ensure_model()
    captures = [client.classify(d.rgb).capture for d in digits[:3]]
    assert all(c.startswith(f"uploads/{model}/gina/") and layout.parse_object_name(c).uid == "gina" for c in captures)


def test_the_stack_refuses_a_device_upload_the_storage_rules_forbid(local_stack, published, signing_key, tmp_path):
    model, v1 = published
    client = device(local_stack, tmp_path, model, signing_key, uid="hana")
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    metadata = {"label": "3"}
    for name in (f"uploads/{model}/ivan/x.png", f"dataset/{model}/3/x.png", v1.path):
        with pytest.raises(PermissionDenied):
            client.transport.upload(name, png, "image/png", metadata)
    with pytest.raises(PermissionDenied):  # manifest.json names other users' uploads
        client.transport.metadata(f"models/{model}/v1/manifest.json")
    assert client.transport.metadata(v1.path)["size"] == str(v1.size)
    assert client.transport.upload(f"uploads/{model}/hana/x.png", png, "image/png", metadata)["name"] == f"uploads/{model}/hana/x.png"
    with pytest.raises(PermissionDenied):  # created once: no overwrite
        client.transport.upload(f"uploads/{model}/hana/x.png", png, "image/png", metadata)
