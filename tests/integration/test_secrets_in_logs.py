"""No signing key and no end-user token ever reaches a log of the local stack.

The session's stack is driven through the paths that handle secrets, with the
product's own code: the trainer's signing step (``TrainingRun._sign``, with the
development key it creates at ``{stack_dir}/signing-key.pem`` and with a
configured ``EDGELOOP_SIGNING_KEY``) and upload, the registry's publish, a
device (client_sdk) with its ID token downloading, capturing and reporting
(so on_upload and on_feedback run on its documents), and a real trainer process
started by launch_training that fails at its snapshot (an empty model: quick,
and a failure is where an error message could carry a key). Then every file
under ``{stack}/logs`` (emulators, functions, trainers: the whole session's,
not only this module's) are searched for the keys (PEM, base64 body, each
body line), the tokens (whole and their claims), and any PEM private key or
JWT at all. The settings object that carries a configured key is checked not
to show it in its repr or JSON dump (what a log line of the settings would hold).
"""

from __future__ import annotations

import re
import types
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from google.cloud.firestore import FieldFilter
from pydantic import SecretStr
from rich.console import Console

from shared import integrity, layout
from shared.config import Settings
from shared.gcp import model_registry, retrain_requests, training_lock
from shared.registry import Stage, VersionRecord
from shared.retrain import manual_request
from tests.integration.helpers import db, eventually, register_model, signed_in
from tests.integration.test_client_sdk import FAST, device
from tests.model_fixtures import SigningKey, digits, trained_models  # noqa: F401 (fixtures)
from trainer_job.pipeline import TrainConfig
from trainer_job.run import TrainingRun

PRIVATE_KEY_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
BEARER_JWT = re.compile(r"Bearer\s+[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")
JWT_CLAIMS = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}")  # header.claims of any JWT, signed or not
TRAINER_WAIT_S = 180


def _pem_fragments(pem: str) -> list[str]:
    """The PEM itself, its base64 body on one line, and each body line (a key logged re-wrapped or cut)."""
    body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return [pem.strip(), "".join(body), *[line for line in body if len(line) >= 16]]


def _publish_as_the_trainer(settings: Settings, model: str, data: bytes) -> str:
    """A run holding the lock, then the trainer's own sign, upload and publish steps."""
    created = training_lock.create_run(manual_request(model, who="test_secrets_in_logs"), settings)
    assert created.action == "launch", created.detail
    run = TrainingRun(model, created.run_id, settings, Console(quiet=True))
    signature = run._sign(data)
    candidate = types.SimpleNamespace(model_bytes=data)
    ref = run._upload(created.version, candidate, [str(i) for i in range(10)], TrainConfig(), signature)
    record = VersionRecord(
        model=model, version=created.version, run_id=created.run_id, created=datetime.now(timezone.utc),
        stage=Stage.CANDIDATE, ref=ref, gate={"passed": True, "checks": []}, metrics={"int8_accuracy": 0.9},
    )
    assert model_registry.publish_version(record, {}, settings).published
    return created.version


@pytest.fixture(scope="module")
def exercised(local_stack, trained_models, digits, tmp_path_factory):
    """Drive every secret-handling path once; returns the secrets that must not appear, by name."""
    settings = Settings(stack_dir=local_stack.directory)
    model = f"secrets-{uuid.uuid4().hex[:6]}"
    register_model(local_stack, model)

    # The development key, exactly as the trainer obtains it (created on first use in the stack directory).
    dev_pem = integrity.signing_key(None, settings.dev_signing_key_path)
    assert Path(local_stack.directory, "signing-key.pem").read_text() == dev_pem
    assert _publish_as_the_trainer(settings, model, trained_models["v1"].data) == "v1"

    # A configured key (local stack only; cloud trainers read Secret Manager), never shown by the settings.
    configured_pem = integrity.generate_private_key_pem()
    configured = Settings(stack_dir=local_stack.directory, signing_key=SecretStr(configured_pem))
    for shown in (repr(configured), str(configured), configured.model_dump_json()):
        assert configured_pem not in shown and "PRIVATE KEY" not in shown
    signature = TrainingRun(model, "no-run", configured, Console(quiet=True))._sign(b"bytes")
    assert integrity.verify(integrity.public_key_pem(configured_pem), b"bytes", signature)

    # A device, with its ID token: download, capture, feedback (on_upload and on_feedback handle its documents).
    key = SigningKey(dev_pem, integrity.public_key_pem(dev_pem))
    uid = "erin"
    client = device(local_stack, tmp_path_factory.mktemp("device"), model, key, uid=uid,
                    settings=FAST.model_copy(update={"capture_sample_rate": 1.0}))
    assert client.ensure_model().version == "v1"
    prediction = client.classify(digits[5].rgb)
    client.report(prediction, true_label=prediction.label)
    assert client.flush().delivered == 2
    images = db(local_stack).collection(layout.images_collection(model))
    eventually(lambda: any(s.to_dict().get("confirmed_by") == uid for s in images.stream()), timeout_s=60,
               what="on_upload and on_feedback to handle the device's capture and report")

    # A real trainer process (started by launch_training) that fails at its snapshot: nothing to train on.
    empty = f"secrets-empty-{uuid.uuid4().hex[:6]}"
    register_model(local_stack, empty)
    retrain_requests.publish_request(manual_request(empty, who="test_secrets_in_logs"), settings)

    def failed_run():
        runs = db(local_stack).collection("runs").where(filter=FieldFilter("model", "==", empty)).stream()
        return [r.to_dict() for r in runs if r.to_dict().get("status") == "failed"]

    (run,) = eventually(failed_run, timeout_s=TRAINER_WAIT_S, what="the trainer of an empty model to fail")
    assert (Path(local_stack.directory) / "logs" / f"trainer-{run['run_id']}.log").exists()

    sessions = [signed_in(uid, local_stack.project_id), signed_in("alice", local_stack.project_id)]
    tokens = [session.id_token() for session in sessions]
    secrets = {
        "development signing key": _pem_fragments(dev_pem),
        "configured signing key": _pem_fragments(configured_pem),
        "device ID token": [t for token in tokens for t in (token, token.split(".")[1])],
        "device refresh token": [session._refresh_token for session in sessions],
    }
    return secrets


def _log_files(stack) -> list[Path]:
    files = sorted(p for p in (Path(stack.directory) / "logs").rglob("*") if p.is_file())
    assert any(p.name.startswith("trainer-") for p in files) and any(p.name == "on_upload.log" for p in files), files
    return files


def test_no_log_of_the_stack_holds_a_signing_key_or_a_token(local_stack, exercised):
    found = []
    for path in _log_files(local_stack):
        text = path.read_text(errors="replace")
        for what, fragments in exercised.items():
            if any(fragment in text for fragment in fragments):
                found.append(f"{path.name}: {what}")
        for name, pattern in (("a PEM private key", PRIVATE_KEY_PEM), ("a bearer JWT", BEARER_JWT), ("a JWT", JWT_CLAIMS)):
            if pattern.search(text):
                found.append(f"{path.name}: {name}")
    assert not found, found


def test_the_logs_searched_are_the_ones_the_stack_writes(local_stack, exercised):
    """The search above is not vacuous: the functions logged the device's documents being handled."""
    logs = Path(local_stack.directory) / "logs"
    assert '"event": "image_registered"' in (logs / "on_upload.log").read_text()
    assert (logs / "on_feedback.log").stat().st_size > 0


def test_the_development_key_file_is_private_and_ignored_by_git(local_stack, exercised):
    key_file = Path(local_stack.directory) / "signing-key.pem"
    assert key_file.stat().st_mode & 0o077 == 0, oct(key_file.stat().st_mode)
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".edgeloop/signing-key.pem"], cwd=repo)
    assert ignored.returncode == 0, "the default stack directory (and the dev key in it) must be git-ignored"
