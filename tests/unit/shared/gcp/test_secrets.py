"""The signing key through Secret Manager's real client library, against a local server speaking its REST API.

``google-cloud-secret-manager`` runs with its REST transport, anonymous credentials and an endpoint on
127.0.0.1, so its request building, JSON parsing and HTTP error mapping run for real. The server
answers ``GET /v1/{name}:access`` as the public API reference describes: ``{"name": ..., "payload":
{"data": base64, "dataCrc32c": ...}}``, or a Google API error body.
"""

from __future__ import annotations

import base64
import os

import google_crc32c
import pytest
from pydantic import SecretStr

from shared import integrity
from shared.config import Settings, Training
from shared.gcp import secrets
from shared.gcp.launchers import cloud_run_request, vertex_custom_job
from tests.google_rest import GoogleRestServer, error

PROJECT = "acme-prod"
KEY_VERSION = f"projects/{PROJECT}/secrets/edgeloop-model-signing-key/versions/latest"
KEY = integrity.generate_private_key_pem()


class SecretManagerServer:
    """Answers accessSecretVersion; ``versions`` maps a version name to (status, JSON body), others get its 404."""

    def __init__(self):
        self.versions: dict[str, tuple[int, dict]] = {}
        self.rest = GoogleRestServer(fallback=self._access).start()

    def _access(self, method: str, path: str) -> tuple[int, dict]:
        name = path.removeprefix("/v1/").removesuffix(":access")
        return self.versions.get(name, (404, error(404, "NOT_FOUND", f"Secret [{name}] not found or has no versions.")))

    @property
    def requests(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.rest.requests]

    def holds(self, name: str, payload: bytes, crc32c: int | None = None) -> None:
        version = name.replace("/versions/latest", "/versions/7")
        body = {"name": version, "payload": {"data": base64.b64encode(payload).decode("ascii")}}
        body["payload"]["dataCrc32c"] = str(google_crc32c.value(payload) if crc32c is None else crc32c)
        self.versions[name] = (200, body)

    def client(self):
        return secrets.secret_manager_client(**self.rest.client_kwargs())


@pytest.fixture
def server():
    running = SecretManagerServer()
    yield running
    running.rest.stop()


def test_the_client_reads_the_version_by_its_resource_name(server):
    server.holds(KEY_VERSION, KEY.encode())
    assert secrets.access_secret(KEY_VERSION, server.client()) == KEY.encode()
    assert server.requests == [("GET", f"/v1/{KEY_VERSION}:access")]


def _trainer_settings(backend: str, monkeypatch) -> Settings:
    """The trainer's settings as a cloud job gets them: from the environment the launcher's request sets."""
    launcher = Settings(project_id=PROJECT, signing_key_secret=KEY_VERSION, training=Training(
        launcher=backend, trainer_image="europe-west4-docker.pkg.dev/acme-prod/edgeloop/trainer:1",
        vertex_service_account=f"edgeloop-trainer@{PROJECT}.iam.gserviceaccount.com"))
    if backend == "vertex":
        env = vertex_custom_job("digits", "run-1", launcher).job_spec.worker_pool_specs[0].container_spec.env
    else:
        env = cloud_run_request("digits", "run-1", launcher).overrides.container_overrides[0].env
    for name in [n for n in os.environ if n.startswith("EDGELOOP_")]:
        monkeypatch.delenv(name)
    for variable in env:
        monkeypatch.setenv(variable.name, variable.value)
    return Settings()


@pytest.mark.parametrize("backend", ["cloud_run_job", "vertex"])
def test_the_trainer_obtains_the_configured_key_on_both_backends(backend, server, monkeypatch, tmp_path):
    server.holds(KEY_VERSION, KEY.encode())
    settings = _trainer_settings(backend, monkeypatch).model_copy(update={"stack_dir": tmp_path})
    assert settings.signing_key_secret == KEY_VERSION and settings.training.launcher == backend
    pem = secrets.signing_key(settings, environ={}, client=server.client())
    assert pem == KEY
    assert integrity.verify(integrity.public_key_pem(KEY), b"model", integrity.sign(pem, b"model"))
    assert not (tmp_path / "signing-key.pem").exists(), "no development key is created"


@pytest.mark.parametrize("status, grpc_status, message, expected", [
    (403, "PERMISSION_DENIED", f"Permission 'secretmanager.versions.access' denied for resource '{KEY_VERSION}' (or it may not exist).",
     r"permission denied reading projects/acme-prod/secrets/edgeloop-model-signing-key/versions/latest: "
     r"the trainer's service account needs roles/secretmanager.secretAccessor on that secret"),
    (404, "NOT_FOUND", f"Secret [{KEY_VERSION.split('/versions')[0]}] not found or has no versions.",
     r"does not exist: create the secret and add a version"),
    (400, "FAILED_PRECONDITION", f"Secret Version [{KEY_VERSION}] is in DISABLED state.",
     r"cannot be read \(a disabled or destroyed version\?\): .*DISABLED"),
])
def test_api_errors_become_errors_that_say_what_to_fix(server, status, grpc_status, message, expected):
    server.versions[KEY_VERSION] = (status, error(status, grpc_status, message))
    with pytest.raises(secrets.SigningKeyError, match=expected):
        secrets.signing_key(Settings(signing_key_secret=KEY_VERSION), environ={}, client=server.client())


def test_a_missing_secret_is_reported_as_missing(server):
    with pytest.raises(secrets.SigningKeyError, match="does not exist"):
        secrets.access_secret(KEY_VERSION, server.client())  # the server has no such secret: its real 404


def test_a_corrupted_payload_is_refused(server):
    server.holds(KEY_VERSION, KEY.encode(), crc32c=12345)
    with pytest.raises(secrets.SigningKeyError, match="CRC32C"):
        secrets.access_secret(KEY_VERSION, server.client())


def test_a_secret_that_is_no_signing_key_is_refused_without_echoing_it(server):
    server.holds(KEY_VERSION, b"hunter2-not-a-key")
    with pytest.raises(secrets.SigningKeyError, match="does not hold an Ed25519 private key") as error:
        secrets.signing_key(Settings(signing_key_secret=KEY_VERSION), environ={}, client=server.client())
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("settings, environ, where", [
    (Settings(training=Training(launcher="vertex")), {}, "launched by the vertex launcher"),
    (Settings(training=Training(launcher="cloud_run_job")), {}, "launched by the cloud_run_job launcher"),
    (Settings(), {"CLOUD_RUN_JOB": "edgeloop-trainer"}, "running as Cloud Run job edgeloop-trainer"),
])
def test_a_cloud_trainer_without_a_secret_refuses_the_development_key(settings, environ, where, tmp_path):
    settings = settings.model_copy(update={"stack_dir": tmp_path})
    with pytest.raises(secrets.SigningKeyError, match=f"{where}: set EDGELOOP_SIGNING_KEY_SECRET"):
        secrets.signing_key(settings, environ=environ)
    assert not (tmp_path / "signing-key.pem").exists()


def test_a_cloud_trainer_refuses_a_plaintext_key_too(tmp_path):
    settings = Settings(stack_dir=tmp_path, signing_key=SecretStr(KEY), training=Training(launcher="vertex"))
    with pytest.raises(secrets.SigningKeyError, match="refused there") as error:
        secrets.signing_key(settings, environ={})
    assert "PRIVATE KEY" not in str(error.value)


def test_the_local_stack_keeps_its_development_and_configured_keys(tmp_path):
    dev = secrets.signing_key(Settings(stack_dir=tmp_path), environ={})
    assert (tmp_path / "signing-key.pem").read_text() == dev
    assert secrets.signing_key(Settings(stack_dir=tmp_path, signing_key=SecretStr(KEY)), environ={}) == KEY
