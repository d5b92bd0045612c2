"""AuthSession's expiry and refresh logic, over real HTTP against a small local server.

The server answers the three calls a session makes the way Firebase Auth does
(tests/integration/test_identities.py runs the same against the Auth emulator);
the tests move a clock to check when a token is refreshed.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from client_sdk.auth import AuthEndpoints, AuthSession, SignInRejected, token_claims
from client_sdk.errors import Offline


class FakeAuth:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.expires_in = 3600
        self.failing = False  # answer 503
        self.refresh_delay_s = 0.0
        self.issued = 0
        self.lock = threading.Lock()

    def token(self, uid: str) -> str:
        with self.lock:
            self.issued += 1
            issued = self.issued
        part = lambda obj: __import__("base64").urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
        return f"{part({'alg': 'none'})}.{part({'user_id': uid, 'n': issued})}."


def serve(fake: FakeAuth):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            fields = json.loads(body) if self.headers.get("Content-Type", "").startswith("application/json") else \
                {k: v[0] for k, v in parse_qs(body).items()}
            fake.calls.append((url.path, {**fields, "key": parse_qs(url.query).get("key", [""])[0]}))
            if fake.failing:
                return self._reply(503, {"error": {"code": 503, "message": "UNAVAILABLE"}})
            if url.path.endswith("/v1/accounts:signUp"):
                return self._reply(200, self._session("anon-1"))
            if url.path.endswith("/v1/accounts:signInWithCustomToken"):
                if fields.get("token") != "good-custom-token":
                    return self._reply(400, {"error": {"code": 400, "message": "INVALID_CUSTOM_TOKEN"}})
                reply = self._session("device-7")
                del reply["localId"]  # as Firebase Auth answers this call: the uid is in the ID token
                return self._reply(200, reply)
            if url.path.endswith("/v1/token"):
                time.sleep(fake.refresh_delay_s)
                if fields.get("grant_type") != "refresh_token" or not fields.get("refresh_token", "").startswith("rt-"):
                    return self._reply(400, {"error": {"code": 400, "message": "INVALID_REFRESH_TOKEN"}})
                uid = fields["refresh_token"][3:]
                return self._reply(200, {"id_token": fake.token(uid), "refresh_token": f"rt-{uid}",
                                         "expires_in": str(fake.expires_in), "user_id": uid, "token_type": "Bearer"})
            self._reply(404, {"error": {"code": 404, "message": "NOT_FOUND"}})

        def _session(self, uid):
            return {"localId": uid, "idToken": fake.token(uid), "refreshToken": f"rt-{uid}", "expiresIn": str(fake.expires_in)}

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake():
    fake = FakeAuth()
    server = serve(fake)
    fake.endpoints = AuthEndpoints.emulator(f"127.0.0.1:{server.server_address[1]}", api_key="web-key")
    yield fake
    server.shutdown()


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_the_emulator_endpoints_follow_the_auth_rest_paths():
    endpoints = AuthEndpoints.emulator("127.0.0.1:9099")
    assert endpoints.accounts_url("signUp") == "http://127.0.0.1:9099/identitytoolkit.googleapis.com/v1/accounts:signUp"
    assert endpoints.refresh_url() == "http://127.0.0.1:9099/securetoken.googleapis.com/v1/token"
    production = AuthEndpoints(api_key="k")
    assert production.accounts_url("signInWithCustomToken") == \
        "https://identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken"
    assert production.refresh_url() == "https://securetoken.googleapis.com/v1/token"


def test_anonymous_sign_in_sends_the_api_key_and_keeps_the_token_until_the_margin(fake):
    clock = Clock()
    session = AuthSession.anonymous(fake.endpoints, clock=clock, refresh_margin_s=300)
    assert session.uid == "anon-1" and fake.calls[0] == ("/identitytoolkit.googleapis.com/v1/accounts:signUp",
                                                         {"returnSecureToken": True, "key": "web-key"})
    first = session.id_token()
    clock.now += 3600 - 301
    assert session.id_token() == first and session.refreshes == 0 and len(fake.calls) == 1


def test_the_token_is_refreshed_through_securetoken_before_it_expires(fake):
    clock = Clock()
    session = AuthSession.anonymous(fake.endpoints, clock=clock, refresh_margin_s=300)
    first = session.id_token()
    clock.now += 3600 - 299
    second = session.id_token()
    assert second != first and session.refreshes == 1
    path, fields = fake.calls[-1]
    assert path == "/securetoken.googleapis.com/v1/token"
    assert fields == {"grant_type": "refresh_token", "refresh_token": "rt-anon-1", "key": "web-key"}
    assert session.expires_at == clock.now + 3600
    assert session.id_token() == second and session.refreshes == 1  # fresh again: no second exchange


def test_custom_token_sign_in_and_a_refused_token(fake):
    session = AuthSession.with_custom_token(fake.endpoints, b"good-custom-token")
    assert session.uid == "device-7" and token_claims(session.id_token())["user_id"] == "device-7"
    with pytest.raises(SignInRejected, match="INVALID_CUSTOM_TOKEN"):
        AuthSession.with_custom_token(fake.endpoints, "forged")


def test_a_failed_refresh_keeps_a_still_valid_token_and_raises_once_it_expired(fake):
    clock = Clock()
    session = AuthSession.anonymous(fake.endpoints, clock=clock)
    current = session.id_token()
    fake.failing = True
    clock.now += 3600 - 100  # inside the margin, not expired: the old token is still good
    assert session.id_token() == current
    clock.now += 200  # expired
    with pytest.raises(Offline):
        session.id_token()
    fake.failing = False
    assert session.id_token() != current and session.refreshes == 1


def test_an_unreachable_server_is_offline():
    with pytest.raises(Offline):
        AuthSession.anonymous(AuthEndpoints.emulator("127.0.0.1:9"), timeout_s=2)


def test_concurrent_callers_share_one_refresh(fake):
    clock = Clock()
    session = AuthSession.anonymous(fake.endpoints, clock=clock)
    clock.now += 3600
    fake.refresh_delay_s = 0.2
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(session.id_token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.refreshes == 1 and len(set(tokens)) == 1
    assert sum(path.endswith("/v1/token") for path, _ in fake.calls) == 1
