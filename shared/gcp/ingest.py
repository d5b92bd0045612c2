"""Adapter, on_upload's use case: turn one finalized Storage object into a registered image or a quarantine record.

Idempotent under at-least-once, unordered delivery:

* one object generation maps to one document id (``layout.image_id``); it is
  created with ``create()``, so a redelivery finds it and changes nothing;
* the retrain decision is made from an aggregation count of ``status == "new"``
  labelled image documents, never from a counter that a redelivery could bump twice;
* an overwrite (a new generation of the same name) registers the new generation
  and marks the previous generation's document ``superseded``: it is no longer
  the object's content, so it must not be trained on or counted. Each object has
  a head document naming its newest registered generation, and registering is
  one transaction on it, so generations handled at once or newest first (a
  versioned bucket keeps old generations readable) leave only the newest counted;
* an event for a generation that is no longer readable (deleted) is skipped;
* a generation this instance registered is remembered for ``caching.registered_generation_ttl_s``, so its
  repeated notifications cost nothing but the event (an image document is never taken back).

Round trips per image, in order: the download of exactly its generation; the model's labels and
overrides (one ``get_all``, kept by the instance for ``caching.model_definition_ttl_s``); the registration
(one commit creating the image and head documents for a first generation of a dataset object, otherwise
one transaction: begin, one ``get_all`` of image, head and the capture's confirmation, commit); then,
only when the new-data count may have crossed the threshold or this instance's last count is
``caching.new_data_count_interval_s`` old (``shared.count_pacing``), the training state (read after the
registration, so an image registered as a run starts is in its snapshot or counted for the next run) and the
count, which is skipped once the cause is recorded or this instance asked for it.

Counting without hot spots: each upload writes its own document and its
object's head (one per object name, so never a shared document); the
count query reads index entries (1 read per 1,000), and only ``new`` images are
counted, which the trainer marks ``used`` at snapshot, so a count stays below
the threshold plus the uploads of one run. At 1,000 uploads/s that is 1,000
single-document writes/s spread over distinct documents (Firestore's limit is
per document) and ⌈threshold/1000⌉ read units per upload.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core import exceptions as gexc

from shared import integrity, layout
from shared.config import Settings
from shared.events import StorageObjectEvent
from shared.gcp import images, model_settings, retrain_requests
from shared.gcp.clients import firestore_client, storage_client
from shared.gcp.images import Registration
from shared.logs import log
from shared.retrain import RetrainRequest
from shared.ttl_cache import TtlCache
from shared.validation import Rejected, check_name, validate_image

IGNORED_PREFIXES = (layout.QUARANTINE_PREFIX + "/", layout.MODELS_PREFIX + "/")
REMEMBERED_REGISTRATIONS = 10_000  # about 2 MB of keys: minutes of uploads for one instance
_registered_here: TtlCache[bool] = TtlCache(max_entries=REMEMBERED_REGISTRATIONS)  # (project, bucket, image id)


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # accepted | duplicate | quarantined | ignored | superseded
    image_id: str
    reason: str | None = None
    retrain_request: RetrainRequest | None = None


def _read_generation(obj: StorageObjectEvent, settings: Settings) -> bytes | None:
    """The bytes of exactly this generation, or None if it is no longer live."""
    blob = storage_client().bucket(obj.bucket).blob(obj.name, generation=obj.generation)
    try:
        content = blob.download_as_bytes(raw_download=True)
    except gexc.NotFound:
        return None
    # Some emulators ignore ?generation= and return the live object: compare checksums.
    if obj.md5_hash and integrity.md5_b64(content) != obj.md5_hash:
        return None
    return content


def ingest_object(obj: StorageObjectEvent, settings: Settings) -> IngestOutcome:
    """on_upload's work: validate, register once or quarantine, maybe request a retrain."""
    image_id = layout.image_id(obj.name, obj.generation)
    if obj.event_type != "OBJECT_FINALIZE" or obj.name.startswith(IGNORED_PREFIXES):
        return IngestOutcome("ignored", image_id)
    remembered = (settings.project_id, obj.bucket, image_id)
    if _registered_here.get(remembered):
        return IngestOutcome("duplicate", image_id)  # registered here, and everything after it was done
    db = firestore_client(settings.project_id)
    model = obj.name.split("/")[1] if obj.name.count("/") >= 1 else None

    try:
        # A bad name is judged by itself: such an object is never downloaded (or even addressable everywhere).
        check_name(obj.name)
        # An oversized object is judged by its declared size, never downloaded into the function's memory.
        content = _read_generation(obj, settings) if obj.size <= settings.images.max_bytes else b""
        if content is None:
            log("INFO", "object_superseded", f"gs://{obj.bucket}/{obj.name}#{obj.generation} is no longer live",
                object=obj.name, generation=obj.generation)
            return IngestOutcome("superseded", image_id)
        # The model's labels and its own settings, one round trip, kept by this instance for a bounded time.
        labels, own = model_settings.definition(model, settings) if model is not None else (None, settings)
        image = validate_image(obj, content, labels, settings.images)
    except Rejected as rejected:
        fresh = images.quarantine(db, obj, image_id, rejected, model)
        log("WARNING", "image_quarantined", rejected.detail, object=obj.name, generation=obj.generation,
            reason=rejected.reason.value, duplicate=not fresh)
        return IngestOutcome("quarantined" if fresh else "duplicate", image_id, rejected.reason.value)

    model, settings = image.ref.model, own  # the model's own thresholds from here on
    registration, image = images.register(db, model, image_id, obj, image, labels,
                                          settings.thresholds.min_agreeing_labellers)
    if registration is Registration.REGISTERED:
        log("INFO", "image_registered", f"{obj.name}#{obj.generation}", object=obj.name, generation=obj.generation,
            model=model, label=image.label, image_id=image_id)
    elif registration is Registration.SUPERSEDED:
        log("INFO", "object_superseded", f"gs://{obj.bucket}/{obj.name}#{obj.generation}: a newer generation was "
            "registered first", object=obj.name, generation=obj.generation)
        return IngestOutcome("superseded", image_id)

    request = retrain_requests.new_data(model, settings, after_upload=True) if image.label is not None else None
    # Only now: a redelivery after a failed publish must still reach new_data.
    _registered_here.put(remembered, True, settings.caching.registered_generation_ttl_s)
    return IngestOutcome(registration.value, image_id, retrain_request=request)
