"""The trainer's signing key: read from Secret Manager by resource name, on every cloud backend.

A Cloud Run job could have Cloud Run resolve the secret into an environment variable, but a Vertex AI
CustomJob cannot, and a key in an environment is a key in a job spec. So on both backends the job
carries only the secret version's name (``EDGELOOP_SIGNING_KEY_SECRET``) and the trainer asks
Secret Manager itself, as its own service account (which holds ``roles/secretmanager.secretAccessor``
on that one secret, infra/terraform/iam.tf).

The development key (created on first use in the stack directory) is for the local stack only: a
trainer on a cloud backend without a configured secret stops with a clear error rather than sign with
a key no device trusts.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from shared import integrity
from shared.config import Settings

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
KEY_VERSION_SETTING = "EDGELOOP_SIGNING_KEY_SECRET"
# Cloud Run sets this in every job execution's container (the job's name).
CLOUD_RUN_JOB_ENV = "CLOUD_RUN_JOB"


class SigningKeyError(RuntimeError):
    """The signing key cannot be obtained; the message says what to fix."""


def secret_manager_client(**kwargs: Any):
    """Secret Manager's client (Application Default Credentials; tests pass transport and endpoint)."""
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient(**kwargs)


def access_secret(name: str, client: Any = None) -> bytes:
    """The payload of the secret version ``name`` (``projects/P/secrets/S/versions/V``), checksum verified."""
    from google.api_core import exceptions

    client = client if client is not None else secret_manager_client()
    try:
        response = client.access_secret_version(name=name)
    except (exceptions.PermissionDenied, exceptions.Forbidden) as exc:
        raise SigningKeyError(
            f"permission denied reading {name}: the trainer's service account needs {ACCESSOR_ROLE} on that "
            f"secret ({exc.message})") from exc
    except exceptions.NotFound as exc:
        raise SigningKeyError(
            f"{name} does not exist: create the secret and add a version holding the Ed25519 signing key "
            f"(README, 'Deploying to Google Cloud') ({exc.message})") from exc
    except (exceptions.FailedPrecondition, exceptions.BadRequest) as exc:  # REST maps every 400 to BadRequest
        raise SigningKeyError(f"{name} cannot be read (a disabled or destroyed version?): {exc.message}") from exc
    data = bytes(response.payload.data)
    if "data_crc32c" in response.payload:
        import google_crc32c

        if google_crc32c.value(data) != response.payload.data_crc32c:
            raise SigningKeyError(f"{name}: the payload does not match its CRC32C checksum (corrupted in transit)")
    return data


def cloud_backend(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """Why this trainer runs on a cloud backend (None: on the local stack)."""
    environ = os.environ if environ is None else environ
    if settings.training.launcher != "local":
        return f"launched by the {settings.training.launcher} launcher"
    if environ.get(CLOUD_RUN_JOB_ENV):
        return f"running as Cloud Run job {environ[CLOUD_RUN_JOB_ENV]}"
    return None


def signing_key(settings: Settings, environ: Mapping[str, str] | None = None, client: Any = None) -> str:
    """The PEM the trainer signs with: the configured secret's, else (local stack only) the configured or development key."""
    if settings.signing_key_secret:
        data = access_secret(settings.signing_key_secret, client)
        try:
            pem = data.decode("ascii")
            integrity.signing_key(pem, settings.dev_signing_key_path)  # checks it is an Ed25519 private key
        except (UnicodeDecodeError, ValueError, TypeError) as exc:
            raise SigningKeyError(
                f"{settings.signing_key_secret} does not hold an Ed25519 private key in PEM ({type(exc).__name__})"
            ) from None  # the payload is never echoed
        return pem
    where = cloud_backend(settings, environ)
    if where is not None:
        plaintext = " (a key in EDGELOOP_SIGNING_KEY is refused there: it would sit in the job spec)" \
            if settings.signing_key else ""
        raise SigningKeyError(
            f"no signing key secret configured for a trainer {where}: set {KEY_VERSION_SETTING} to "
            f"projects/PROJECT/secrets/SECRET/versions/latest{plaintext}; the development key is for the local stack only")
    configured = settings.signing_key.get_secret_value() if settings.signing_key else None
    return integrity.signing_key(configured, settings.dev_signing_key_path)
