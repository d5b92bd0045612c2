"""The trainer signs with the key Secret Manager holds, read once per run, before anything is trained."""

from __future__ import annotations

import pytest
from rich.console import Console

from shared import integrity
from shared.config import Settings, Training
from shared.gcp import secrets
from tests.unit.shared.gcp.test_secrets import KEY, KEY_VERSION, SecretManagerServer
from trainer_job import run as trainer_run


@pytest.fixture
def server(monkeypatch):
    running = SecretManagerServer()
    running.holds(KEY_VERSION, KEY.encode())
    # The trainer's own client factory, pointed at the local REST server (production: ADC, the real endpoint).
    client = running.client()
    monkeypatch.setattr(secrets, "secret_manager_client", lambda **kwargs: client)
    yield running
    running.rest.stop()


@pytest.mark.parametrize("backend", ["cloud_run_job", "vertex"])
def test_the_trainer_signs_with_the_secrets_key_on_a_cloud_backend(server, backend, tmp_path):
    settings = Settings(stack_dir=tmp_path, signing_key_secret=KEY_VERSION, training=Training(launcher=backend))
    run = trainer_run.TrainingRun("digits", "run-1", settings, Console(quiet=True))
    first, second = run._sign(b"model v1"), run._sign(b"model v2")
    public = integrity.public_key_pem(KEY)
    assert integrity.verify(public, b"model v1", first) and integrity.verify(public, b"model v2", second)
    assert len(server.requests) == 1, "read once per run"
    assert not (tmp_path / "signing-key.pem").exists()


def test_a_cloud_run_without_a_secret_fails_before_training(monkeypatch, tmp_path):
    """execute() asks for the key right after loading the run: the failure names the fix, not a later stage."""
    settings = Settings(stack_dir=tmp_path, training=Training(launcher="vertex"))
    monkeypatch.setattr(trainer_run.runs, "load_run", lambda run_id, s: {"model": "digits", "status": "running",
                                                                        "version": "v2", "reason": "manual"})
    monkeypatch.setattr(trainer_run.model_registry, "load_pointer",
                        lambda model, s: type("Pointer", (), {"labels": ("0", "1"), "production": None})())
    monkeypatch.setattr(trainer_run, "load_train_config", lambda model, s: trainer_run.TrainConfig())
    monkeypatch.setattr(trainer_run.model_settings, "for_model", lambda model, s: s)  # no per-model overrides
    monkeypatch.setattr(trainer_run, "take_snapshot", lambda *a, **k: pytest.fail("snapshot taken without a key"))
    run = trainer_run.TrainingRun("digits", "run-1", settings, Console(quiet=True))
    with pytest.raises(secrets.SigningKeyError, match="set EDGELOOP_SIGNING_KEY_SECRET"):
        run.execute()
    assert run.stage is None
