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

Storage: no Storage rules emulator runs here (the Firebase one downloads its
runtime at start), so storage.rules is parsed and its conditions evaluated by a
small interpreter of the subset the file uses, against ``STORAGE_OBJECTS``:
every prefix (dataset/, uploads/, models/ and each artifact under it,
quarantine/, unmentioned paths) × the three principals × get/list/create/update/delete.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests

from shared.config import Settings
from shared.firestore_values import encode_fields
from tests.integration.helpers import ADMIN, user_headers as user_token

RULES = Path(__file__).resolve().parents[2] / "infra" / "firebase"
# A model of its own: the session's stack is shared, and this module seeds control documents (a training lock).
MODEL = f"rules-{uuid.uuid4().hex[:6]}"
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

    def request(self, principal: str, operation: str, path: str, fields: dict | None = None,
                document_id: str | None = None) -> requests.Response:
        headers = self.headers(principal)
        if operation == "get":
            return requests.get(f"{self.base}/{path}", headers=headers, timeout=10)
        if operation == "list":
            collection = path.rsplit("/", 1)[0]
            return requests.get(f"{self.base}/{collection}", headers=headers, timeout=10)
        if operation == "create":
            collection, _ = path.rsplit("/", 1)
            return requests.post(
                f"{self.base}/{collection}", params={"documentId": document_id or uuid.uuid4().hex},
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
    db.seed(path, fields)  # a fixed document (no {id}) is replaced whole
    return path


# (path template, seeded fields, principals allowed per operation). "owner" is
# the user the document belongs to (uid == alice), "other" any other signed-in
# user. A template without {id} names one fixed document (seeded fresh per test).
SIGNED_IN = {"other", "owner"}
PATHS = {
    # What clients poll: readable by any signed-in user, written by the trainer and functions only.
    "model pointer": ("models/{id}", {"version": "v1"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    "version": ("models/{model}/versions/{id}", {"stage": "production"}, {"get": SIGNED_IN, "list": SIGNED_IN}),
    # A user's own prediction outcome: create only.
    "feedback": ("models/{model}/feedback/{id}", _feedback(OWNER), {"create": {"owner"}}),
    # Server-only documents the product writes (shared/layout.py, shared/gcp_*.py, trainer_job/).
    "image": ("models/{model}/images/{id}", {"status": "new", "object": "uploads/m/alice/x.png", "uid": OWNER}, {}),
    "object head": ("models/{model}/objects/{id}", {"object": "uploads/m/alice/x.png", "generation": 2}, {}),
    "confirmation": ("models/{model}/confirmations/{id}", {"object": "uploads/m/alice/x.png", "true_label": "3", "uid": OWNER}, {}),
    "feedback user": ("models/{model}/feedback_users/{id}", {"model_version": "v1", "uid": OWNER, "admitted": []}, {}),
    "training lock": ("models/{model}/control/training", {"active_run": None, "paused": False}, {}),
    "trainer config": ("models/{model}/control/trainer", {"augment": {"low_light": 0.65}}, {}),
    "training control (any id)": ("models/{model}/control/{id}", {"locked": True}, {}),
    "drift report": ("models/{model}/drift_reports/{id}", {"drifted": False}, {}),
    "run": ("runs/{id}", {"reason": "manual", "model": "digits", "uid": OWNER}, {}),
    "quarantine record": ("quarantine/{id}", {"object": "uploads/m/alice/x.png", "reason": "not_an_image", "uid": OWNER}, {}),
    # Paths the rules do not mention: denied by the catch-all.
    "counter shard": ("models/{model}/counters/{id}", {"count": 3}, {}),
    "version subcollection": ("models/{model}/versions/v1/gate/{id}", {"passed": True}, {}),
    "feedback subcollection": ("models/{model}/feedback/f1/notes/{id}", {"uid": OWNER}, {}),
    "pointer subcollection": ("models/{model}/secrets/{id}", {"uid": OWNER}, {}),
    "run subcollection": ("runs/r1/stages/{id}", {"uid": OWNER}, {}),
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


def _product_document_paths() -> dict[str, str]:
    """Every Firestore document path the product builds: each ``*_doc``/``*_collection`` of
    shared/layout.py (a collection as one of its documents), plus the collections named
    outside it (quarantine records, runs)."""
    import inspect

    from shared import layout
    from shared.gcp import images, ingest

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


@pytest.mark.parametrize("collection", ["feedback", "images", "confirmations", "versions", "control", "drift_reports"])
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
    fields = _feedback(OWNER, {"true_label": "3", "correct": True, "capture": capture.format(model=MODEL, id=prediction)})
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
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER), document_id=document_id)
    assert response.status_code == (200 if allowed else 403), f"{document_id}: {response.status_code} {response.text}"


def test_one_report_per_prediction_a_second_write_under_the_same_id_is_refused(db):
    prediction = uuid.uuid4().hex
    assert db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER), document_id=prediction).status_code == 200
    again = db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER, {"correct": True}), document_id=prediction)
    assert again.status_code in (403, 409), again.text  # create-only: no overwrite of a report, however it is sent
    overwrite = db.request("owner", "update", f"models/{MODEL}/feedback/{prediction}", _feedback(OWNER, {"correct": True}))
    assert overwrite.status_code == 403


@pytest.mark.parametrize("field, value", [
    ("counted", True), ("received_at", "2026-01-01T00:00:00Z"), ("weight", 100),
])
def test_a_client_cannot_write_what_on_feedback_decides(db, field, value):
    response = db.request("owner", "create", f"models/{MODEL}/feedback/x", _feedback(OWNER, {field: value}))
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
                assert operations == "get" and condition.startswith("request.auth != null && ")
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


# --- Storage rules, evaluated ----------------------------------------------------------
#
# A small interpreter of the subset of the rules language storage.rules uses
# (&&, ||, !, ==, !=, <=, >, *, null/true/false, string.matches, map.keys().hasOnly):
# a statement it cannot translate fails the test instead of being guessed.

class _RulesString(str):
    def matches(self, pattern: str) -> bool:
        return re.fullmatch(pattern, self) is not None


class _RulesList(list):
    def hasOnly(self, allowed) -> bool:  # noqa: N802 - the rules language's name
        return set(self) <= set(allowed)

    def hasAll(self, required) -> bool:  # noqa: N802
        return set(required) <= set(self)


class _RulesMap(dict):
    def keys(self):
        return _RulesList(super().keys())


class _Namespace:
    def __init__(self, **fields):
        self.__dict__.update(fields)


_RULES_OPERATIONS = {"read": {"get", "list"}, "write": {"create", "update", "delete"}}
_TRANSLATABLE = re.compile(r"^[\w\s.()=!<>&|*'\[\],+-]*$")


def _python(condition: str) -> str:
    strings: list[str] = []
    text = re.sub(r"'[^']*'", lambda m: strings.append(m.group(0)) or f"__s{len(strings) - 1}__", condition)
    assert _TRANSLATABLE.match(text), f"storage.rules uses syntax this interpreter does not know: {condition}"
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    text = re.sub(r"\bnull\b", "None", text)
    text = re.sub(r"\btrue\b", "True", text)
    text = re.sub(r"\bfalse\b", "False", text)
    return re.sub(r"__s(\d+)__", lambda m: strings[int(m.group(1))], text)


def _match_pattern(match_path: str) -> re.Pattern:
    pattern = ""
    for segment in match_path.strip("/").split("/"):
        wildcard = re.fullmatch(r"\{(\w+)(=\*\*)?\}", segment)
        if wildcard and wildcard.group(2):
            pattern += f"/(?P<{wildcard.group(1)}>.*)"
        elif wildcard:
            pattern += f"/(?P<{wildcard.group(1)}>[^/]+)"
        else:
            pattern += "/" + re.escape(segment)
    return re.compile(pattern)


def storage_allows(rules: dict, principal: str, operation: str, name: str, resource: dict | None = None) -> bool:
    """Would storage.rules grant ``operation`` on object ``name`` to ``principal``? (Any matching allow grants.)"""
    auth = None if principal == "anonymous" else _Namespace(uid=OWNER if principal == "owner" else OTHER)
    request_resource = None
    if operation in ("create", "update"):
        fields = dict(VALID_UPLOAD, **(resource or {}))
        metadata = fields["metadata"]
        request_resource = _Namespace(
            size=fields["size"], contentType=_RulesString(fields["contentType"]),
            metadata=None if metadata is None else _RulesMap(metadata),
        )
    request = _Namespace(auth=auth, resource=request_resource)
    for match_path, statements in rules.items():
        found = _match_pattern(match_path).fullmatch(f"/b/{BUCKET}/o/{name}")
        if not found:
            continue
        variables = {key: _RulesString(value) for key, value in found.groupdict().items()}
        for operations, condition in statements:
            granted = set()
            for op in operations.split(","):
                granted |= _RULES_OPERATIONS.get(op, {op})
            if operation in granted and eval(_python(condition), {"__builtins__": {}}, {"request": request, **variables}):  # noqa: S307
                return True
    return False


BUCKET = "edgeloop-data"
STORAGE_MODEL = "digits"
VALID_UPLOAD = {"size": 2048, "contentType": "image/png", "metadata": {"label": "3", "predicted_label": "5", "confidence": "0.4", "model_version": "v1"}}

# Every kind of object in the bucket (shared/layout.py) and paths the rules do not mention:
# object name template -> principals allowed per operation. The owner of an upload is alice.
STORAGE_OBJECTS = {
    "dataset image": ("dataset/{model}/3/digit-0001.png", {}),
    "upload": ("uploads/{model}/alice/0b4c8e.png", {"create": {"owner"}}),
    "upload, jpeg": ("uploads/{model}/alice/0b4c8e.jpg", {"create": {"owner"}}),
    "model file": ("models/{model}/v1/model.tflite", {"get": SIGNED_IN}),
    "model signature": ("models/{model}/v1/model.tflite.sig", {"get": SIGNED_IN}),
    "dataset manifest": ("models/{model}/v1/manifest.json", {}),
    "other model artifact": ("models/{model}/v1/notes.txt", {}),
    "quarantined upload": ("quarantine/uploads/{model}/alice/0b4c8e.png", {}),
    "quarantined dataset image": ("quarantine/dataset/{model}/3/digit-0001.png", {}),
    # Not mentioned by the rules: the catch-all denies.
    "upload one folder too deep": ("uploads/{model}/alice/sub/0b4c8e.png", {}),
    "upload without a model": ("uploads/alice/0b4c8e.png", {}),
    "model file one folder too deep": ("models/{model}/v1/x/model.tflite", {}),
    "unknown prefix": ("manifests/{model}/v1.json", {}),
    "bucket root": ("0b4c8e.png", {}),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("kind", sorted(STORAGE_OBJECTS))
def test_every_storage_path_allows_exactly_what_the_rules_promise(storage_rules, kind, principal, operation):
    template, allowed = STORAGE_OBJECTS[kind]
    name = template.format(model=STORAGE_MODEL)
    expected = principal in allowed.get(operation, set())
    assert storage_allows(storage_rules, principal, operation, name) is expected, f"{principal} {operation} {name}"


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


@pytest.mark.parametrize(
    "case, name, resource",
    [
        ("a gif", "uploads/{model}/alice/0b4c8e.gif", {"contentType": "image/gif"}),
        ("a name starting with a dot", "uploads/{model}/alice/.png", {}),
        ("an empty file", "uploads/{model}/alice/0b4c8e.png", {"size": 0}),
        ("one byte over the limit", "uploads/{model}/alice/0b4c8e.png", {"size": 5 * 1024 * 1024 + 1}),
        ("not an image content type", "uploads/{model}/alice/0b4c8e.png", {"contentType": "text/html"}),
        ("an unexpected metadata key", "uploads/{model}/alice/0b4c8e.png", {"metadata": {"label": "3", "is_admin": "true"}}),
        ("into the curated dataset", "dataset/{model}/3/0b4c8e.png", {}),
        ("over a published model", "models/{model}/v1/model.tflite", {"contentType": "application/octet-stream"}),
        ("into quarantine", "quarantine/uploads/{model}/alice/0b4c8e.png", {}),
    ],
)
def test_the_owner_cannot_upload_anything_but_a_well_formed_image_of_their_own(storage_rules, case, name, resource):
    assert not storage_allows(storage_rules, "owner", "create", name.format(model=STORAGE_MODEL), resource), case


def test_the_largest_allowed_upload_without_metadata_is_accepted(storage_rules):
    name = f"uploads/{STORAGE_MODEL}/alice/0b4c8e.png"
    assert storage_allows(storage_rules, "owner", "create", name, {"size": 5 * 1024 * 1024, "metadata": None})
    assert storage_allows(storage_rules, "owner", "create", name, {"metadata": {}})
