"""infra/firebase/*.rules: what an end user may do, and nothing more.

Firestore: every collection and path, for an anonymous caller, another user and
the owning user, and every operation (get, list, create, update, delete), on the
local Firestore emulator, which enforces firestore.rules (the file Terraform
releases). Users may create their own well-typed feedback, read models and
versions, and nothing else; the functions and the trainer use service accounts,
which bypass the rules (here: the emulator's ``Bearer owner``).

Every document path the product reads or writes (shared/layout.py, the
``quarantine`` collection of shared/ingest.py, ``runs``) has a row in
``PATHS``; ``test_the_matrix_covers_every_path_the_layout_builds`` fails when
layout grows a path the matrix does not test.

Storage: through the stack's Firebase Storage endpoint (``/v0/b/{bucket}/o…``,
the protocol apps speak), which verifies each request's ID token and decides
with storage.rules, against ``STORAGE_OBJECTS``: every prefix (dataset/,
uploads/, models/ and each artifact under it, quarantine/, unmentioned paths) ×
the three principals × get/list/create/update/delete, plus malformed uploads,
the size limit (a resumable upload), metadata keys, tokens, ranges and
download tokens.

The matrices (``PATHS``, ``STORAGE_OBJECTS``) live in rules_matrix.py: the
Web SDK test (test_web_sdk.py) attempts every forbidden cell of the same
matrices through the official Firebase client.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from shared.config import Settings
from shared.firestore_values import encode_fields
from tests.forged_tokens import forged_id_token
from tests.integration.helpers import ADMIN
from tests.integration.helpers import user_headers as user_token
from tests.integration.rules_matrix import (
    MISSING,
    OPERATIONS,
    OTHER,
    OWNER,
    PATHS,
    PRINCIPALS,
    SERVER_TIME,
    STORAGE_OBJECTS,
    VALID_METADATA,
    body_for,
    device_record,
    feedback,
    histogram,
    without_server_time,
)

RULES = Path(__file__).resolve().parents[2] / "infra" / "firebase"
# A model of its own: the session's stack is shared, and this module seeds control documents (a training lock).
MODEL = f"rules-{uuid.uuid4().hex[:6]}"


# --- Firestore REST against the emulator -----------------------------------------------

def _document(fields: dict) -> dict:
    return {"fields": encode_fields(without_server_time(fields))}


class Firestore:
    def __init__(self, stack):
        self.name = f"projects/{stack.project_id}/databases/(default)/documents"
        self.base = f"{stack.url('firestore')}/v1/{self.name}"
        self.project = stack.project_id

    def headers(self, principal: str) -> dict:
        return {"anonymous": {}, "other": user_token(OTHER, self.project), "owner": user_token(OWNER, self.project), "admin": ADMIN}[principal]

    def seed(self, path: str, fields: dict) -> None:
        response = requests.patch(f"{self.base}/{path}", json=_document(fields), headers=ADMIN, timeout=10)
        assert response.ok, response.text

    def exists(self, path: str) -> bool:
        return requests.get(f"{self.base}/{path}", headers=ADMIN, timeout=10).status_code == 200

    def request(self, principal: str, operation: str, path: str, fields: dict | None = None,
                document_id: str | None = None) -> requests.Response:
        headers = self.headers(principal)
        if operation == "get":
            return requests.get(f"{self.base}/{path}", headers=headers, timeout=10)
        if operation == "list":
            collection = path.rsplit("/", 1)[0]
            return requests.get(f"{self.base}/{collection}", headers=headers, timeout=10)
        if operation == "create":  # as the SDKs create: one write, precondition "does not exist", server times
            collection, _ = path.rsplit("/", 1)
            name = f"{self.name}/{collection}/{document_id or uuid.uuid4().hex}"
            write = {"update": {"name": name, **_document(fields or {})}, "currentDocument": {"exists": False},
                     "updateTransforms": [{"fieldPath": field, "setToServerValue": "REQUEST_TIME"}
                                          for field, value in (fields or {}).items() if value == SERVER_TIME]}
            return requests.post(f"{self.base}:commit", json={"writes": [write]}, headers=headers, timeout=10)
        if operation == "update":  # as the SDKs update: precondition "exists", server times
            write = {"update": {"name": f"{self.name}/{path}", **_document(fields or {})}, "currentDocument": {"exists": True},
                     "updateTransforms": [{"fieldPath": field, "setToServerValue": "REQUEST_TIME"}
                                          for field, value in (fields or {}).items() if value == SERVER_TIME]}
            return requests.post(f"{self.base}:commit", json={"writes": [write]}, headers=headers, timeout=10)
        if operation == "delete":
            return requests.delete(f"{self.base}/{path}", headers=headers, timeout=10)
        raise ValueError(operation)


@pytest.fixture(scope="module")
def db(local_stack):
    firestore = Firestore(local_stack)
    firestore.seed(f"models/{MODEL}", {"version": "v1", "path": f"models/{MODEL}/v1/model.tflite", "sha256": "0" * 64})
    return firestore


def _seeded(db: Firestore, path_template: str, fields: dict) -> str:
    """A fresh document per test, so one test's (wrongly allowed) delete cannot affect another."""
    path = path_template.format(model=MODEL, id=uuid.uuid4().hex)
    db.seed(path, fields)  # a fixed document (no {id}) is replaced whole
    return path


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("kind", sorted(PATHS))
def test_every_path_allows_exactly_what_the_rules_promise(db, kind, principal, operation):
    template, fields, allowed = PATHS[kind]
    path = _seeded(db, template, fields)
    document_id = None
    if operation == "create" and "{id}" not in template:  # a fixed document (a user's own record): create it anew
        requests.delete(f"{db.base}/{path}", headers=ADMIN, timeout=10)
        document_id = path.rsplit("/", 1)[1]
    response = db.request(principal, operation, path, body_for(kind, principal, fields), document_id)
    expected_allowed = principal in allowed.get(operation, set())
    if expected_allowed:
        assert response.status_code == 200, f"{principal} {operation} {path}: {response.status_code} {response.text}"
    else:
        assert response.status_code == 403, f"{principal} {operation} {path} should be denied: {response.status_code} {response.text}"
        if operation == "delete":
            assert db.exists(path)


def test_another_user_cannot_report_feedback_in_the_owners_name(db):
    response = db.request("other", "create", f"models/{MODEL}/feedback/x", feedback(OWNER))
    assert response.status_code == 403
    response = db.request("other", "create", f"models/{MODEL}/feedback/x", feedback(OTHER))
    assert response.status_code == 200, response.text  # but may report in their own


@pytest.mark.parametrize(
    "case, changes",
    [
        ("uid missing", {"uid": MISSING}),
        ("model_version missing", {"model_version": MISSING}),
        ("predicted_label missing", {"predicted_label": MISSING}),
        ("confidence missing", {"confidence": MISSING}),
        ("correct missing", {"correct": MISSING}),
        ("correct not a bool", {"correct": "yes"}),
        ("confidence not a number", {"confidence": "0.9"}),
        ("confidence above 1", {"confidence": 1.5}),
        ("confidence below 0", {"confidence": -0.1}),
        ("model_version not a string", {"model_version": 1}),
        ("model_version empty", {"model_version": ""}),
        ("predicted_label too long", {"predicted_label": "x" * 129}),
        ("unexpected field", {"is_admin": True}),
        ("nested junk", {"blob": {"a": "b"}}),
        ("true_label disagrees with correct", {"true_label": "3", "correct": False}),
        ("true_label not a string", {"true_label": 3}),
        ("sent_at missing", {"sent_at": MISSING}),
        ("sent_at a time the client chose", {"sent_at": "2026-12-01T00:00:00Z"}),
    ],
)
def test_feedback_must_be_well_typed(db, case, changes):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER, changes))
    assert response.status_code == 403, f"{case}: {response.status_code} {response.text}"


@pytest.mark.parametrize(
    "changes",
    [{}, {"confidence": 0}, {"confidence": 1}, {"confidence": 1.0}, {"true_label": "3", "correct": True}, {"true_label": "5", "correct": False}],
)
def test_well_typed_feedback_of_ones_own_is_accepted(db, changes):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER, changes))
    assert response.status_code == 200, response.text


def test_feedback_for_a_model_that_does_not_exist_is_refused(db):
    response = db.request("owner", "create", "models/no-such-model/feedback/x", feedback(OWNER))
    assert response.status_code == 403


def test_the_owner_cannot_read_back_or_change_their_own_feedback(db):
    path = _seeded(db, "models/{model}/feedback/{id}", feedback(OWNER))
    for operation in ("get", "update", "delete"):
        assert db.request("owner", operation, path, feedback(OWNER, {"correct": True})).status_code == 403, operation


@pytest.mark.parametrize(
    "case, changes",
    [
        ("model_version missing", {"model_version": MISSING}),
        ("last_seen missing", {"last_seen": MISSING}),
        ("last_seen a time the client chose", {"last_seen": "2026-12-01T00:00:00Z"}),
        ("unexpected field", {"uid": OWNER}),
        ("predictions not an int", {"predictions": 1.5}),
        ("predictions negative", {"predictions": -1}),
        ("predictions beyond the bound", {"predictions": 10**9 + 1}),
        ("latency negative", {"latency_p50_ms": -0.1}),
        ("latency not a number", {"latency_p95_ms": "fast"}),
        ("device class empty", {"device_class": ""}),
        ("device class too long", {"device_class": "x" * 65}),
        ("device class with other characters", {"device_class": "pixel<script>"}),
        ("sdk version too long", {"sdk_version": "1" * 33}),
        ("histogram with an unknown bucket", {"latency_hist": {**histogram({}), "b20": 1}}),
        ("histogram without a bucket", {"latency_hist": {k: v for k, v in histogram({}).items() if k != "b07"}}),
        ("histogram count not an int", {"latency_hist": {**histogram({}), "b01": "many"}}),
        ("histogram count negative", {"latency_hist": {**histogram({}), "b01": -3}}),
        ("histogram not a map", {"latency_hist": [1, 2, 3]}),
        ("period negative", {"period_s": -1}),
    ],
)
def test_a_device_record_must_be_well_typed(db, case, changes):
    path = f"models/{MODEL}/devices/{OWNER}"
    requests.delete(f"{db.base}/{path}", headers=ADMIN, timeout=10)
    response = db.request("owner", "create", path, device_record(changes), document_id=OWNER)
    assert response.status_code == 403, f"{case}: {response.status_code} {response.text}"


def test_a_user_sets_their_own_device_record_again_and_only_their_own(db):
    path = f"models/{MODEL}/devices/{OWNER}"
    requests.delete(f"{db.base}/{path}", headers=ADMIN, timeout=10)
    assert db.request("owner", "create", path, device_record(), document_id=OWNER).status_code == 200
    newer = device_record({"model_version": "v2", "predictions": 0, "latency_hist": histogram({}),
                           "device_class": "Pixel 7 (arm64)"})
    assert db.request("owner", "update", path, newer).status_code == 200
    stored = requests.get(f"{db.base}/{path}", headers=ADMIN, timeout=10).json()["fields"]
    assert stored["model_version"] == {"stringValue": "v2"} and "timestampValue" in stored["last_seen"]
    # Another user can neither create nor overwrite it, nor set a record for a model that does not exist.
    assert db.request("other", "update", path, device_record()).status_code == 403
    assert db.request("other", "create", f"models/{MODEL}/devices/{OWNER}x", device_record(),
                      document_id=f"{OWNER}x").status_code == 403
    assert db.request("owner", "create", f"models/no-such-model/devices/{OWNER}", device_record(),
                      document_id=OWNER).status_code == 403


def test_a_signed_in_user_reads_the_pointer_fields_they_poll(db):
    response = db.request("other", "get", f"models/{MODEL}")
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["version"] == {"stringValue": "v1"}


def _product_document_paths() -> dict[str, str]:
    """Every Firestore document path the product builds: each ``*_doc``/``*_collection`` of
    shared/layout.py (a collection as one of its documents), plus the collections named
    outside it (quarantine records, runs)."""
    import inspect

    from shared import layout
    from shared.gcp import images

    paths = {}
    for name, function in inspect.getmembers(layout, inspect.isfunction):
        if function.__module__ != layout.__name__ or not name.endswith(("_doc", "_collection")):
            continue
        arguments = [f"{p}-x" for p in inspect.signature(function).parameters]
        path = function(*arguments)
        paths[name] = path + "/doc-x" if name.endswith("_collection") else path
    paths["images.QUARANTINE_COLLECTION"] = f"{images.QUARANTINE_COLLECTION}/doc-x"
    return paths


def _template_pattern(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{model\}", "[^/]+").replace(r"\{id\}", "[^/]+")
    return re.compile(pattern)


def test_the_matrix_covers_every_path_the_layout_builds():
    paths = _product_document_paths()
    assert {"model_doc", "version_doc", "image_doc", "feedback_doc", "confirmation_doc", "training_control_doc",
            "trainer_config_doc", "drift_reports_collection", "run_doc", "images.QUARANTINE_COLLECTION"} <= set(paths)
    patterns = {kind: _template_pattern(template) for kind, (template, _, _) in PATHS.items()}
    for name, path in paths.items():
        matched = [kind for kind, pattern in patterns.items() if pattern.fullmatch(path)]
        assert matched, f"{name} builds {path}, which no row of PATHS tests"
        assert len(set(matched) - {"training control (any id)", "model pointer"}) <= 1, (name, matched)


@pytest.mark.parametrize("collection", ["feedback", "images", "confirmations", "versions", "control", "drift_reports",
                                        "devices"])
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_collection_group_queries_reach_no_server_only_or_foreign_document(db, collection, principal):
    """A query across every model's subcollection: no rule grants it (no /{path=**}/x match), so it is denied."""
    _seeded(db, f"models/{{model}}/{collection}/{{id}}", {"uid": OWNER})
    parent = db.base
    query = {"structuredQuery": {"from": [{"collectionId": collection, "allDescendants": True}]}}
    response = requests.post(f"{parent}:runQuery", json=query, headers=db.headers(principal), timeout=10)
    assert response.status_code == 403, f"{principal} queried every {collection}: {response.status_code} {response.text[:300]}"


@pytest.mark.parametrize(
    "capture, allowed",
    [
        ("uploads/{model}/alice/{id}.png", True),  # the owner's own capture of this prediction
        ("uploads/{model}/alice/{id}.jpg", True),
        ("uploads/{model}/alice/0b4c8e.png", False),  # another of the owner's captures: one report per capture
        ("uploads/{model}/bob/{id}.png", False),  # labelling another user's upload
        ("uploads/other-model/alice/{id}.png", False),  # an upload of another model
        ("dataset/{model}/3/{id}.png", False),  # the curated dataset
        ("uploads/{model}/alice/../bob/{id}.png", False),  # a path trick
        ("uploads/{model}/alice/{id}.gif", False),
        ("uploads/{model}/alice/{id}", False),
        ("uploads/{model}/alice/", False),
    ],
)
def test_feedback_may_label_only_the_users_own_capture_of_that_prediction(db, capture, allowed):
    prediction = uuid.uuid4().hex
    fields = feedback(OWNER, {"true_label": "3", "correct": True, "capture": capture.format(model=MODEL, id=prediction)})
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", fields, document_id=prediction)
    assert response.status_code == (200 if allowed else 403), f"{capture}: {response.status_code} {response.text}"


@pytest.mark.parametrize("document_id, allowed", [
    ("0b4c8e0b4c8e0b4c8e0b4c8e0b4c8e0b", True),  # a prediction id (client_sdk: uuid4().hex)
    ("pred_1-a", True),
    ("x" * 64, True),
    ("x" * 65, False),  # ids are bounded
    ("a.b", False),
    ("caf\u00e9", False),
])
def test_a_feedback_document_id_has_the_shape_of_a_prediction_id(db, document_id, allowed):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER), document_id=document_id)
    assert response.status_code == (200 if allowed else 403), f"{document_id}: {response.status_code} {response.text}"


def test_one_report_per_prediction_a_second_write_under_the_same_id_is_refused(db):
    prediction = uuid.uuid4().hex
    assert db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER), document_id=prediction).status_code == 200
    again = db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER, {"correct": True}), document_id=prediction)
    assert again.status_code in (403, 409), again.text  # create-only: no overwrite of a report, however it is sent
    overwrite = db.request("owner", "update", f"models/{MODEL}/feedback/{prediction}", feedback(OWNER, {"correct": True}))
    assert overwrite.status_code == 403


@pytest.mark.parametrize("field, value", [
    ("counted", True), ("received_at", "2026-01-01T00:00:00Z"), ("weight", 100),
])
def test_a_client_cannot_write_what_on_feedback_decides(db, field, value):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", feedback(OWNER, {field: value}))
    assert response.status_code == 403, f"{field}: {response.status_code} {response.text}"


def test_nobody_but_the_server_writes_or_reads_the_per_user_counts(db):
    """A user minting their own per-version count document (the matrix row covers reads, updates and deletes)."""
    for principal in ("owner", "other", "anonymous"):
        response = db.request(principal, "create", f"models/{MODEL}/feedback_users/x",
                              {"model_version": "v1", "uid": OWNER, "admitted": [], "last_counted_at": None},
                              document_id=f"v1~{uuid.uuid4().hex}")
        assert response.status_code == 403, (principal, response.text)


def test_the_emulator_loaded_the_rules_file_terraform_releases():
    from edgeloop.localstack import stack

    assert stack.FIRESTORE_RULES.resolve() == (RULES / "firestore.rules").resolve()


# --- Storage, through the stack's Firebase Storage endpoint ------------------------------
#
# Every request below is an app's: Firebase Storage's REST protocol (/v0/b/{bucket}/o…) with
# "Authorization: Firebase <ID token>", served by the local stack in front of its storage emulator
# and decided there by infra/firebase/storage.rules. Objects are seeded with the service path
# (google-cloud-storage, the JSON API), which the rules do not apply to.

IMAGE_BYTES = 2048


def _image(content_type: str = "image/png", size: int = IMAGE_BYTES) -> bytes:
    head = b"\x89PNG\r\n\x1a\n" if content_type == "image/png" else b"\xff\xd8\xff\xe0"
    return (head + bytes(range(256)) * (size // 256 + 1))[:size]


class FirebaseStorage:
    """The stack's Firebase Storage endpoint, as each principal calls it."""

    def __init__(self, stack):
        from tests.integration.helpers import bucket

        self.base = f"{stack.url('storage')}/v0/b/{stack.bucket}/o"
        self.project = stack.project_id
        self.bucket = bucket(stack)

    def headers(self, principal: str) -> dict:
        """An app's header: the ID token of a user signed in through the stack's Auth emulator."""
        from tests.integration.helpers import signed_in

        if principal == "anonymous":
            return {}
        uid = OWNER if principal == "owner" else OTHER
        return {"Authorization": f"Firebase {signed_in(uid, self.project).id_token()}"}

    def url(self, name: str) -> str:
        return f"{self.base}/{quote(name, safe='')}"

    def seed(self, name: str, content_type: str = "image/png") -> None:
        blob = self.bucket.blob(name)
        blob.metadata = dict(VALID_METADATA)
        blob.upload_from_string(_image(content_type), content_type=content_type)

    def exists(self, name: str) -> bool:
        return self.bucket.blob(name).exists()

    def upload(self, principal: str, name: str, data: bytes | None = None, content_type: str | None = None,
               metadata: dict | None = VALID_METADATA) -> requests.Response:
        """An upload as the Web SDK sends it: multipart up to 256 KiB, else a resumable session."""
        content_type = content_type or ("image/jpeg" if name.endswith((".jpg", ".jpeg")) else "image/png")
        data = _image(content_type) if data is None else data
        resource = {"name": name, "contentType": content_type, **({"metadata": metadata} if metadata is not None else {})}
        headers = self.headers(principal)
        if len(data) <= 256 * 1024:
            boundary = uuid.uuid4().hex
            body = b"".join([
                f"--{boundary}\r\nContent-Type: application/json; charset=utf-8\r\n\r\n".encode(), json.dumps(resource).encode(),
                f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(), data, f"\r\n--{boundary}--".encode(),
            ])
            return requests.post(self.base, params={"name": name}, data=body, timeout=30, headers={
                **headers, "X-Goog-Upload-Protocol": "multipart", "Content-Type": f"multipart/related; boundary={boundary}"})
        start = requests.post(self.base, params={"name": name}, json=resource, timeout=30, headers={
            **headers, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)), "X-Goog-Upload-Header-Content-Type": content_type})
        if start.status_code != 200:
            return start
        assert start.headers["X-Goog-Upload-Status"] == "active"
        session, chunk = start.headers["X-Goog-Upload-URL"], 1024 * 1024
        for offset in range(0, len(data), chunk):
            last = offset + chunk >= len(data)
            response = requests.post(session, data=data[offset:offset + chunk], timeout=30, headers={
                **headers, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Offset": str(offset),
                "X-Goog-Upload-Command": "upload, finalize" if last else "upload"})
            if last or response.status_code != 200:
                return response

    def request(self, principal: str, operation: str, name: str) -> requests.Response:
        headers = self.headers(principal)
        if operation == "get":
            return requests.get(self.url(name), headers=headers, timeout=30)
        if operation == "list":
            folder = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
            return requests.get(self.base, params={"prefix": folder, "delimiter": "/"}, headers=headers, timeout=30)
        if operation in ("create", "update"):
            return self.upload(principal, name)
        if operation == "delete":
            return requests.delete(self.url(name), headers=headers, timeout=30)
        raise ValueError(operation)


@pytest.fixture(scope="module")
def storage(local_stack):
    return FirebaseStorage(local_stack)


def _storage_model() -> str:
    """A model of each test's own: uploads are created once, so no two tests may share a name."""
    return f"rules-{uuid.uuid4().hex[:8]}"


def _denied(response: requests.Response, principal: str) -> bool:
    expected = 401 if principal == "anonymous" else 403
    if response.status_code != expected:
        return False
    error = response.json()["error"]
    return error["code"] == expected and error["message"]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("kind", sorted(STORAGE_OBJECTS))
def test_every_storage_path_allows_exactly_what_the_rules_promise(storage, kind, principal, operation):
    template, allowed = STORAGE_OBJECTS[kind]
    name = template.format(model=_storage_model())
    if operation != "create":
        storage.seed(name)
    response = storage.request(principal, operation, name)
    if principal in allowed.get(operation, set()):
        assert response.status_code in (200, 204), f"{principal} {operation} {name}: {response.status_code} {response.text}"
        if operation == "create":
            assert response.json()["name"] == name  # (on_upload may already be taking a malformed upload away)
    else:
        assert _denied(response, principal), f"{principal} {operation} {name} should be denied: {response.status_code} {response.text}"
        if operation == "create":
            assert not storage.exists(name), "a refused upload was stored"
        elif not name.startswith("uploads/"):  # on_upload takes malformed uploads away by itself
            assert storage.exists(name), f"a refused {operation} changed the bucket"


def test_the_storage_matrix_covers_every_object_the_layout_builds():
    from shared import layout

    names = {
        "dataset_object": layout.dataset_object("m", "3", "x.png"),
        "upload_object": layout.upload_object("m", "alice", "0b4c8e", "png"),
        "model_object": layout.model_object("m", "v1"),
        "manifest_object": layout.manifest_object("m", "v1"),
        "signature_object": layout.signature_object("m", "v1"),
        "quarantine_object(upload)": layout.quarantine_object(layout.upload_object("m", "alice", "0b4c8e", "png")),
        "quarantine_object(dataset)": layout.quarantine_object(layout.dataset_object("m", "3", "x.png")),
    }
    prefixes = {layout.DATASET_PREFIX, layout.UPLOADS_PREFIX, layout.MODELS_PREFIX, layout.QUARANTINE_PREFIX}
    assert {name.split("/")[0] for name in names.values()} == prefixes
    shapes = {kind: re.compile(re.sub(r"[^/]+", "[^/]+", template)) for kind, (template, _) in STORAGE_OBJECTS.items()}
    exact = {kind: template.format(model="m") for kind, (template, _) in STORAGE_OBJECTS.items()}
    for builder, name in names.items():
        assert any(shapes[kind].fullmatch(name) and name.split("/")[0] == exact[kind].split("/")[0] for kind in shapes), \
            f"{builder} builds {name}, which no row of STORAGE_OBJECTS tests"
    # each published artifact, by its file name, has a row of its own
    for artifact in (layout.model_object("m", "v1"), layout.manifest_object("m", "v1"), layout.signature_object("m", "v1")):
        assert artifact in exact.values(), artifact


def _max_bytes() -> int:
    settings = Settings()
    return settings.images.max_bytes if hasattr(settings, "images") else settings.max_image_bytes


@pytest.mark.parametrize(
    "case, name, upload",
    [
        ("a gif", "uploads/{model}/alice/0b4c8e.gif", {"content_type": "image/gif"}),
        ("a name starting with a dot", "uploads/{model}/alice/.png", {}),
        ("an empty file", "uploads/{model}/alice/0b4c8e.png", {"data": b""}),
        ("one byte over the limit", "uploads/{model}/alice/0b4c8e.png", {"data": "over"}),
        ("not an image content type", "uploads/{model}/alice/0b4c8e.png", {"content_type": "text/html"}),
        ("an unexpected metadata key", "uploads/{model}/alice/0b4c8e.png", {"metadata": {"label": "3", "is_admin": "true"}}),
        ("an unknown capture reason", "uploads/{model}/alice/0b4c8e.png", {"metadata": {"capture_reason": "because"}}),
        ("into the curated dataset", "dataset/{model}/3/0b4c8e.png", {}),
        ("over a published model", "models/{model}/v1/model.tflite", {"content_type": "application/octet-stream"}),
        ("into quarantine", "quarantine/uploads/{model}/alice/0b4c8e.png", {}),
    ],
)
def test_the_owner_cannot_upload_anything_but_a_well_formed_image_of_their_own(storage, case, name, upload):
    name = name.format(model=_storage_model())
    if upload.get("data") == "over":
        upload = {"data": _image(size=_max_bytes() + 1)}  # a resumable upload, refused at its start
    response = storage.upload("owner", name, **upload)
    assert _denied(response, "owner"), f"{case}: {response.status_code} {response.text}"
    assert not storage.exists(name), case


def test_the_capture_reasons_the_rules_allow_are_the_ones_on_upload_accepts(storage):
    from shared import validation

    for reason in sorted(validation.CAPTURE_REASONS):
        name = f"uploads/{_storage_model()}/alice/0b4c8e.png"
        response = storage.upload("owner", name, metadata={**VALID_METADATA, "capture_reason": reason})
        assert response.status_code == 200, f"{reason}: {response.status_code} {response.text}"


def test_the_largest_allowed_upload_without_metadata_is_accepted(storage):
    name = f"uploads/{_storage_model()}/alice/0b4c8e.png"
    response = storage.upload("owner", name, data=_image(size=_max_bytes()), metadata=None)
    assert response.status_code == 200, response.text
    assert response.headers["X-Goog-Upload-Status"] == "final"  # it went through a resumable session
    assert response.json()["size"] == str(_max_bytes()) and response.json()["downloadTokens"]
    name = f"uploads/{_storage_model()}/alice/0b4c8e.png"
    assert storage.upload("owner", name, metadata={}).status_code == 200


def test_every_metadata_key_on_upload_accepts_is_allowed_and_no_other(storage):
    from shared import validation

    for key in sorted(validation.METADATA_KEYS):
        name = f"uploads/{_storage_model()}/alice/0b4c8e.png"
        value = {"confidence": "0.4", "capture_reason": "random_sample"}.get(key, "3")
        response = storage.upload("owner", name, metadata={key: value})
        assert response.status_code == 200, f"{key}: {response.status_code} {response.text}"
    response = storage.upload("owner", f"uploads/{_storage_model()}/alice/0b4c8e.png", metadata={"uid": "alice"})
    assert _denied(response, "owner")


def test_an_upload_through_firebase_storage_is_registered_by_on_upload(local_stack, storage):
    import io

    from PIL import Image

    from tests.integration.helpers import eventually, image_docs, register_model

    model = _storage_model()
    register_model(local_stack, model)
    name = f"uploads/{model}/alice/0b4c8e.png"
    png = io.BytesIO()
    Image.new("L", (8, 8), 128).save(png, format="PNG")
    response = storage.upload("owner", name, data=png.getvalue())
    assert response.status_code == 200, response.text
    docs = eventually(lambda: image_docs(local_stack, model), 60, f"on_upload registering {name}")
    assert docs[0]["object"] == name


@pytest.mark.parametrize("authorization", ["Firebase not-a-token", "Bearer {token}", "Firebase ", "{token}"])
def test_a_request_without_a_valid_firebase_id_token_is_unauthenticated(storage, authorization):
    token = forged_id_token(OWNER, storage.project)
    name = f"models/{_storage_model()}/v1/model.tflite"
    storage.seed(name, "application/octet-stream")
    response = requests.get(storage.url(name), headers={"Authorization": authorization.format(token=token)}, timeout=30)
    assert response.status_code == 401 and response.json()["error"]["code"] == 401, response.text


def test_a_token_of_another_project_is_unauthenticated(storage):
    """A hand-made token, on purpose: another project's user must not get in."""
    name = f"models/{_storage_model()}/v1/model.tflite"
    storage.seed(name, "application/octet-stream")
    headers = {"Authorization": f"Firebase {forged_id_token(OWNER, 'someone-elses-project')}"}
    assert requests.get(storage.url(name), headers=headers, timeout=30).status_code == 401


def test_a_model_download_honours_ranges_and_its_download_token(storage):
    name = f"models/{_storage_model()}/v1/model.tflite"
    storage.seed(name, "application/octet-stream")
    whole = storage.bucket.blob(name).download_as_bytes()
    owner = storage.headers("owner")
    metadata = requests.get(storage.url(name), headers=owner, timeout=30).json()
    assert metadata["name"] == name and metadata["size"] == str(len(whole)) and metadata["downloadTokens"]
    part = requests.get(storage.url(name), params={"alt": "media"}, headers={**owner, "Range": "bytes=100-"}, timeout=30)
    assert part.status_code == 206 and part.content == whole[100:]
    assert part.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    token = metadata["downloadTokens"].split(",")[0]
    assert requests.get(storage.url(name), params={"alt": "media", "token": token}, timeout=30).content == whole
    assert requests.get(storage.url(name), params={"alt": "media", "token": "guess"}, timeout=30).status_code == 401


def test_the_stack_decides_with_the_rules_file_terraform_releases():
    from edgeloop.localstack import storage_server

    assert storage_server.STORAGE_RULES.resolve() == (RULES / "storage.rules").resolve()
