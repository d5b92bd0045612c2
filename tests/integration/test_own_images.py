"""Bring your own images, end to end on the local stack, with a dataset unlike the digits.

Four classes of textured, coloured shapes on varied striped backgrounds, 96×96 (a few at other sizes), written
here as PNG, JPEG and WebP into a folder per label (nothing is shipped as files), go through every step an
operator takes: ``model create`` at 96 px → ``dataset import`` (through on_upload, idempotent) → ``retrain`` →
a device (client_sdk) installs the model, classifies unseen shapes and captures them → its user confirms one
capture and contradicts themself on another → ``label`` lists the unlabelled and the disputed ones with a contact
sheet and the operator labels them → ``retrain`` trains on the captures too → ``dataset export`` writes back
exactly each version's training images.

The model trains with a one-trial grid (8 filters, 32 dense units, 10 epochs) through its TrainConfig, which
keeps each run around half a minute at 96×96 on two cores. The shapes are drawn here rather than taken from
``shared/shapes.py``: that set (rotated stars, checkered and noisy backgrounds) is the backbone benchmark's, hard
on purpose, and the small CNN stays at chance on it in a run this short (22% int8 holdout accuracy with 40
images per class and this grid), where these light shapes on dark stripes reach 97%.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from rich.console import Console
from typer.testing import CliRunner

from client_sdk import EdgeloopClient, Endpoints
from client_sdk.client import Prediction
from edgeloop.cli import app
from edgeloop.device import load_public_key
from edgeloop.seed import wait_for_outcome
from shared import layout
from shared.config import Client, Settings
from shared.feedback import parse_feedback
from shared.gcp import model_registry
from tests.integration.helpers import bucket, db, eventually, quarantine_record, signed_in
from trainer_job import Manifest, TrainConfig, save_train_config
from trainer_job.model import Hyperparameters

SHAPES = ("circle", "cross", "square", "triangle")
SIZE = 96
PER_CLASS = 40
OTHER_SIZE = (160, 120)  # every tenth image: the trainer resizes whatever comes in
FORMATS = ("PNG", "JPEG", "WEBP")
QUICK = TrainConfig(image_size=SIZE, grid=(Hyperparameters(filters=8, dense_units=32, epochs=10),), latency_repeats=20)
FIELD_IMAGES = 12
# Every prediction is captured as a hard case: the test needs captures, not a realistic rate.
DEVICE = Client(backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=10, capture_sample_rate=0.0,
                capture_below_confidence=1.0)


def shape_image(label: str, rng: np.random.Generator) -> Image.Image:
    """A light shape of a random colour, position and size on a dark, noisy, striped background."""
    background = rng.integers(0, 110, 3)
    pixels = np.clip(background + rng.normal(0, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    stripe = tuple(int(c) for c in np.clip(background + 25, 0, 255))
    step = int(rng.integers(10, 18))
    for x in range(-SIZE, SIZE, step):
        draw.line([(x, 0), (x + SIZE, SIZE)], fill=stripe, width=2)
    colour = tuple(int(c) for c in rng.integers(150, 256, 3))
    r = int(rng.integers(24, 34))
    cx, cy = (int(v) for v in SIZE // 2 + rng.integers(-8, 9, 2))
    if label == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif label == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif label == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    else:
        w = max(5, r // 3)
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=colour)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=colour)
    return image


def encoded(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **({"quality": 90} if format in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def write_dataset(root: Path) -> dict[str, bytes]:
    """The folder an operator would bring, plus what they should not: returns each good file's bytes by path."""
    rng = np.random.default_rng(20)
    files: dict[str, bytes] = {}
    for label in SHAPES:
        for index in range(PER_CLASS):
            image = shape_image(label, rng)
            if index % 10 == 9:
                image = image.resize(OTHER_SIZE, Image.Resampling.BILINEAR)
            format = FORMATS[index % len(FORMATS)]
            files[f"{label}/{label}-{index:02d}.{format.lower()}"] = encoded(image, format)
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    (root / "square" / "copy-of-square-00.png").write_bytes(files["square/square-00.png"])  # a duplicate
    (root / "square" / "tiny.png").write_bytes(encoded(Image.new("RGB", (4, 4), "red"), "PNG"))  # on_upload refuses
    (root / "circle" / "notes.txt").write_text("shot on the blue table\n")  # not an image
    (root / "hexagon").mkdir()
    (root / "hexagon" / "hexagon-00.png").write_bytes(encoded(shape_image("circle", rng), "PNG"))  # not a label
    (root / "README.md").write_text("my shapes\n")  # outside a label folder
    return files


def cli(stack, *args: str):
    result = CliRunner().invoke(app, [*args, "--dir", str(stack.path)], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert max(map(len, lines), default=0) <= 80, result.stdout
    return result


def counted(output: str) -> dict[str, int]:
    """The import's verdict table: verdict → files."""
    rows = re.findall(r"│ (accepted|duplicate|quarantined|refused|no verdict) +│ +(\d+) │", output)
    return {verdict: int(count) for verdict, count in rows}


def not_accepted(output: str) -> dict[str, tuple[str, str]]:
    """The import's "not accepted" table (cells folded over several lines joined again): file → (verdict, reason)."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) != 3 or cells == ["file", "verdict", "reason"]:
            continue
        if cells[1]:
            rows.append(cells)
        else:  # a continuation: rich folds at spaces where it can, inside a word only when it must
            rows[-1] = [f"{old} {new}".strip() if new else old for old, new in zip(rows[-1], cells)]
    return {file.replace(" ", ""): (verdict, reason) for file, verdict, reason in rows}


def retrain(stack, model: str, settings: Settings) -> dict:
    result = cli(stack, "retrain", model, "--note", "own images")
    assert result.exit_code == 0, result.output
    run_id = re.search(r"run (\S+) \(", result.stdout).group(1)
    return wait_for_outcome(run_id, settings, Console(stderr=True), timeout_s=240)


def manifest_of(stack, model: str, version: str) -> Manifest:
    return Manifest.from_json(bucket(stack).blob(layout.manifest_object(model, version)).download_as_bytes())


def exported(directory: Path) -> dict[str, list[Path]]:
    return {folder.name: sorted(folder.iterdir()) for folder in sorted(directory.iterdir())}


@pytest.mark.timeout(600)
def test_own_images_import_train_classify_capture_label_retrain_and_export(local_stack, tmp_path):
    settings = Settings(stack_dir=local_stack.directory)
    model = f"shapes-{uuid.uuid4().hex[:6]}"
    # The holdout here is about 32 images, where one image is 3.1%: the default gate (2% regression allowance, 90%
    # accuracy) decides on a single image, and rejected a sound v2 in a CI run (0.906 vs 0.938). This test is about the
    # images' way through the product, so its gate allows a few images; the gate's own rules are tested on their own.
    created = cli(local_stack, "model", "create", model, "--labels", ",".join(SHAPES), "--image-size", str(SIZE),
                  "--set", "gate.max_regression=0.1", "--set", "gate.min_accuracy=0.8")
    assert created.exit_code == 0, created.output
    save_train_config(model, QUICK, settings)  # model create set image_size 96; a one-trial grid keeps the run short

    # --- import: accepted, duplicate, quarantined by on_upload, refused before upload ----------------------
    folder = tmp_path / "my-shapes"
    files = write_dataset(folder)
    first = cli(local_stack, "dataset", "import", str(folder), "--model", model)
    assert first.exit_code == 0, first.output
    assert counted(first.stdout) == {"accepted": 160, "duplicate": 1, "quarantined": 1, "refused": 3, "no verdict": 0}
    assert not_accepted(first.stdout) == {
        "README.md": ("refused", "not in a label folder"),
        "circle/notes.txt": ("refused", "not an image Pillow can read (first bytes 73686f74206f6e20): UnidentifiedImageError"),
        "hexagon/hexagon-00.png": ("refused", "unknown label 'hexagon': the model's labels are circle, cross, square, triangle"),
        "square/square-00.png": ("duplicate", "same bytes as square/copy-of-square-00.png"),
        "square/tiny.png": ("quarantined", "bad_dimensions: 4×4 is outside 8..4096 per side"),
    }
    tiny = hashlib.sha256((folder / "square" / "tiny.png").read_bytes()).hexdigest()[:32]
    tiny_name = layout.dataset_object(model, "square", f"{tiny}.png")
    (tiny_blob,) = [b for b in bucket(local_stack).list_blobs(prefix=tiny_name)]
    assert quarantine_record(local_stack, tiny_name, tiny_blob.generation)["reason"] == "bad_dimensions"
    images = db(local_stack).collection(layout.images_collection(model))
    assert len([s for s in images.stream()]) == 160
    registered = {s.to_dict()["object"] for s in images.stream()}
    webp = next(name for name in files if name.endswith(".webp"))  # WebP is uploaded as PNG, named by the source's hash
    assert layout.dataset_object(model, webp.split("/")[0], f"{hashlib.sha256(files[webp]).hexdigest()[:32]}.png") in registered

    again = cli(local_stack, "dataset", "import", str(folder), "--model", model)
    assert again.exit_code == 0 and "0 uploaded" in again.stdout, again.output
    assert counted(again.stdout) == {"accepted": 0, "duplicate": 161, "quarantined": 1, "refused": 3, "no verdict": 0}

    # --- train v1 at 96×96 ------------------------------------------------------------------------------
    run = retrain(local_stack, model, settings)
    assert run["status"] == "published", run.get("error") or run.get("gate")
    pointer = model_registry.load_pointer(model, settings)
    assert pointer.production.version == "v1" and (pointer.production.input.height, pointer.production.input.width) == (SIZE, SIZE)
    assert manifest_of(local_stack, model, "v1").counts_per_label == {label: PER_CLASS for label in SHAPES}

    # --- a device classifies unseen shapes and captures them ---------------------------------------------
    session = signed_in("shape-user", local_stack.project_id)
    client = EdgeloopClient(model, uid=session.uid, device_id="shape-phone", directory=tmp_path / "device",
                            public_key_pem=load_public_key(local_stack.path / "signing-key.pem"),
                            endpoints=Endpoints.from_client_env(local_stack.client_env()), id_token=session.id_token,
                            settings=DEVICE, seed=0)
    assert client.ensure_model().version == "v1"
    rng = np.random.default_rng(99)
    truth, predictions = [], []
    for index in range(FIELD_IMAGES):
        label = SHAPES[index % len(SHAPES)]
        truth.append(label)
        predictions.append(client.classify(shape_image(label, rng)))
    correct = sum(p.label == t for p, t in zip(predictions, truth))
    print(f"v1 on {FIELD_IMAGES} unseen shapes through client_sdk: {correct} correct")
    assert correct >= FIELD_IMAGES * 3 // 4, [(p.label, t) for p, t in zip(predictions, truth)]
    assert all(p.capture is not None and p.capture_reason == "low_confidence" for p in predictions)
    true_label = {p.capture: t for p, t in zip(predictions, truth)}
    confirmed = predictions[0]
    client.report(confirmed, true_label=truth[0])  # the user confirms the first capture
    # An app on the Firebase SDKs may put the user's label in the upload's metadata; this user says one thing
    # there and another in the report (rules allow one report per capture, under the user's own uid).
    disputed = Prediction(uuid.uuid4().hex, SHAPES[3], 0.4, "v1")
    disputed = dataclasses.replace(disputed, capture=layout.upload_object(model, session.uid, disputed.id, "png"))
    client.outbox.add_upload(disputed.capture, encoded(shape_image(SHAPES[1], rng), "PNG"), "image/png", {
        "predicted_label": disputed.label, "confidence": "0.4", "model_version": "v1",
        layout.CAPTURE_REASON_KEY: "user_report", "label": SHAPES[0]})
    client.report(disputed, true_label=SHAPES[2])
    true_label[disputed.capture] = SHAPES[1]
    assert client.flush().delivered == FIELD_IMAGES + 1 + 2

    def captures() -> dict[str, dict]:
        found = {d["object"]: d for d in (s.to_dict() for s in images.stream()) if d["kind"] == "upload"}
        settled = (len(found) == FIELD_IMAGES + 1 and found.get(confirmed.capture, {}).get("label") == truth[0]
                   and found.get(disputed.capture, {}).get("label_status") == "disputed")
        return found if settled else {}

    found = eventually(captures, 90, "every capture registered, one confirmed, one disputed")
    assert found[confirmed.capture]["confirmed_by"] == "shape-user"

    # --- the operator labels what users left unlabelled or disputed ---------------------------------------
    sheet = tmp_path / "sheet.png"
    listing = cli(local_stack, "label", model, "--sheet", str(sheet))
    assert listing.exit_code == 0, listing.output
    assert f"{FIELD_IMAGES} captures to label" in listing.stdout and "disputed" in listing.stdout
    assert Image.open(sheet).size == (8 * 128, 2 * (128 + 44))
    unlabelled = {s.id: s.to_dict() for s in images.stream() if s.to_dict()["kind"] == "upload" and not s.to_dict()["labelled"]}
    ids = sorted(unlabelled)
    refused = cli(local_stack, "label", model, "--set", f"{ids[0][:10]}=hexagon", "--set", f"{ids[1][:10]}={SHAPES[0]}")
    assert refused.exit_code == 1 and "unknown label 'hexagon'" in refused.stdout and "nothing labelled" in refused.stdout
    assert not any(s.to_dict()["labelled"] for s in images.stream() if s.id in unlabelled)  # none applied
    half = len(ids) // 2
    by_set = [arg for image_id in ids[:half] for arg in ("--set", f"{image_id[:10]}={true_label[unlabelled[image_id]['object']]}")]
    labelled = cli(local_stack, "label", model, *by_set, "--by", "ops-ana")
    assert labelled.exit_code == 0 and "operator:ops-ana" in labelled.stdout, labelled.output
    table = tmp_path / "labels.csv"
    table.write_text("id,label\n" + "".join(f"{i[:10]},{true_label[unlabelled[i]['object']]}\n" for i in ids[half:]))
    labelled = cli(local_stack, "label", model, "--csv", str(table), "--by", "ops-ana")
    assert labelled.exit_code == 0, labelled.output
    assert "no unlabelled or disputed captures" in cli(local_stack, "label", model).stdout
    after = {d["object"]: d for d in (s.to_dict() for s in images.stream()) if d["kind"] == "upload"}
    assert all(d["label"] == true_label[name] for name, d in after.items())
    operator_labelled = [d for d in after.values() if d["confirmed_by"] == "operator:ops-ana"]
    assert len(operator_labelled) == FIELD_IMAGES and all(d["labelled_at"] for d in operator_labelled)
    votes = db(local_stack).document(layout.confirmation_doc(model, disputed.capture)).get().to_dict()["votes"].values()
    assert sorted((v["source"], v["who"], v["label"]) for v in votes) == [
        ("operator", "ops-ana", SHAPES[1]), ("user", "shape-user", SHAPES[2])]  # the metadata's label is on the image

    # --- v2 trains on the labelled captures too -----------------------------------------------------------
    run = retrain(local_stack, model, settings)
    assert run["status"] == "published", run.get("error") or run.get("gate")
    v2 = manifest_of(local_stack, model, "v2")
    assert {e["object"]: e["label"] for e in v2.entries if e["object"].startswith("uploads/")} == true_label
    assert len(v2.entries) == 160 + FIELD_IMAGES + 1

    # --- export writes back exactly each version's training images ----------------------------------------
    production = cli(local_stack, "dataset", "export", model, str(tmp_path / "v1"))
    assert production.exit_code == 0 and "160 images written" in production.stdout, production.output
    written = exported(tmp_path / "v1")
    assert {label: len(paths) for label, paths in written.items()} == {label: PER_CLASS for label in SHAPES}
    png = next(name for name in files if name.endswith(".png"))
    digest = hashlib.sha256(files[png]).hexdigest()[:32]
    assert (tmp_path / "v1" / png.split("/")[0] / f"{digest}.png").read_bytes() == files[png]  # PNG/JPEG byte for byte
    second = cli(local_stack, "dataset", "export", model, str(tmp_path / "v2"), "--version", "v2")
    assert second.exit_code == 0 and f"{160 + FIELD_IMAGES + 1} images written" in second.stdout, second.output
    assert sum(len(paths) for paths in exported(tmp_path / "v2").values()) == 160 + FIELD_IMAGES + 1


def test_an_operator_label_overrides_a_users_and_makes_a_trained_capture_new_data_again(local_stack):
    """The rule on real documents: a user's confirmation (through on_feedback) labels a capture, a run uses it,
    an operator relabels it with `edgeloop label` (naming the labelled capture by its object name), and a later
    user vote changes nothing."""
    from shared.gcp import images as image_store
    from shared.gcp.images import mark_images_used

    settings = Settings(stack_dir=local_stack.directory)
    model = f"relabel-{uuid.uuid4().hex[:6]}"
    assert cli(local_stack, "model", "create", model, "--labels", ",".join(SHAPES)).exit_code == 0
    capture = layout.upload_object(model, "u1", uuid.uuid4().hex, "png")
    blob = bucket(local_stack).blob(capture)
    blob.metadata = {"predicted_label": "circle", "confidence": "0.4", "model_version": "v1",
                     layout.CAPTURE_REASON_KEY: "low_confidence"}
    blob.upload_from_string(encoded(shape_image("square", np.random.default_rng(1)), "PNG"), content_type="image/png")
    report = {"uid": "u1", "model_version": "v1", "predicted_label": "circle", "confidence": 0.4, "correct": True,
              "true_label": "circle", "capture": capture}
    report_sent = datetime.now(timezone.utc).isoformat()
    db(local_stack).document(layout.feedback_doc(model, capture.rsplit("/", 1)[1][:-4])).set(report)
    images = db(local_stack).collection(layout.images_collection(model))

    def image() -> dict:
        found = [s for s in images.stream() if s.to_dict()["object"] == capture]
        return (found[0].id, found[0].to_dict()) if found else None

    image_id, labelled = eventually(lambda: (found := image()) and found[1].get("label") == "circle" and found, 60,
                                    "on_upload and on_feedback to label the capture")
    assert (labelled["confirmed_by"], labelled["label_status"]) == ("u1", "confirmed")
    assert mark_images_used(model, [image_id], "run-1", settings) == 1

    labels = frozenset(SHAPES)
    assert "no unlabelled or disputed captures" in cli(local_stack, "label", model).stdout
    done = cli(local_stack, "label", model, "--set", f"{capture}=square", "--by", "ops-bo")
    assert done.exit_code == 0 and "1 capture(s) now labelled" in done.stdout, done.output
    relabelled = image()[1]
    assert (relabelled["label"], relabelled["labelled"], relabelled["status"]) == ("square", True, "new")
    assert (relabelled["confirmed_by"], relabelled["label_status"]) == ("operator:ops-bo", "operator")
    assert relabelled["labelled_at"] > report_sent
    # The user again (a redelivered report, or another one): the operator's label stands.
    user = image_store.user_vote(parse_feedback(model, report, labels))
    assert image_store.apply_confirmation(db(local_stack), model, capture, user, labels, 1) == 0
    assert image()[1]["label"] == "square"
    recorded = db(local_stack).document(layout.confirmation_doc(model, capture)).get().to_dict()
    assert (recorded["label"], recorded["status"], recorded["decided_by"]) == ("square", "operator", "operator:ops-bo")
