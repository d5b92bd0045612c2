"""Firebase Auth for a device: sign in through the Auth REST API and keep a fresh ID token.

The SDK never builds a token itself. A device signs in the way the Firebase SDKs do:

* anonymously: ``accounts:signUp`` with no credentials;
* as a registered device: ``accounts:signInWithCustomToken`` with a custom token
  the operator minted for it (``edgeloop.identities.device_token``: firebase-admin,
  claims ``role: device`` and the ``model`` it may write for);
* with an e-mail and password (operators and labellers in tests): ``accounts:signInWithPassword``.

The ID token (an hour) is exchanged for a new one through securetoken's
``grant_type=refresh_token`` before it expires (``refresh_margin_s`` ahead, as the
Firebase SDKs do). ``AuthSession.id_token`` is what ``EdgeloopClient(id_token=...)``
takes; it is thread-safe: concurrent callers wait for one refresh.

Production: ``AuthEndpoints(api_key=<the project's Web API key>)`` talks to
``https://identitytoolkit.googleapis.com`` and ``https://securetoken.googleapis.com``.
The local stack: ``AuthEndpoints.emulator("127.0.0.1:9099")``, the Auth emulator's
``http://HOST:PORT/identitytoolkit.googleapis.com/...`` (any API key is accepted).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

from client_sdk.errors import ClientError, Offline, PermissionDenied

EMULATOR_API_KEY = "fake-api-key"  # the Auth emulator accepts any key


class SignInRejected(PermissionDenied):
    """Firebase Auth refused the credentials or the refresh token (e.g. INVALID_CUSTOM_TOKEN, USER_DISABLED)."""


@dataclass(frozen=True)
class AuthEndpoints:
    api_key: str
    identity_url: str = "https://identitytoolkit.googleapis.com"
    token_url: str = "https://securetoken.googleapis.com"

    @classmethod
    def emulator(cls, host: str, api_key: str = EMULATOR_API_KEY) -> "AuthEndpoints":
        """The Firebase Auth emulator at ``host`` (``FIREBASE_AUTH_EMULATOR_HOST``, e.g. ``127.0.0.1:9099``)."""
        base = host if host.startswith("http") else f"http://{host}"
        return cls(api_key, f"{base}/identitytoolkit.googleapis.com", f"{base}/securetoken.googleapis.com")

    @classmethod
    def from_client_env(cls, env: dict[str, str]) -> "AuthEndpoints":
        """The local stack's Auth emulator from the variables ``edgeloop up`` prints."""
        return cls.emulator(env["FIREBASE_AUTH_EMULATOR_HOST"])

    def accounts_url(self, method: str) -> str:
        return f"{self.identity_url}/v1/accounts:{method}"

    def refresh_url(self) -> str:
        return f"{self.token_url}/v1/token"


def token_claims(id_token: str) -> dict:
    """The claims of an ID token, NOT verified (for display and for choosing paths; the backend verifies)."""
    try:
        payload = id_token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise ClientError(f"not a JWT: {exc}") from None


class AuthSession:
    """A signed-in Firebase user: ``uid``, and ``id_token()`` which refreshes before expiry."""

    def __init__(self, endpoints: AuthEndpoints, *, refresh_margin_s: float = 300.0, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time, http: requests.Session | None = None):
        self.endpoints, self.refresh_margin_s, self.timeout_s, self._clock = endpoints, refresh_margin_s, timeout_s, clock
        self._http = http or requests.Session()
        self._lock = threading.Lock()
        self.uid = ""
        self._id_token = ""
        self._refresh_token = ""
        self._expires_at = 0.0
        self.refreshes = 0  # how many times the ID token was exchanged (for tests and diagnostics)

    # --- sign-in ---------------------------------------------------------------------------

    @classmethod
    def anonymous(cls, endpoints: AuthEndpoints, **options) -> "AuthSession":
        """A new anonymous user (``accounts:signUp``)."""
        session = cls(endpoints, **options)
        session._signed_in(session._post_json("signUp", {"returnSecureToken": True}))
        return session

    @classmethod
    def with_custom_token(cls, endpoints: AuthEndpoints, custom_token: str | bytes, **options) -> "AuthSession":
        """The user a custom token names, with its claims (``accounts:signInWithCustomToken``)."""
        token = custom_token.decode() if isinstance(custom_token, bytes) else custom_token
        session = cls(endpoints, **options)
        session._signed_in(session._post_json("signInWithCustomToken", {"token": token, "returnSecureToken": True}))
        return session

    @classmethod
    def with_password(cls, endpoints: AuthEndpoints, email: str, password: str, **options) -> "AuthSession":
        """An e-mail/password user (``accounts:signInWithPassword``)."""
        session = cls(endpoints, **options)
        session._signed_in(session._post_json(
            "signInWithPassword", {"email": email, "password": password, "returnSecureToken": True}))
        return session

    # --- the token ------------------------------------------------------------------------

    def id_token(self) -> str:
        """A current ID token: refreshed first when it expires within ``refresh_margin_s``.

        If a due refresh fails transiently (``Offline``) while the token is still valid, the
        token is returned and the refresh tried again on the next call.
        """
        with self._lock:
            now = self._clock()
            if now >= self._expires_at - self.refresh_margin_s:
                try:
                    self._refresh(now)
                except Offline:
                    if now >= self._expires_at:
                        raise
            return self._id_token

    @property
    def expires_at(self) -> float:
        return self._expires_at

    def claims(self) -> dict:
        """The current ID token's claims (unverified): ``user_id``, ``firebase.sign_in_provider``, custom claims."""
        return token_claims(self.id_token())

    def _refresh(self, now: float) -> None:
        body = self._post(self.endpoints.refresh_url(),
                          data={"grant_type": "refresh_token", "refresh_token": self._refresh_token})
        self._id_token, self._refresh_token = body["id_token"], body["refresh_token"]
        self._expires_at = now + float(body["expires_in"])
        self.uid = body.get("user_id", self.uid)
        self.refreshes += 1

    # --- HTTP ------------------------------------------------------------------------------

    def _signed_in(self, body: dict) -> None:
        self._id_token, self._refresh_token = body["idToken"], body["refreshToken"]
        # signInWithCustomToken answers without localId: the uid is the token's (as the Firebase SDKs read it).
        self.uid = body.get("localId") or token_claims(self._id_token)["user_id"]
        self._expires_at = self._requested_at + float(body["expiresIn"])

    def _post_json(self, method: str, payload: dict) -> dict:
        return self._post(self.endpoints.accounts_url(method), json=payload)

    def _post(self, url: str, **body) -> dict:
        self._requested_at = self._clock()  # expiry counts from the request, never later than the server's
        try:
            response = self._http.post(url, params={"key": self.endpoints.api_key}, timeout=self.timeout_s, **body)
        except requests.RequestException as exc:
            raise Offline(f"Firebase Auth unreachable: {type(exc).__name__}") from None
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise Offline(f"Firebase Auth answered {response.status_code}")
        try:
            reply = response.json()
        except ValueError:
            raise Offline(f"Firebase Auth answered {response.status_code} without JSON") from None
        if not response.ok:
            error = reply.get("error", {}) if isinstance(reply, dict) else {}
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            raise SignInRejected(f"Firebase Auth refused the request ({response.status_code}): {message}")
        return reply
