"""An app on the official Firebase Web SDK (npm ``firebase``, pinned) works against the local stack, end to end.

tests/web_sdk/app_flow.test.mjs is the app: a registered device signs in with its
custom token, uploads captures (multipart, and resumable above 256 KiB) that
on_upload registers, reports an outcome that on_feedback counts, reads the
pointer and downloads the model (size, sha256 and signature checked), and every
operation the rules matrix (tests/integration/rules_matrix.py) forbids is
refused through the SDK. This test seeds what the app needs, runs it with Node
against the session's stack, and checks afterwards that the refused operations
changed nothing.

Node 20+ and the pinned packages (``npm ci``, run by scripts/bootstrap.sh) are
required: without them the test fails and says what to run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client_sdk.auth import EMULATOR_API_KEY
from edgeloop import identities
from shared import layout
from shared.digits import LABELS
from shared.registry import ModelPointer
from tests.integration.helpers import bucket, db, register_model
from tests.integration.rules_matrix import (
    OPERATIONS,
    OWNER,
    PATHS,
    PRINCIPALS,
    SERVER_TIME,
    STORAGE_OBJECTS,
    VALID_METADATA,
    body_for,
    without_server_time,
)
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "tests" / "web_sdk" / "app_flow.test.mjs"
NODE_TIMEOUT_S = 300
BOOTSTRAP = "run ./scripts/bootstrap.sh (or: make bootstrap), which installs the pinned Node packages with npm ci"


def _node() -> str:
    """The node binary, with the pinned Firebase Web SDK installed; the test fails saying what to run if not."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: install Node.js 20+ and {BOOTSTRAP}", pytrace=False)
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]["firebase"]
    installed = REPO / "node_modules" / "firebase" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != pinned:
        pytest.fail(f"the Firebase Web SDK {pinned} is not installed in node_modules: {BOOTSTRAP}", pytrace=False)
    return node


def _encoded(pixels: np.ndarray, content_type: str = "image/png") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=content_type.removeprefix("image/").upper())
    return out.getvalue()


def _custom_token(uid: str, project: str, claims: dict | None = None) -> str:
    from firebase_admin import auth

    token = auth.create_custom_token(uid, claims, app=identities.admin_app(project))
    return token.decode() if isinstance(token, bytes) else token


def _refusals(stack, digit: np.ndarray) -> tuple[list[dict], dict, dict]:
    """Every forbidden cell of the rules matrix, seeded as test_security_rules seeds it: the cases for the app,
    the seeded documents (path -> fields) and the seeded objects (name -> generation)."""
    model = f"web-rules-{uuid.uuid4().hex[:6]}"  # a model of its own: the matrix seeds control documents
    firestore, objects = db(stack), bucket(stack)
    firestore.document(layout.model_doc(model)).set({"version": "v1"})  # feedback is refused for its uid, not a missing model
    cases, documents, seeded_objects = [], {}, {}
    for kind, (template, fields, allowed) in sorted(PATHS.items()):
        path = template.format(model=model, id=uuid.uuid4().hex)
        documents[path] = without_server_time(fields)
        firestore.document(path).set(documents[path])
        parent = path.rsplit("/", 1)[0]
        for principal in PRINCIPALS:
            for operation in OPERATIONS:
                if principal in allowed.get(operation, set()):
                    continue
                # a create goes to a fresh id, or to the fixed document itself (whose record it is decides)
                document_id = uuid.uuid4().hex if "{id}" in template else path.rsplit("/", 1)[1]
                cases.append({"store": "firestore", "kind": kind, "principal": principal, "operation": operation,
                              "path": path, "collection": parent, "document_id": document_id,
                              "data": body_for(kind, principal, fields)})
    for kind, (template, allowed) in sorted(STORAGE_OBJECTS.items()):
        # registered, so that on_upload keeps a well-formed upload (an update of it must be refused, not a create)
        register_model(stack, f"{model}-{len(seeded_objects)}")
        name = template.format(model=f"{model}-{len(seeded_objects)}")
        blob = objects.blob(name)
        blob.metadata = dict(VALID_METADATA)
        content_type = "image/jpeg" if name.endswith(".jpg") else "image/png"
        blob.upload_from_string(_encoded(digit, content_type), content_type=content_type)
        seeded_objects[name] = blob.generation
        for principal in PRINCIPALS:
            for operation in OPERATIONS:
                if principal in allowed.get(operation, set()):
                    continue
                # a create is tried on a name nobody has written yet
                target = template.format(model=f"{model}-{uuid.uuid4().hex[:6]}") if operation == "create" else name
                cases.append({"store": "storage", "kind": kind, "principal": principal, "operation": operation,
                              "name": target, "folder": target.rsplit("/", 1)[0] if "/" in target else "",
                              "content_type": "image/jpeg" if target.endswith(".jpg") else "image/png",
                              "metadata": VALID_METADATA})
    return cases, documents, seeded_objects


def test_an_app_on_the_firebase_web_sdk_uses_the_stack_and_is_refused_what_the_rules_forbid(
        local_stack, tmp_path, trained_models, signing_key, digits):  # noqa: F811 (fixtures)
    node = _node()
    project = local_stack.project_id

    # The model in production, published as the trainer's publisher does.
    model = f"web-{uuid.uuid4().hex[:8]}"
    data = trained_models["v1"].data
    ref = make_ref(model, "v1", data, signing_key)
    bucket(local_stack).blob(ref.path).upload_from_string(data, content_type="application/octet-stream")
    db(local_stack).document(layout.model_doc(model)).set(
        ModelPointer(model=model, labels=LABELS, production=ref).model_dump(mode="json"))

    # Two captures: a digit (a multipart upload) and a noisy frame over 256 KiB (a resumable upload).
    small, large = tmp_path / "digit.png", tmp_path / "frame.png"
    small.write_bytes(_encoded(digits[0].rgb))
    large.write_bytes(_encoded(np.random.default_rng(0).integers(0, 256, (320, 320, 3), dtype=np.uint8)))
    assert large.stat().st_size > 256 * 1024
    true_label = digits[0].label
    wrong = next(label for label in LABELS if label != true_label)

    # People: a registered device, the rules matrix's owner, a labeller and an operator (roles as custom claims).
    device_id = f"web-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    people = {
        role: {"email": f"{role}-{uuid.uuid4().hex[:8]}@example.com", "password": password}
        for role in ("labeller", "operator")
    }
    for role, person in people.items():
        identities.create_user_with_role(person["email"], person["password"], role, project)

    cases, documents, objects = _refusals(local_stack, digits[0].rgb)
    scenario = {
        "model": model, "version": ref.version, "public_key_pem": signing_key.public_pem,
        "device": {"uid": identities.device_uid(device_id),
                   "custom_token": identities.device_token(device_id, model, project)},
        "captures": [
            {"file": str(small), "predicted_label": wrong, "true_label": true_label, "confidence": 0.31,
             "capture_reason": layout.CaptureReason.LOW_CONFIDENCE.value},
            {"file": str(large), "predicted_label": wrong, "true_label": true_label, "confidence": 0.97,
             "capture_reason": layout.CaptureReason.RANDOM_SAMPLE.value},
        ],
        **people,
        "owner_uid": OWNER, "owner_custom_token": _custom_token(OWNER, project),
        "refused": cases, "server_time": SERVER_TIME,
    }
    scenario_file = tmp_path / "scenario.json"
    scenario_file.write_text(json.dumps(scenario))

    env = {**os.environ, **local_stack.client_env(), "EDGELOOP_WEB_API_KEY": EMULATOR_API_KEY}
    try:
        run = subprocess.run([node, str(APP), str(scenario_file)], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=NODE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node did not finish in {NODE_TIMEOUT_S}s:\n{exc.stdout or ''}\n{exc.stderr or ''}", pytrace=False)
    assert run.returncode == 0, f"node {APP.name} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}"
    assert f"refused: {len(cases)} forbidden operations" in run.stdout, run.stdout

    # What was refused changed nothing: no refused create stored anything, every seeded document and
    # object is as seeded (on_upload takes malformed uploads/ objects away by itself, so those are not checked).
    firestore, objects_now = db(local_stack), bucket(local_stack)
    for path, fields in documents.items():
        assert firestore.document(path).get().to_dict() == fields, path
    for name, generation in objects.items():
        if not name.startswith(f"{layout.UPLOADS_PREFIX}/"):
            blob = objects_now.get_blob(name)
            assert blob is not None and blob.generation == generation and blob.metadata == VALID_METADATA, name
    for case in cases:
        target = f"{case.get('collection')}/{case.get('document_id')}"
        if case["operation"] == "create" and case["store"] == "firestore" and target not in documents:
            assert not firestore.document(target).get().exists, case  # (a seeded one is checked above)
        if case["operation"] == "create" and case["store"] == "storage":
            assert not objects_now.blob(case["name"]).exists(), case
