"""``edgeloop dataset import|export``: a folder of images per label in and out of a model's dataset.

Import goes through the normal upload path (``edgeloop.seed.upload_objects``): every file becomes an
object ``dataset/{model}/{label}/{sha256 of its bytes}.{png|jpg}`` and on_upload validates and registers
it (or quarantines it with the reason) like any other upload. Naming objects by their content makes an
import idempotent and resumable: a file whose object is already in the bucket is not uploaded again,
whatever its file name, and a second run after an interrupted one uploads only what is missing.

What is refused before anything is uploaded, each with its reason: sub-folders that are not one of the
model's labels, files that are not images, files outside a label folder, and the same bytes under two
labels. PNG and JPEG files are uploaded as they are; WebP (and any other format Pillow reads) is
re-encoded as PNG, and an image larger than on_upload accepts is scaled down to fit, so images of any
size and these formats come in. The verdict of each file is on_upload's: its image document (accepted)
or its quarantine record (quarantined, with on_upload's reason).

Export writes exactly the images of one version's manifest (the object generations it was trained on)
into the same layout, one sub-folder per label.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PIL import Image, UnidentifiedImageError

from shared import layout
from shared.config import ImageLimits, Settings

# Formats on_upload takes as they are: Pillow's format name → (content type, object name extension).
UPLOADED_AS_IS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg")}
CONTENT_HASH_CHARS = 32  # of the sha256 hex digest in the object name: 128 bits, no collision in any dataset
VERDICT_POLL_S = 0.5
VERDICT_TIMEOUT_S = 300.0
VERDICT_BATCH = 300  # documents per batched read (Firestore's get_all)
SHOWN_PROBLEMS = 30  # rows of the "not accepted" table; the rest are counted


class Verdict(str, Enum):
    ACCEPTED = "accepted"  # on_upload registered it (an image document)
    DUPLICATE = "duplicate"  # the same bytes were imported before (or twice in this folder): not uploaded again
    QUARANTINED = "quarantined"  # on_upload refused it (a quarantine record with the reason)
    REFUSED = "refused"  # refused before upload: unknown label, not an image, outside a label folder, two labels
    WAITING = "no verdict"  # uploaded, but on_upload had not decided within the wait


class NotAnImage(ValueError):
    """A file Pillow cannot read as an image; the message says what it is."""


@dataclass(frozen=True)
class Prepared:
    content: bytes
    content_type: str
    extension: str
    digest: str  # sha256 of the source file's bytes: the object's name
    note: str = ""  # what was changed on the way ("WebP → PNG", "scaled 5000×20 → 4096×16")


@dataclass
class ImportRow:
    source: str  # the file, relative to the imported folder
    label: str | None
    verdict: Verdict | None = None
    reason: str = ""
    object_name: str | None = None
    generation: int | None = None
    prepared: Prepared | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImportReport:
    model: str
    rows: tuple[ImportRow, ...]
    uploaded: int
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(row.verdict.value for row in self.rows if row.verdict is not None)
        return {verdict.value: counted.get(verdict.value, 0) for verdict in Verdict}


def prepare(data: bytes, limits: ImageLimits) -> Prepared:
    """The bytes to upload for one image file, or NotAnImage. PNG and JPEG within the limits go as they are
    (a corrupt one too: on_upload's quarantine record says what is wrong with it)."""
    digest = hashlib.sha256(data).hexdigest()[:CONTENT_HASH_CHARS]
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        kind = image.format
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        started = data[:8].hex()
        raise NotAnImage(f"not an image Pillow can read (first bytes {started}): {type(exc).__name__}") from None
    too_big = max(width, height) > limits.max_side or len(data) > limits.max_bytes or width * height > limits.max_pixels
    if kind in UPLOADED_AS_IS and not too_big:
        content_type, extension = UPLOADED_AS_IS[kind]
        return Prepared(data, content_type, extension, digest)
    try:
        image.load()
        rgb = image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage(f"{kind} data cannot be decoded: {exc}") from None
    note = f"{kind} → PNG" if kind not in UPLOADED_AS_IS else f"{kind} re-encoded"
    if too_big:
        rgb.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
        note += f", scaled {width}×{height} → {rgb.width}×{rgb.height}"
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", optimize=True)
    return Prepared(buffer.getvalue(), "image/png", "png", digest, note)


def object_name(model: str, label: str, prepared: Prepared) -> str:
    return layout.dataset_object(model, label, f"{prepared.digest}.{prepared.extension}")


def digest_of(name: str) -> str:
    """The content hash an imported object's name carries (its file name without extension)."""
    return name.rsplit("/", 1)[-1].split(".", 1)[0]


def scan(directory: Path, labels: frozenset[str]) -> list[ImportRow]:
    """Every file under ``directory`` as a row: a candidate (label set, no verdict) or refused with the reason."""
    rows: list[ImportRow] = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        parts = relative.parts
        if len(parts) == 1:
            rows.append(ImportRow(str(relative), None, Verdict.REFUSED, "not in a label folder"))
        elif len(parts) > 2:
            rows.append(ImportRow(str(relative), parts[0], Verdict.REFUSED,
                                  "nested folder: images go directly in a label folder"))
        elif parts[0] not in labels:
            rows.append(ImportRow(str(relative), parts[0], Verdict.REFUSED,
                                  f"unknown label {parts[0]!r}: the model's labels are {', '.join(sorted(labels))}"))
        else:
            rows.append(ImportRow(str(relative), parts[0]))
    return rows


def plan(model: str, rows: Sequence[ImportRow], read: Callable[[str], bytes], limits: ImageLimits,
         existing: Iterable[str]) -> list[ImportRow]:
    """Prepare each candidate and name its object; refuse non-images and the same bytes under two labels, and
    mark as duplicates what the bucket already holds (``existing`` object names) or this folder holds twice.
    Returns the rows to upload."""
    existing_names = set(existing)
    known: dict[str, str] = {}  # content hash → label it is already under (bucket first, then this folder)
    for name in existing_names:
        ref = layout.parse_object_name(name)
        if ref.label is not None:
            known.setdefault(digest_of(name), ref.label)
    first_in_folder: dict[str, str] = {}
    to_upload: list[ImportRow] = []
    for row in rows:
        if row.verdict is not None:
            continue
        try:
            prepared = prepare(read(row.source), limits)
        except NotAnImage as exc:
            row.verdict, row.reason = Verdict.REFUSED, str(exc)
            continue
        row.prepared, row.object_name = prepared, object_name(model, row.label, prepared)
        other = known.get(prepared.digest)
        if other is not None and other != row.label:
            row.verdict = Verdict.REFUSED
            row.reason = f"the same image is already labelled {other!r}" + (
                f" ({first_in_folder[prepared.digest]})" if prepared.digest in first_in_folder else " in the dataset")
        elif row.object_name in existing_names:
            row.verdict, row.reason = Verdict.DUPLICATE, "imported before"
        elif prepared.digest in first_in_folder:
            row.verdict, row.reason = Verdict.DUPLICATE, f"same bytes as {first_in_folder[prepared.digest]}"
        else:
            known[prepared.digest] = row.label
            first_in_folder[prepared.digest] = row.source
            to_upload.append(row)
    return to_upload


def export_path(directory: Path, entry: dict, taken: set[Path]) -> Path:
    """Where one manifest entry goes: ``DIR/{label}/{object's file name}`` (prefixed by its image id if two
    objects of one label share a file name)."""
    filename = entry["object"].rsplit("/", 1)[-1]
    path = directory / entry["label"] / filename
    if path in taken:
        path = directory / entry["label"] / f"{entry['image_id'][:12]}-{filename}"
    taken.add(path)
    return path


# --- against a project: Storage and Firestore through the product's clients ----------------------------------

def import_dataset(model: str, directory: Path, settings: Settings, progress, timeout_s: float = VERDICT_TIMEOUT_S
                   ) -> ImportReport:
    """Upload the new images of ``directory`` (one sub-folder per label) and collect on_upload's verdicts."""
    from edgeloop.seed import DatasetObject, existing_objects, upload_objects
    from shared.gcp import model_registry, training_lock
    from shared.gcp.clients import storage_client

    started = time.perf_counter()
    labels = model_registry.model_labels(model, settings)
    if labels is None:
        raise LookupError(f"model {model!r} is not registered: create it first (edgeloop model create {model} "
                          "--labels a,b,c)")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder")
    rows = scan(directory, labels)
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    existing = existing_objects(bucket, f"{layout.DATASET_PREFIX}/{model}/")
    reading = progress.add_task("read", total=sum(row.verdict is None for row in rows))

    def read(source: str) -> bytes:
        progress.advance(reading)
        return (directory / source).read_bytes()

    to_upload = plan(model, rows, read, settings.images, existing)
    for row in rows:  # what was imported before keeps its earlier verdict's object
        if row.verdict is Verdict.DUPLICATE and row.object_name in existing:
            row.generation = existing[row.object_name][1]
    # Training waits while the images arrive (as for `edgeloop seed`): new-data requests are kept pending
    # instead of each starting a run on part of the folder. A model already paused stays paused.
    was_paused = bool(training_lock.training_state(model, settings).get("paused"))
    training_lock.set_paused(model, True, settings)
    try:
        uploading = progress.add_task("upload", total=len(to_upload))
        objects = [DatasetObject(row.object_name, row.prepared.content, row.prepared.content_type) for row in to_upload]
        generations = upload_objects(bucket, objects, {}, lambda: progress.advance(uploading))
        for row, generation in zip(to_upload, generations):
            row.generation = generation
        waiting = [row for row in rows if row.generation is not None and row.verdict is not Verdict.REFUSED]
        _collect_verdicts(model, waiting, settings, progress, timeout_s)
    finally:
        if not was_paused:
            training_lock.set_paused(model, False, settings)
    return ImportReport(model, tuple(rows), len(to_upload), time.perf_counter() - started)


def _collect_verdicts(model: str, rows: Sequence[ImportRow], settings: Settings, progress, timeout_s: float) -> None:
    """Wait for on_upload's verdict on each uploaded (or earlier imported) object: an image document or a
    quarantine record, both keyed by ``layout.image_id(name, generation)``."""
    from shared.gcp.clients import firestore_client
    from shared.gcp.images import QUARANTINE_COLLECTION

    db = firestore_client(settings.project_id)
    deciding = progress.add_task("verdicts", total=len(rows))
    open_rows = {layout.image_id(row.object_name, row.generation): row for row in rows}
    decided = 0
    deadline = time.monotonic() + timeout_s
    while open_rows:
        ids = list(open_rows)
        for start in range(0, len(ids), VERDICT_BATCH):
            batch = ids[start:start + VERDICT_BATCH]
            references = [db.document(layout.image_doc(model, image_id)) for image_id in batch]
            references += [db.collection(QUARANTINE_COLLECTION).document(image_id) for image_id in batch]
            for snapshot in db.get_all(references):
                row = open_rows.get(snapshot.id)
                if not snapshot.exists or row is None:
                    continue
                found = snapshot.to_dict()
                duplicate = row.verdict is Verdict.DUPLICATE
                if snapshot.reference.parent.id == QUARANTINE_COLLECTION:
                    row.verdict = Verdict.QUARANTINED
                    row.reason = f"{found.get('reason')}: {found.get('detail')}" + (" (imported before)" if duplicate else "")
                elif not duplicate:
                    row.verdict = Verdict.ACCEPTED
                    if row.prepared is not None and row.prepared.note:
                        row.reason = row.prepared.note
                del open_rows[snapshot.id]
                decided += 1
        progress.update(deciding, completed=decided)
        if not open_rows or time.monotonic() > deadline:
            break
        time.sleep(VERDICT_POLL_S)
    for row in open_rows.values():
        if row.verdict is None:
            row.verdict = Verdict.WAITING
            row.reason = f"on_upload had not decided after {timeout_s:.0f} s: run the import again to see it"


@dataclass(frozen=True)
class ExportReport:
    model: str
    version: str
    images: int
    counts_per_label: dict[str, int]
    directory: Path


def export_dataset(model: str, version: str | None, directory: Path, settings: Settings, progress) -> ExportReport:
    """Write exactly the images of ``version``'s manifest (default: production) to ``directory/{label}/``."""
    from concurrent.futures import ThreadPoolExecutor

    from edgeloop.seed import UPLOAD_WORKERS
    from shared.gcp import model_registry
    from shared.gcp.clients import storage_client
    from trainer_job import Manifest

    if version is None:
        pointer = model_registry.load_pointer(model, settings)
        if pointer is None:
            raise LookupError(f"model {model!r} is not registered")
        if pointer.production is None:
            raise LookupError(f"model {model!r} has no production version yet: name one with --version")
        version = pointer.production.version
    record = model_registry.load_version(model, version, settings)
    if record is None:
        raise LookupError(f"{model} has no version {version!r}")
    path = (record.manifest or {}).get("path") or layout.manifest_object(model, version)
    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    manifest = Manifest.from_json(bucket.blob(path).download_as_bytes())
    taken: set[Path] = set()
    targets = [(entry, export_path(directory, entry, taken)) for entry in manifest.entries]
    writing = progress.add_task("export", total=len(targets))

    def write(item: tuple[dict, Path]) -> None:
        entry, target = item
        content = bucket.blob(entry["object"], generation=int(entry["generation"])).download_as_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        progress.advance(writing)

    with ThreadPoolExecutor(UPLOAD_WORKERS) as pool:
        list(pool.map(write, targets))
    return ExportReport(model, version, len(targets), manifest.counts_per_label, directory)
