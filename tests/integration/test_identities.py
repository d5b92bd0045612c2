"""Identities against the stack's Firebase Auth emulator: devices and people sign in for real.

Anonymous and custom-token sign-in through the Auth REST API, refresh through
securetoken, firebase-admin verifying the tokens, custom claims (a registered
device's role and model, operators' and labellers' roles) reaching the security
rules through the Firestore emulator.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from client_sdk.auth import AuthEndpoints, AuthSession, SignInRejected, token_claims
from client_sdk.errors import PermissionDenied
from client_sdk.transport import Endpoints, Transport
from edgeloop import identities
from shared import layout
from tests.forged_tokens import forged_id_token
from tests.integration.helpers import ADMIN, register_model


@pytest.fixture(scope="module")
def auth_endpoints(local_stack):
    return AuthEndpoints.from_client_env(local_stack.client_env())


def _document_url(stack, path: str) -> str:
    return f"{stack.url('firestore')}/v1/projects/{stack.project_id}/databases/(default)/documents/{path}"


def _bearer(session: AuthSession) -> dict:
    return {"Authorization": f"Bearer {session.id_token()}"}


def _create_feedback(stack, session: AuthSession, model: str) -> int:
    """The HTTP status of one well-formed report of ``session``'s user, written as the client SDK writes it."""
    transport = Transport(Endpoints.from_client_env(stack.client_env()), session.id_token)
    report = {"uid": session.uid, "model_version": "v1", "predicted_label": "3", "confidence": 0.5, "correct": True}
    try:
        transport.create_document(layout.feedback_collection(model), uuid.uuid4().hex, report,
                                  server_time=(layout.FEEDBACK_SENT_AT,))
    except PermissionDenied:
        return 403
    return 200


def test_the_auth_emulator_is_a_component_and_its_address_is_for_the_stack_only(local_stack):
    from edgeloop.localstack import stack

    assert "auth" in stack.EMULATORS
    assert {c.name: c.healthy for c in stack.status(local_stack.path)}["auth"]
    assert local_stack.client_env()["FIREBASE_AUTH_EMULATOR_HOST"] == f"{local_stack.host}:{local_stack.ports['auth']}"
    # Only the local stack sets it: no server code or production default mentions it.
    root = Path(__file__).resolve().parents[2]
    for package in ("shared", "functions", "trainer_job"):
        for source in (root / package).rglob("*.py"):
            assert "FIREBASE_AUTH_EMULATOR_HOST" not in source.read_text(), source


def test_an_anonymous_device_signs_in_and_firebase_admin_verifies_its_token(local_stack, auth_endpoints):
    from firebase_admin import auth

    session = AuthSession.anonymous(auth_endpoints)
    claims = auth.verify_id_token(session.id_token(), app=identities.admin_app(local_stack.project_id),
                                  check_revoked=True)
    assert claims["uid"] == session.uid and claims["firebase"]["sign_in_provider"] == "anonymous"


def test_a_registered_device_carries_its_role_and_model_through_a_refresh(local_stack, auth_endpoints):
    device_id = uuid.uuid4().hex[:12]
    token = identities.device_token(device_id, "digits", local_stack.project_id)
    now = [1_000.0]
    session = AuthSession.with_custom_token(auth_endpoints, token, clock=lambda: now[0])
    assert session.uid == identities.device_uid(device_id)
    first = session.id_token()
    assert token_claims(first)["role"] == "device" and token_claims(first)["model"] == "digits"
    now[0] += 3600 - 60  # within the refresh margin: exchanged through securetoken
    second = session.id_token()
    assert session.refreshes == 1
    claims = token_claims(second)
    assert (claims["role"], claims["model"], claims["user_id"]) == ("device", "digits", session.uid)
    assert claims["firebase"]["sign_in_provider"] == "custom"


def test_a_bad_custom_token_and_a_bad_refresh_token_are_refused(local_stack, auth_endpoints):
    with pytest.raises(SignInRejected):
        AuthSession.with_custom_token(auth_endpoints, "not-a-token")
    now = [1_000.0]
    session = AuthSession.anonymous(auth_endpoints, clock=lambda: now[0])
    session._refresh_token = "garbage"
    now[0] += 3600  # expired: the next call must refresh
    with pytest.raises(SignInRejected):
        session.id_token()


def test_a_forged_token_for_a_user_auth_never_made_is_caught_only_with_check_revoked(local_stack):
    from firebase_admin import auth

    app = identities.admin_app(local_stack.project_id)
    forged = forged_id_token(f"ghost-{uuid.uuid4().hex[:6]}", local_stack.project_id)
    assert auth.verify_id_token(forged, app=app)  # unsigned, like every emulator token
    with pytest.raises(auth.UserNotFoundError):
        auth.verify_id_token(forged, app=app, check_revoked=True)


def test_the_firestore_rules_see_a_registered_devices_model_claim(local_stack, auth_endpoints):
    mine, other = f"ids-{uuid.uuid4().hex[:6]}", f"ids-{uuid.uuid4().hex[:6]}"
    for model in (mine, other):
        register_model(local_stack, model)
    device = AuthSession.with_custom_token(
        auth_endpoints, identities.device_token(uuid.uuid4().hex[:12], mine, local_stack.project_id))
    assert _create_feedback(local_stack, device, mine) == 200
    assert _create_feedback(local_stack, device, other) == 403  # registered for another model
    anonymous = AuthSession.anonymous(auth_endpoints)  # no model claim: any registered model
    assert _create_feedback(local_stack, anonymous, other) == 200


def test_operators_and_labellers_get_their_role_as_a_claim_the_rules_check(local_stack, auth_endpoints):
    model = f"ids-{uuid.uuid4().hex[:6]}"
    register_model(local_stack, model)
    run, image = f"runs/ids-{uuid.uuid4().hex[:6]}", layout.image_doc(model, uuid.uuid4().hex[:8])
    for path in (run, image):
        assert requests.patch(_document_url(local_stack, path), headers=ADMIN, timeout=10,
                              json={"fields": {"model": {"stringValue": model}}}).ok
    people = {}
    for role in ("operator", "labeller"):
        email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        identities.create_user_with_role(email, "pass-word-1", role, local_stack.project_id)
        people[role] = AuthSession.with_password(auth_endpoints, email, "pass-word-1")
        assert token_claims(people[role].id_token())["role"] == role
    device = AuthSession.anonymous(auth_endpoints)

    def reads(session, path):
        return requests.get(_document_url(local_stack, path), headers=_bearer(session), timeout=10).status_code

    assert reads(people["operator"], run) == 200 and reads(people["operator"], image) == 200  # operators read all
    assert reads(people["labeller"], image) == 200 and reads(people["labeller"], run) == 403  # labellers: images
    assert reads(device, run) == 403 and reads(device, image) == 403
    for session in people.values():  # nobody but the services writes them
        for path in (run, image):
            write = requests.patch(_document_url(local_stack, path), headers=_bearer(session), timeout=10,
                                   json={"fields": {"model": {"stringValue": "x"}}})
            assert write.status_code == 403


def test_edgeloop_device_register_prints_a_token_the_device_signs_in_with(local_stack, auth_endpoints, monkeypatch):
    from typer.testing import CliRunner

    from edgeloop.cli import app

    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))  # connect() sets it; restored afterwards
    result = CliRunner().invoke(app, ["device", "register", "kiosk-3", "--model", "digits", "--dir", str(local_stack.path)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    claims = token_claims(AuthSession.with_custom_token(auth_endpoints, token).id_token())
    assert (claims["user_id"], claims["role"], claims["model"]) == ("device-kiosk-3", "device", "digits")
