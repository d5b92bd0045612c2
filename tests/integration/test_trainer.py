"""The trainer job on the local stack: from a snapshot to a gated, signed model in the registry, crash-safe."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from edgeloop.seed import seed_dataset, wait_for_outcome
from shared import integrity, layout
from shared.config import Settings
from shared.digits import load_digits_rgb
from shared.gcp import launch, training_lock
from shared.gcp.images import mark_images_used
from shared.registry import ModelPointer
from shared.retrain import manual_request
from tests.integration.helpers import bucket, control, db, eventually
from trainer_job import evaluate
from trainer_job.augment import low_light
from trainer_job.model import Hyperparameters
from trainer_job.pipeline import TrainConfig
from trainer_job.run import PAUSE_AT_ENV, STAGES, save_train_config
from trainer_job.snapshot import decode_rgb
from trainer_job.split import in_field_holdout

SEEDED_IMAGES = 500
QUICK = TrainConfig(grid=(Hyperparameters(filters=8, dense_units=64, epochs=6),), latency_repeats=20)
CRIPPLED = TrainConfig(grid=(Hyperparameters(filters=2, dense_units=4, epochs=1, learning_rate=1e-4),),
                       latency_repeats=20)


@pytest.fixture(scope="module")
def settings(local_stack) -> Settings:
    return Settings(stack_dir=local_stack.directory)


@pytest.fixture(scope="module")
def trainer_env(local_stack):
    """The trainer a test launches in-process must find the stack's signing key, as launch_training's does."""
    saved = os.environ.get("EDGELOOP_STACK_DIR")
    os.environ["EDGELOOP_STACK_DIR"] = str(local_stack.directory)
    yield
    if saved is None:
        os.environ.pop("EDGELOOP_STACK_DIR")
    else:
        os.environ["EDGELOOP_STACK_DIR"] = saved


@pytest.fixture(scope="module")
def model(local_stack, settings, trainer_env) -> str:
    """A model seeded through the upload path, then trained once: v1 in production."""
    model = "trainer-digits"
    seed_dataset(model, settings, Console(stderr=True), train=False, limit=SEEDED_IMAGES)
    save_train_config(model, QUICK, settings)
    run = train(model, settings)
    assert run["status"] == "published", run.get("error")
    # The device it trained on is recorded (no GPU on these machines: TensorFlow's CPU build, the CPU).
    assert run["device"]["device"] == "CPU:0" and "CPU:0" in run["device"]["physical"] and not run["device"]["cuda_build"]
    return model


def train(model: str, settings: Settings) -> dict:
    outcome = launch.launch(manual_request(model, who="test"), settings)
    assert outcome.action == "launch", outcome.detail
    return wait_for_outcome(outcome.run_id, settings, Console(stderr=True), timeout_s=240)


def pointer(stack, model: str) -> ModelPointer:
    return ModelPointer.model_validate(db(stack).document(layout.model_doc(model)).get().to_dict())


def version_record(stack, model: str, version: str) -> dict | None:
    snapshot = db(stack).document(layout.version_doc(model, version)).get()
    return snapshot.to_dict() if snapshot.exists else None


def public_key(settings: Settings) -> str:
    return integrity.public_key_pem(integrity.load_or_create_dev_key(settings.dev_signing_key_path))


# --- a run that publishes -------------------------------------------------------------------------

def test_the_first_version_is_published_to_production_signed_and_verifiable(local_stack, settings, model):
    production = pointer(local_stack, model).production
    assert production is not None and production.version == "v1"
    content = bucket(local_stack).blob(production.path).download_as_bytes()
    assert len(content) == production.size and integrity.sha256_hex(content) == production.sha256
    assert integrity.verify(public_key(settings), content, production.signature)
    assert production.labels == tuple(str(d) for d in range(10))
    assert (production.input.height, production.input.width, production.input.channels) == (32, 32, 3)


def test_tampering_with_the_published_file_breaks_its_signature(local_stack, settings, model):
    production = pointer(local_stack, model).production
    content = bytearray(bucket(local_stack).blob(production.path).download_as_bytes())
    content[len(content) // 2] ^= 0x01
    assert integrity.sha256_hex(bytes(content)) != production.sha256
    assert not integrity.verify(public_key(settings), bytes(content), production.signature)


def test_the_registry_record_carries_metrics_manifest_baseline_gate_and_history(local_stack, model):
    record = version_record(local_stack, model, "v1")
    assert record["stage"] == "production" and record["parent"] is None
    assert [t["target"] for t in record["history"]] == ["candidate", "production"]
    assert record["gate"]["passed"] and record["gate"]["checks"]
    assert {"int8_accuracy", "float_accuracy", "int8_drifted_accuracy", "latency_us", "size_bytes"} <= set(record["metrics"])
    assert record["manifest"]["objects"] == SEEDED_IMAGES
    assert sum(record["manifest"]["counts_per_label"].values()) == SEEDED_IMAGES
    stored = bucket(local_stack).blob(record["manifest"]["path"]).download_as_bytes()
    assert integrity.sha256_hex(stored) == record["manifest"]["sha256"]
    assert set(record["baseline"]["image_stats"]) == {"brightness", "contrast", "sharpness"}
    assert record["baseline"]["confidences"] and record["baseline"]["label_counts"]
    assert record["hyperparameters"]["filters"] == 8 and record["code_version"]
    # What it started from: the small CNN, random weights (ImageNet weights are MobileNetV3's, and were not asked for).
    assert record["backbone"] == {"backbone": "cnn", "weights": "none", "pretrained_loaded": False, "file": None, "md5": None}


def test_the_run_records_every_stage_with_its_time_and_frees_the_lock(local_stack, model):
    run = db(local_stack).document(layout.run_doc(version_record(local_stack, model, "v1")["run_id"])).get().to_dict()
    assert run["status"] == "published" and run["result"]["stage"] == "production"
    assert run["result"]["backbone"]["backbone"] == "cnn" and run["result"]["config"]["weights"] == "none"
    for stage in STAGES:
        assert run["stages"][stage]["seconds"] >= 0, stage
    assert control(local_stack, model)["active_run"] is None


def test_trained_images_no_longer_count_as_new_data(local_stack, model):
    images = [s.to_dict() for s in db(local_stack).collection(layout.images_collection(model)).stream()]
    assert len(images) == SEEDED_IMAGES and all(image["status"] == "used" for image in images)


def test_marking_images_used_never_revives_a_superseded_image(local_stack, settings, model):
    images = db(local_stack).collection(layout.images_collection(model))
    images.document("superseded-one").set({"status": "superseded", "labelled": True, "label": "3"})
    images.document("fresh-one").set({"status": "new", "labelled": True, "label": "3"})
    assert mark_images_used(model, ["superseded-one", "fresh-one"], "run-x", settings) == 1
    assert images.document("superseded-one").get().to_dict()["status"] == "superseded"
    assert images.document("fresh-one").get().to_dict()["used_by"] == "run-x"
    images.document("superseded-one").delete()
    images.document("fresh-one").delete()


def test_a_rerun_on_the_same_manifest_reproduces_the_metrics(local_stack, settings, model):
    first = version_record(local_stack, model, "v1")
    created = training_lock.create_run(manual_request(model, who="test", note="rerun"), settings)
    subprocess.run([sys.executable, "-m", "trainer_job", "--model", model, "--run-id", created.run_id,
                    "--manifest", first["manifest"]["path"]], check=True, timeout=240, capture_output=True)
    again = version_record(local_stack, model, created.version)
    assert again["manifest"]["sha256"] == first["manifest"]["sha256"]
    for metric in ("float_accuracy", "int8_accuracy", "int8_drifted_accuracy", "val_accuracy", "size_bytes"):
        assert again["metrics"][metric] == first["metrics"][metric], metric
    # the same model judged against itself is no regression: it becomes a canary
    assert again["stage"] == "canary" and pointer(local_stack, model).rollout.candidate.version == created.version


# --- the gate ------------------------------------------------------------------------------------

def test_the_gate_rejects_a_deliberately_worse_candidate_and_clients_never_see_it(local_stack, settings, model):
    before = pointer(local_stack, model)
    save_train_config(model, CRIPPLED, settings)
    try:
        run = train(model, settings)
    finally:
        save_train_config(model, QUICK, settings)
    assert run["status"] == "rejected"
    version = run["result"]["version"]
    record = version_record(local_stack, model, version)
    assert record["stage"] == "rejected" and record["ref"] is None
    assert any(reason.startswith("int8_accuracy") for reason in record["gate"]["reasons"])
    assert pointer(local_stack, model) == before
    assert not bucket(local_stack).blob(layout.model_object(model, version)).exists()
    assert control(local_stack, model)["active_run"] is None
    # the structured line the rejection alert policy matches, in the trainer's log as Cloud Logging would collect it
    assert '"event": "candidate_rejected"' in Path(run["execution"]["log"]).read_text()


def test_the_gate_applies_the_models_own_gate_settings(local_stack, settings, model):
    """A per-model gate (edgeloop model create --set gate.max_size_bytes=...) rejects a candidate the global gate
    would pass; the rejection names the model's limit."""
    from shared.gcp import model_settings

    before = pointer(local_stack, model)
    model_settings.create_model(model, before.labels, settings, overrides={"gate": {"max_size_bytes": 1000}})
    try:
        run = train(model, settings)
    finally:
        db(local_stack).document(layout.model_settings_doc(model)).delete()
    assert run["status"] == "rejected", run.get("error")
    record = version_record(local_stack, model, run["result"]["version"])
    (check,) = [c for c in record["gate"]["checks"] if c["name"] == "size_bytes"]
    assert check["limit"] == 1000 and not check["passed"] and check["value"] <= settings.gate.max_size_bytes
    assert pointer(local_stack, model).production == before.production


def test_a_published_canary_starts_at_the_models_own_first_rollout_step(local_stack, settings, model):
    """release.rollout_steps per model: the trainer offers a passing candidate to the model's first step (25%),
    not the global one (10%); the canary is then rolled back, leaving production as it was."""
    from shared.gcp import model_settings, release

    before = pointer(local_stack, model)
    model_settings.create_model(model, before.labels, settings, overrides={"release": {"rollout_steps": [25, 100]}})
    try:
        run = train(model, settings)
    finally:
        db(local_stack).document(layout.model_settings_doc(model)).delete()
    assert run["status"] == "published" and run["result"]["stage"] == "canary", run.get("error")
    after = pointer(local_stack, model)
    assert after.rollout.candidate.version == run["result"]["version"] and after.rollout.percent == 25
    assert settings.release.canary_percent != 25
    release.rollback(model, "test", settings, "per-model release test done")
    assert pointer(local_stack, model).production == before.production and pointer(local_stack, model).rollout.candidate is None


# --- crash safety --------------------------------------------------------------------------------

def paused(outcome, stage: str, timeout_s: float) -> None:
    """Wait until the trainer says it paused at ``stage``: its stage start (and lock renewal) is fully written."""
    log_file = Path(outcome.execution["log"])
    eventually(lambda: log_file.exists() and f"paused at {stage}" in log_file.read_text(), timeout_s,
               f"the trainer to pause at {stage}")


@pytest.mark.parametrize("stage", STAGES)
def test_a_trainer_killed_at_any_stage_leaves_no_partial_model_and_frees_the_lock(local_stack, settings, model, stage, monkeypatch):
    before = pointer(local_stack, model)
    monkeypatch.setenv(PAUSE_AT_ENV, stage)
    request = manual_request(model, who="test", note=f"kill at {stage}")
    outcome = launch.launch(request, settings)
    run_ref = db(local_stack).document(layout.run_doc(outcome.run_id))
    paused(outcome, stage, 120)
    os.kill(outcome.execution["pid"], signal.SIGKILL)

    run = eventually(lambda: (r := run_ref.get().to_dict())["status"] == "failed" and r, 30, "the run marked failed")
    assert run["failed_stage"] == stage and "code -9" in run["error"]
    assert pointer(local_stack, model) == before  # nothing a client reads changed
    assert version_record(local_stack, model, outcome.version) is None
    state = control(local_stack, model)
    assert state["active_run"] is None
    # As for a failed cloud execution (shared.gcp.watch): the causes it was to serve are pending again.
    assert request.cause in [p["cause"] for p in state["pending"]]


def test_a_terminated_trainer_marks_its_own_run_failed_with_the_stage(local_stack, settings, model, monkeypatch):
    monkeypatch.setenv(PAUSE_AT_ENV, "download")
    outcome = launch.launch(manual_request(model, who="test", note="terminate"), settings)
    run_ref = db(local_stack).document(layout.run_doc(outcome.run_id))
    paused(outcome, "download", 60)
    os.kill(outcome.execution["pid"], signal.SIGTERM)
    run = eventually(lambda: (r := run_ref.get().to_dict())["status"] == "failed" and r, 30, "the run marked failed")
    assert run["failed_stage"] == "download" and run["error"].startswith("Terminated")
    assert control(local_stack, model)["active_run"] is None


# --- the field holdout ---------------------------------------------------------------------------

FIELD_CAPTURES = 60


def dark_png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(low_light(rgb[None], 0.88)[0], mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def confirmed_dark_captures(stack, model: str, count: int) -> list[tuple[str, str, bytes]]:
    """Dark captures uploaded the way devices do, then labelled as a user's confirmation labels them."""
    digits = load_digits_rgb()[-count:]  # the end of the bundled set: not among the seeded images
    captures = []
    for digit in digits:
        name = layout.upload_object(model, "u1", uuid.uuid4().hex, "png")
        content = dark_png(digit.rgb)
        blob = bucket(stack).blob(name)
        blob.metadata = {"predicted_label": "0", "confidence": "0.3", "model_version": "v1"}
        blob.upload_from_string(content, content_type="image/png")
        captures.append((name, digit.label, content))
    names = {name for name, _, _ in captures}
    images = db(stack).collection(layout.images_collection(model))

    def registered():
        found = {s.to_dict()["object"]: s for s in images.stream() if s.to_dict().get("object") in names}
        return found if len(found) == count else None

    found = eventually(registered, 120, "every capture registered")
    for name, label, _ in captures:
        found[name].reference.update({"label": label, "labelled": True, "confirmed_by": "u1"})
    return captures


def test_a_candidate_is_judged_on_held_out_field_captures_and_production_on_the_same_images(
        local_stack, settings, model):
    production = pointer(local_stack, model).production
    captures = confirmed_dark_captures(local_stack, model, FIELD_CAPTURES)
    held = [(name, label, content) for name, label, content in captures
            if in_field_holdout(name, settings.gate.field_holdout_share)]
    assert 0 < len(held) < FIELD_CAPTURES
    # Enough to be gated, in the launcher's settings: every backend hands the trainer the launcher's gate.
    gated = settings.model_copy(update={"gate": settings.gate.model_copy(update={"min_field_holdout": len(held)})})

    run = train(model, gated)
    assert run["status"] in ("published", "rejected"), run.get("error")
    record = version_record(local_stack, model, run["result"]["version"])
    metrics = record["metrics"]
    assert record["manifest"]["objects"] == SEEDED_IMAGES + FIELD_CAPTURES  # every confirmed capture was snapshotted …
    assert metrics["field_holdout_images"] == len(held)  # … and exactly the hashed slice of them held out

    pixels = np.stack([decode_rgb(content, 32) for _, _, content in held])
    labels = np.array([int(label) for _, label, _ in held])
    reference = bucket(local_stack).blob(production.path).download_as_bytes()
    assert metrics["production_int8_field_accuracy"] == evaluate.accuracy(reference, pixels, labels)
    if record["ref"] is not None:  # a published candidate: its own score, recomputed from its file
        published = bucket(local_stack).blob(record["ref"]["path"]).download_as_bytes()
        assert metrics["int8_field_accuracy"] == evaluate.accuracy(published, pixels, labels)
    check = next(c for c in record["gate"]["checks"] if c["name"] == "int8_field_accuracy_regression")
    assert check["value"] == round(metrics["production_int8_field_accuracy"] - metrics["int8_field_accuracy"], 6)
    assert (run["status"] == "published") == all(c["passed"] for c in record["gate"]["checks"])
    for stress in ("int8_drifted_accuracy", "int8_blur_accuracy", "int8_noise_accuracy"):
        assert 0 <= metrics[stress] <= 1 and 0 <= metrics[f"production_{stress}"] <= 1


def test_a_run_that_streams_its_images_is_judged_on_the_same_holdouts_as_one_that_decodes_them_all(
        local_stack, settings, model):
    """Above ``TrainConfig.stream_above_mib`` (0 here) a run splits the manifest first, decodes the images once into
    TFRecord shards and trains from them: production, scored on its holdouts, gets exactly the scores it got in the
    in-memory run on the same data (the test before), so the parts and their stressed pixels are the same."""
    from shared.gcp import release

    versions = [s.to_dict() for s in db(local_stack).collection(layout.versions_collection(model)).stream()]
    in_memory = max((v for v in versions if v["metrics"].get("field_holdout_images")), key=lambda v: v["created"])
    held = in_memory["metrics"]["field_holdout_images"]
    gated = settings.model_copy(update={"gate": settings.gate.model_copy(update={"min_field_holdout": held})})
    save_train_config(model, QUICK.model_copy(update={"stream_above_mib": 0}), settings)
    try:
        run = train(model, gated)
    finally:
        save_train_config(model, QUICK, settings)
    assert run["status"] in ("published", "rejected"), run.get("error")
    assert "shards on local disk (streamed)" in Path(run["execution"]["log"]).read_text()
    record = version_record(local_stack, model, run["result"]["version"])
    assert record["manifest"]["sha256"] == in_memory["manifest"]["sha256"]
    assert record["metrics"]["field_holdout_images"] == held
    for name, value in in_memory["metrics"].items():
        if name.startswith("production_"):
            assert record["metrics"][name] == value, name
    assert record["metrics"]["int8_accuracy"] > 0.8
    if pointer(local_stack, model).rollout.candidate is not None:
        release.rollback(model, "test", settings, "streamed run test done")
