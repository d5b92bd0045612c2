"""infra/firebase/*.rules: what an end user may do, and nothing more.

Firestore: every collection and path, for an anonymous caller, another user and
the owning user, and every operation (get, list, create, update, delete), on the
local Firestore emulator, which enforces firestore.rules (the file Terraform
releases). Users may create their own well-typed feedback, read models and
versions, and nothing else; the functions and the trainer use service accounts,
which bypass the rules (here: the emulator's ``Bearer owner``).

Storage: no Storage rules emulator runs here (the Firebase one downloads its
runtime at start), so storage.rules is checked statically.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests

from client_sdk.firestore_values import encode_fields
from shared.config import Settings
from tests.auth_tokens import ADMIN, user_token

RULES = Path(__file__).resolve().parents[2] / "infra" / "firebase"
MODEL = "digits"
OWNER, OTHER = "alice", "bob"
PRINCIPALS = ("anonymous", "other", "owner")
OPERATIONS = ("get", "list", "create", "update", "delete")


# --- Firestore REST against the emulator -----------------------------------------------

def _document(fields: dict) -> dict:
    return {"fields": encode_fields(fields)}


def _feedback(uid: str, changes: dict | None = None) -> dict:
    fields = {"uid": uid, "model_version": "v1", "predicted_label": "3", "confidence": 0.42, "correct": False}
    fields.update(changes or {})
    return {k: v for k, v in fields.items() if v is not _MISSING}


_MISSING = object()


class Firestore:
    def __init__(self, stack):
        self.base = f"{stack.url('firestore')}/v1/projects/{stack.project_id}/databases/(default)/documents"
        self.project = stack.project_id

    def headers(self, principal: str) -> dict:
        return {"anonymous": {}, "other": user_token(OTHER, self.project), "owner": user_token(OWNER, self.project), "admin": ADMIN}[principal]

    def seed(self, path: str, fields: dict) -> None:
        response = requests.patch(f"{self.base}/{path}", json=_document(fields), headers=ADMIN, timeout=10)
        assert response.ok, response.text

    def exists(self, path: str) -> bool:
        return requests.get(f"{self.base}/{path}", headers=ADMIN, timeout=10).status_code == 200

    def request(self, principal: str, operation: str, path: str, fields: dict | None = None) -> requests.Response:
        headers = self.headers(principal)
        if operation == "get":
            return requests.get(f"{self.base}/{path}", headers=headers, timeout=10)
        if operation == "list":
            collection = path.rsplit("/", 1)[0]
            return requests.get(f"{self.base}/{collection}", headers=headers, timeout=10)
        if operation == "create":
            collection, _ = path.rsplit("/", 1)
            return requests.post(
                f"{self.base}/{collection}", params={"documentId": uuid.uuid4().hex},
                json=_document(fields or {}), headers=headers, timeout=10,
            )
        if operation == "update":
            return requests.patch(
                f"{self.base}/{path}", params={"currentDocument.exists": "true"},
                json=_document(fields or {}), headers=headers, timeout=10,
            )
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
    db.seed(path, fields)
    return path


# (path template, seeded fields, principals allowed per operation). "owner" is
# the user the document belongs to (feedback: uid == alice), "other" any other
# signed-in user.
SIGNED_IN = {"other", "owner"}
PATHS = {
    "model pointer": ("models/{id}", {"version": "v1"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    "version": ("models/{model}/versions/{id}", {"stage": "production"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    "feedback": ("models/{model}/feedback/{id}", _feedback(OWNER), {"create": {"owner"}}),
    "image": ("models/{model}/images/{id}", {"status": "new", "object": "uploads/digits/alice/x.png"}, {}),
    "training control": ("models/{model}/control/{id}", {"locked": True}, {}),
    "drift report": ("models/{model}/drift_reports/{id}", {"drifted": False}, {}),
    "counter shard": ("models/{model}/counters/{id}", {"count": 3}, {}),
    "version subcollection": ("models/{model}/versions/v1/gate/{id}", {"passed": True}, {}),
    "feedback subcollection": ("models/{model}/feedback/f1/notes/{id}", {"uid": OWNER}, {}),
    "run": ("runs/{id}", {"reason": "manual", "model": MODEL}, {}),
    "user profile": ("users/{id}", {"uid": OWNER}, {}),
    "unknown collection": ("anything/{id}", {"x": 1}, {}),
}


def _body_for(kind: str, principal: str, seeded: dict) -> dict:
    """What the caller tries to write: for feedback, a valid document with their own uid
    (the owner), or one claiming the owner's uid (another user, an anonymous caller)."""
    if kind == "feedback":
        return _feedback(OWNER if principal in ("owner", "anonymous", "other") else principal)
    return dict(seeded, extra="written by a client")


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("kind", sorted(PATHS))
def test_every_path_allows_exactly_what_the_rules_promise(db, kind, principal, operation):
    template, fields, allowed = PATHS[kind]
    path = _seeded(db, template, fields)
    response = db.request(principal, operation, path, _body_for(kind, principal, fields))
    expected_allowed = principal in allowed.get(operation, set())
    if expected_allowed:
        assert response.status_code == 200, f"{principal} {operation} {path}: {response.status_code} {response.text}"
    else:
        assert response.status_code == 403, f"{principal} {operation} {path} should be denied: {response.status_code} {response.text}"
        if operation == "delete":
            assert db.exists(path)


def test_another_user_cannot_report_feedback_in_the_owners_name(db):
    response = db.request("other", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER))
    assert response.status_code == 403
    response = db.request("other", "create", f"models/{MODEL}/feedback/x", _feedback(OTHER))
    assert response.status_code == 200, response.text  # but may report in their own


@pytest.mark.parametrize(
    "case, changes",
    [
        ("uid missing", {"uid": _MISSING}),
        ("model_version missing", {"model_version": _MISSING}),
        ("predicted_label missing", {"predicted_label": _MISSING}),
        ("confidence missing", {"confidence": _MISSING}),
        ("correct missing", {"correct": _MISSING}),
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
    ],
)
def test_feedback_must_be_well_typed(db, case, changes):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER, changes))
    assert response.status_code == 403, f"{case}: {response.status_code} {response.text}"


@pytest.mark.parametrize(
    "changes",
    [{}, {"confidence": 0}, {"confidence": 1}, {"confidence": 1.0}, {"true_label": "3", "correct": True}, {"true_label": "5", "correct": False}],
)
def test_well_typed_feedback_of_ones_own_is_accepted(db, changes):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER, changes))
    assert response.status_code == 200, response.text


def test_feedback_for_a_model_that_does_not_exist_is_refused(db):
    response = db.request("owner", "create", "models/no-such-model/feedback/x", _feedback(OWNER))
    assert response.status_code == 403


def test_the_owner_cannot_read_back_or_change_their_own_feedback(db):
    path = _seeded(db, "models/{model}/feedback/{id}", _feedback(OWNER))
    for operation in ("get", "update", "delete"):
        assert db.request("owner", operation, path, _feedback(OWNER, {"correct": True})).status_code == 403, operation


def test_a_signed_in_user_reads_the_pointer_fields_they_poll(db):
    response = db.request("other", "get", f"models/{MODEL}")
    assert response.status_code == 200, response.text
    assert response.json()["fields"]["version"] == {"stringValue": "v1"}


def test_the_emulator_loaded_the_rules_file_terraform_releases():
    from edgeloop.localstack import stack

    assert stack.FIRESTORE_RULES.resolve() == (RULES / "firestore.rules").resolve()


# --- Storage rules (static) ----------------------------------------------------------

def _rules_blocks(text: str) -> dict[str, list[tuple[str, str]]]:
    """Full match path -> [(operations, condition)] for every allow statement of a rules file."""
    text = re.sub(r"//[^\n]*", "", text)
    blocks: dict[str, list[tuple[str, str]]] = {}
    stack: list[str] = []
    kinds: list[str] = []
    position = 0
    token = re.compile(r"match\s+(\S+)\s*\{|service\s+[\w.]+\s*\{|function\s+\w+\([^)]*\)\s*\{|allow\s+([\w, ]+?)\s*:\s*if\s+(.*?);|\{|\}", re.S)
    while True:
        found = token.search(text, position)
        if not found:
            break
        position = found.end()
        whole = found.group(0)
        if whole.startswith("match"):
            stack.append(found.group(1))
            kinds.append("match")
        elif whole.startswith("allow"):
            path = "".join(stack)
            blocks.setdefault(path, []).append((found.group(2).replace(" ", ""), " ".join(found.group(3).split())))
        elif whole == "}":
            if kinds.pop() == "match":
                stack.pop()
        else:  # service, function or a bare block
            kinds.append("other")
    return blocks


@pytest.fixture(scope="module")
def storage_rules():
    return _rules_blocks((RULES / "storage.rules").read_text())


def test_storage_rules_parse_into_the_expected_paths(storage_rules):
    assert set(storage_rules) == {
        "/b/{bucket}/o/uploads/{model}/{uid}/{file}",
        "/b/{bucket}/o/models/{model}/{version}/{file}",
        "/b/{bucket}/o/{allPaths=**}",
    }
    assert (RULES / "storage.rules").read_text().startswith("rules_version = '2';")


def test_users_may_only_create_uploads_under_their_own_uid(storage_rules):
    uploads = dict(storage_rules["/b/{bucket}/o/uploads/{model}/{uid}/{file}"])
    assert set(uploads) == {"create", "read,update,delete"}
    condition = uploads["create"]
    assert "request.auth != null" in condition
    assert "request.auth.uid == uid" in condition
    assert uploads["read,update,delete"] == "false", "users must not read back, overwrite or delete uploads"


def test_only_uploads_are_writable_by_users_and_only_models_readable(storage_rules):
    for path, statements in storage_rules.items():
        for operations, condition in statements:
            grants = condition != "false"
            if not grants:
                continue
            if path.endswith("/uploads/{model}/{uid}/{file}"):
                assert operations == "create"
            elif path.endswith("/models/{model}/{version}/{file}"):
                assert operations == "read" and condition == "request.auth != null"
            else:
                pytest.fail(f"{path} grants {operations} if {condition}")
    assert dict(storage_rules["/b/{bucket}/o/{allPaths=**}"]) == {"read,write": "false"}


def test_upload_limits_agree_with_the_settings_and_the_layout(storage_rules):
    condition = dict(storage_rules["/b/{bucket}/o/uploads/{model}/{uid}/{file}"])["create"]
    size = re.search(r"request\.resource\.size <= ([0-9* ]+)", condition).group(1)
    settings = Settings()
    max_bytes = settings.images.max_bytes if hasattr(settings, "images") else settings.max_image_bytes
    assert eval(size, {"__builtins__": {}}) == max_bytes  # noqa: S307 - digits and '*' only
    assert "request.resource.size > 0" in condition
    assert "request.resource.contentType.matches('image/(jpeg|png)')" in condition
    pattern = re.search(r"file\.matches\('([^']+)'\)", condition).group(1)
    assert re.fullmatch(pattern, "0b4c8e.png") and re.fullmatch(pattern, "capture.jpg")
    assert not re.fullmatch(pattern, "x.gif") and not re.fullmatch(pattern, "../x.png") and not re.fullmatch(pattern, ".png")


def test_upload_metadata_keys_are_the_ones_on_upload_accepts(storage_rules):
    try:
        from shared import validation
    except ImportError:
        pytest.skip("shared/validation.py (on_upload's checks) arrives with issue 4")
    condition = dict(storage_rules["/b/{bucket}/o/uploads/{model}/{uid}/{file}"])["create"]
    keys = re.search(r"metadata\.keys\(\)\.hasOnly\(\[([^\]]*)\]\)", condition).group(1)
    assert {k.strip().strip("'") for k in keys.split(",")} == set(validation.METADATA_KEYS)
