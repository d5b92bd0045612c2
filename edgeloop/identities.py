"""Operator side of identities: register devices and give people roles, with firebase-admin.

* A registered device signs in with a custom token minted here: its uid and the
  claims ``{"role": "device", "model": M}`` (the model it may write feedback and
  captures for). ``client_sdk.auth.AuthSession.with_custom_token`` exchanges it
  for ID tokens that carry those claims, which the security rules read as
  ``request.auth.token.role`` / ``request.auth.token.model``.
* Operators and labellers are ordinary Firebase users with a custom claim
  ``role`` (``operator`` / ``labeller``) set on their account
  (``auth.set_custom_user_claims``); it appears in their next ID token.

Against the local stack (``FIREBASE_AUTH_EMULATOR_HOST`` set by it) firebase-admin
needs only the project id, and the emulator accepts the unsigned custom tokens
firebase-admin makes there. In production minting signs the token: it needs a
service account key, or (on Google Cloud) credentials allowed to call
``iam.serviceAccounts.signBlob`` for the ``service_account_id`` given here.
"""

from __future__ import annotations

import re

ROLES = ("device", "operator", "labeller")
_APP_NAME = "edgeloop-identities"
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def admin_app(project_id: str, service_account_id: str | None = None):
    """This module's firebase-admin app for ``project_id``, one per Auth emulator (firebase-admin fixes an app's
    emulator address when first used; a process may move to another local stack)."""
    import os

    import firebase_admin

    name = f"{_APP_NAME}-{project_id}-{os.environ.get('FIREBASE_AUTH_EMULATOR_HOST', 'production')}"
    try:
        return firebase_admin.get_app(name)
    except ValueError:
        options = {"projectId": project_id}
        if service_account_id:
            options["serviceAccountId"] = service_account_id
        return firebase_admin.initialize_app(options=options, name=name)


def device_uid(device_id: str) -> str:
    if not _DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"device id must match {_DEVICE_ID.pattern}: {device_id!r}")
    return f"device-{device_id}"


def device_claims(model: str) -> dict:
    return {"role": "device", "model": model}


def device_token(device_id: str, model: str, project_id: str, service_account_id: str | None = None) -> str:
    """A custom token for registered device ``device_id``, allowed to write for ``model`` (uid ``device-<id>``)."""
    from firebase_admin import auth

    token = auth.create_custom_token(device_uid(device_id), device_claims(model),
                                     app=admin_app(project_id, service_account_id))
    return token.decode() if isinstance(token, bytes) else token


def signed_in_device(device_id: str, model: str, project_id: str, endpoints):
    """Registered device ``device_id`` signed in through the Auth REST API: an ``AuthSession`` whose
    ``id_token()`` refreshes before expiry (``endpoints``: ``client_sdk.auth.AuthEndpoints``)."""
    from client_sdk.auth import AuthSession

    return AuthSession.with_custom_token(endpoints, device_token(device_id, model, project_id))


def grant_role(uid: str, role: str, project_id: str) -> None:
    """Set ``role`` as user ``uid``'s custom claim (kept with the account; in its ID tokens from the next refresh)."""
    from firebase_admin import auth

    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}: {role!r}")
    app = admin_app(project_id)
    claims = dict(auth.get_user(uid, app=app).custom_claims or {})
    auth.set_custom_user_claims(uid, {**claims, "role": role}, app=app)


def create_user_with_role(email: str, password: str, role: str, project_id: str) -> str:
    """An e-mail/password user with ``role`` (operators and labellers; the local stack and tests): its uid."""
    from firebase_admin import auth

    user = auth.create_user(email=email, password=password, app=admin_app(project_id))
    grant_role(user.uid, role, project_id)
    return user.uid
