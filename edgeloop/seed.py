"""``edgeloop seed``: the embedded digits dataset into the bucket through the normal upload path.

Every image is an ordinary upload to ``dataset/{model}/{label}/``; on_upload
validates and registers it like any other. Training is paused while the
images arrive, so the hundreds of new-data crossings wait as one pending
request, which the seed's own manual request then serves in a single run.
Re-running is cheap and safe: objects already in the bucket with the same
bytes are not uploaded again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from google.cloud import firestore
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared import integrity, launch_rules, layout
from shared.config import Settings
from shared.digits import LABELS, LabelledImage, load_digits_rgb
from shared.gcp import model_registry, retrain_requests, runs, training_lock
from shared.gcp.clients import firestore_client, storage_client
from shared.retrain import manual_request

UPLOAD_WORKERS = 8
REGISTRATION_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DatasetObject:
    """One image to put under ``dataset/``: its object name, bytes and content type."""

    name: str
    content: bytes
    content_type: str


def upload_objects(bucket, objects: Sequence[DatasetObject], existing: Mapping[str, str | None],
                   advance: Callable[[], None]) -> list[int | None]:
    """The normal upload path for dataset images: each object whose name does not already hold the same bytes
    (``existing``: name → md5 of what the bucket holds) is uploaded; returns each one's new generation, or None
    for those already there. on_upload then validates and registers every upload like any other."""

    def upload(item: DatasetObject) -> int | None:
        try:
            if existing.get(item.name) == integrity.md5_b64(item.content):
                return None
            blob = bucket.blob(item.name)
            blob.upload_from_string(item.content, content_type=item.content_type)
            return int(blob.generation)
        finally:
            advance()

    with ThreadPoolExecutor(UPLOAD_WORKERS) as pool:
        return list(pool.map(upload, objects))


def existing_objects(bucket, prefix: str) -> dict[str, tuple[str | None, int]]:
    """What the bucket holds under ``prefix``: name → (md5, generation)."""
    return {blob.name: (blob.md5_hash, int(blob.generation)) for blob in bucket.list_blobs(prefix=prefix)}


@dataclass(frozen=True)
class SeedOutcome:
    model: str
    images: int
    uploaded: int  # the rest were already there
    registered: int
    seconds: float
    run_id: str | None


def dataset_object_name(model: str, index: int, image: LabelledImage) -> str:
    return layout.dataset_object(model, image.label, f"digit-{index:04d}.png")


def registered_dataset_images(model: str, settings: Settings) -> int:
    query = firestore_client(settings.project_id).collection(layout.images_collection(model)).where(
        filter=firestore.FieldFilter("kind", "==", "dataset")).count()
    return int(query.get()[0][0].value)


def seed_dataset(model: str, settings: Settings, console: Console, train: bool = True, limit: int | None = None) -> SeedOutcome:
    """Upload the digits (the first ``limit`` of them, or all), wait until each is registered, request a run."""
    started = time.perf_counter()
    digits = load_digits_rgb()[:limit]
    model_registry.register_model(model, LABELS, settings)
    training_lock.set_paused(model, True, settings)
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    existing = {name: md5 for name, (md5, _) in existing_objects(bucket, f"{layout.DATASET_PREFIX}/{model}/").items()}
    objects = [DatasetObject(dataset_object_name(model, index, image), image.png(), "image/png")
               for index, image in enumerate(digits)]

    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        uploading = progress.add_task("upload", total=len(digits))
        generations = upload_objects(bucket, objects, existing, lambda: progress.advance(uploading))
        uploaded = sum(generation is not None for generation in generations)
        registering = progress.add_task("register", total=len(digits))
        deadline = time.monotonic() + REGISTRATION_TIMEOUT_S
        while (registered := registered_dataset_images(model, settings)) < len(digits):
            progress.update(registering, completed=registered)
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {registered} of {len(digits)} images registered after {REGISTRATION_TIMEOUT_S:.0f}s; "
                                   "see the on_upload log and the quarantine collection")
            time.sleep(0.5)
        progress.update(registering, completed=registered)

    run_id = None
    if train:
        request = manual_request(model, who="edgeloop seed", note=f"embedded digits dataset, {len(digits)} images")
        retrain_requests.publish_request(request, settings)
        run_id = _wait_for_run(model, request.cause, settings)
    training_lock.set_paused(model, False, settings)
    return SeedOutcome(model, len(digits), uploaded, registered, time.perf_counter() - started, run_id)


def _wait_for_run(model: str, cause: str, settings: Settings, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run_id = (training_lock.training_state(model, settings).get("causes") or {}).get(cause)
        if run_id:
            return run_id
        time.sleep(0.3)
    raise TimeoutError(f"launch_training did not start a run for {cause} within {timeout_s:.0f}s")


def wait_for_outcome(run_id: str, settings: Settings, console: Console, timeout_s: float = 600.0) -> dict:
    """Follow a run until it ends, showing its current stage."""
    deadline = time.monotonic() + timeout_s
    with console.status(f"run {run_id}…") as status:
        while time.monotonic() < deadline:
            run = runs.load_run(run_id, settings)
            if run.get("status") in launch_rules.RunStatus.FINAL:
                return run
            status.update(f"run {run_id}: {run.get('status')} · {run.get('current_stage') or 'starting'}")
            time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not finish within {timeout_s:.0f}s")
