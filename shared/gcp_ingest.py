"""Adapter: turn one finalized Storage object into a registered image or a quarantine record.

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
* an event for a generation that is no longer readable (deleted) is skipped.

Counting without hot spots: each upload writes its own document and its
object's head (one per object name, so never a shared document); the
count query reads index entries (1 read per 1,000), and only ``new`` images are
counted, which the trainer marks ``used`` at snapshot, so a count stays below
the threshold plus the uploads of one run. At 1,000 uploads/s that is 1,000
single-document writes/s spread over distinct documents (Firestore's limit is
per document) and ⌈threshold/1000⌉ read units per upload.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import integrity, launch_rules, layout
from shared.config import Settings
from shared.events import StorageObjectEvent
from shared.gcp_clients import firestore_client, storage_client
from shared.gcp_training import publish_request, training_state
from shared.image_stats import image_statistics
from shared.logs import log
from shared.retrain import RetrainRequest, new_data_cause, new_data_request
from shared.validation import AcceptedImage, Reason, Rejected, check_name, validate_image

QUARANTINE_COLLECTION = "quarantine"
REGISTER_ATTEMPTS = 10  # two generations of one object registering at once: one of them retries
IGNORED_PREFIXES = (layout.QUARANTINE_PREFIX + "/", layout.MODELS_PREFIX + "/")


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # accepted | duplicate | quarantined | ignored | superseded
    image_id: str
    reason: str | None = None
    retrain_request: RetrainRequest | None = None


def model_labels(db: firestore.Client, model: str) -> frozenset[str] | None:
    """The registered label set of ``model``, or None if it is not registered."""
    snapshot = db.document(layout.model_doc(model)).get()
    if not snapshot.exists:
        return None
    labels = snapshot.to_dict().get("labels")
    return frozenset(str(label) for label in labels) if isinstance(labels, list) else None


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


def _quarantine(db: firestore.Client, obj: StorageObjectEvent, image_id: str, rejected: Rejected, model: str | None) -> bool:
    """Record why, copy the object to quarantine/ and take an app's upload away. False if already quarantined."""
    record = {
        "object": obj.name,
        "generation": obj.generation,
        "bucket": obj.bucket,
        "model": model,
        "reason": rejected.reason.value,
        "detail": rejected.detail,
        "size": obj.size,
        "content_type": obj.content_type,
        "created": firestore.SERVER_TIMESTAMP,
    }
    reference = db.collection(QUARANTINE_COLLECTION).document(image_id)
    try:
        reference.create(record)
        fresh = True
    except gexc.AlreadyExists:
        fresh = False
        record = reference.get().to_dict() or record  # label the moved object as the record says, on every attempt
    if rejected.reason is Reason.INVALID_NAME:
        # A path trick is not copied under another name (storage.rules refuse such names from apps anyway);
        # the record is what matters, and the optional uploads lifecycle rule expires the original.
        return fresh
    # Move even on a redelivery: an earlier attempt may have died between the record and the move.
    bucket = storage_client().bucket(obj.bucket)
    source = bucket.blob(obj.name, generation=obj.generation)
    try:
        copy = bucket.copy_blob(source, bucket, layout.quarantine_object(obj.name), source_generation=obj.generation)
        copy.metadata = {"quarantine_reason": record["reason"], "quarantine_detail": record["detail"][:500]}
        copy.patch()
        # Only an app's upload is taken away. dataset/ is the operator's: on_upload may not delete there
        # (infra/terraform/iam.tf), and an object without an image document is never trained on anyway.
        if obj.name.startswith(f"{layout.UPLOADS_PREFIX}/"):
            bucket.delete_blob(obj.name, if_generation_match=obj.generation)
    except (gexc.NotFound, gexc.PreconditionFailed):
        pass  # already moved by an earlier delivery, or replaced by a newer generation: nothing to move
    return fresh


def confirmation(db: firestore.Client, model: str, object_name: str, labels: frozenset[str] | None,
                 transaction: firestore.Transaction | None = None) -> tuple[str, str] | None:
    """(label, uid) a user confirmed for this capture through feedback that arrived before the upload."""
    snapshot = db.document(layout.confirmation_doc(model, object_name)).get(transaction=transaction)
    found = snapshot.to_dict() if snapshot.exists else {}
    label = found.get("true_label")
    return (label, found.get("uid")) if labels is not None and label in labels else None


def _image_document(obj: StorageObjectEvent, image: AcceptedImage, confirmed_by: str | None) -> dict[str, Any]:
    return {
        "object": obj.name,
        "generation": obj.generation,
        "bucket": obj.bucket,
        "kind": image.ref.kind.value,
        "label": image.label,
        "labelled": image.label is not None,
        "confirmed_by": confirmed_by,
        "uid": image.ref.uid,
        "predicted_label": image.predicted_label,
        "confidence": image.confidence,
        "model_version": image.model_version,
        "content_type": obj.content_type,
        "size": obj.size,
        "md5": obj.md5_hash,
        "width": image.width,
        "height": image.height,
        "stats": image_statistics(image.rgb),
        "status": "new",
        "created": firestore.SERVER_TIMESTAMP,
    }


class Registration(str, Enum):
    REGISTERED = "accepted"
    DUPLICATE = "duplicate"  # this generation was registered before (a redelivery)
    SUPERSEDED = "superseded"  # a newer generation of the object was registered first (deliveries are unordered)


def _register(db: firestore.Client, model: str, image_id: str, obj: StorageObjectEvent, image: AcceptedImage,
              labels: frozenset[str] | None) -> tuple[Registration, AcceptedImage]:
    """Create the image document and retire the generation it replaces, in one transaction on the object's head.

    The head names the newest registered generation, so two generations handled at the same time, or in
    the wrong order, leave exactly one of them counted: the newer. An unlabelled capture takes the label a
    user already confirmed; read in the transaction, so a confirmation written meanwhile is not missed.
    """
    head_ref = db.document(layout.object_head_doc(model, obj.name))
    image_ref = db.document(layout.image_doc(model, image_id))

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> tuple[Registration, AcceptedImage]:
        if image_ref.get(transaction=transaction).exists:
            return Registration.DUPLICATE, image
        head = head_ref.get(transaction=transaction)
        newest = int(head.get("generation")) if head.exists else obj.overwrote_generation
        if newest is not None and newest > obj.generation:
            return Registration.SUPERSEDED, image
        previous = None
        if newest is not None and newest != obj.generation:
            candidate = db.document(layout.image_doc(model, layout.image_id(obj.name, newest)))
            previous = candidate if candidate.get(transaction=transaction).exists else None
        registered, confirmed_by = image, None
        if image.label is None:  # feedback may have confirmed this capture before its upload event arrived
            found = confirmation(db, model, obj.name, labels, transaction)
            if found is not None:
                label, confirmed_by = found
                registered = dataclasses.replace(image, label=label)
        transaction.create(image_ref, _image_document(obj, registered, confirmed_by))
        transaction.set(head_ref, {"object": obj.name, "generation": obj.generation, "image_id": image_id})
        if previous is not None:
            transaction.update(previous, {"status": "superseded", "superseded_by": image_id})
        return Registration.REGISTERED, registered

    return apply(db.transaction(max_attempts=REGISTER_ATTEMPTS))


def count_new_labelled(db: firestore.Client, model: str) -> int:
    query = (
        db.collection(layout.images_collection(model))
        .where(filter=firestore.FieldFilter("status", "==", "new"))
        .where(filter=firestore.FieldFilter("labelled", "==", True))
        .count()
    )
    return int(query.get()[0][0].value)


def ingest_object(obj: StorageObjectEvent, settings: Settings) -> IngestOutcome:
    """on_upload's work: validate, register once or quarantine, maybe request a retrain."""
    image_id = layout.image_id(obj.name, obj.generation)
    if obj.event_type != "OBJECT_FINALIZE" or obj.name.startswith(IGNORED_PREFIXES):
        return IngestOutcome("ignored", image_id)
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
        labels = None
        if model is not None:
            try:
                labels = model_labels(db, model)
            except (gexc.InvalidArgument, ValueError):  # a model id Firestore cannot even address
                labels = None
        image = validate_image(obj, content, labels, settings.images)
    except Rejected as rejected:
        fresh = _quarantine(db, obj, image_id, rejected, model)
        log("WARNING", "image_quarantined", rejected.detail, object=obj.name, generation=obj.generation,
            reason=rejected.reason.value, duplicate=not fresh)
        return IngestOutcome("quarantined" if fresh else "duplicate", image_id, rejected.reason.value)

    model = image.ref.model
    registration, image = _register(db, model, image_id, obj, image, labels)
    if registration is Registration.REGISTERED:
        log("INFO", "image_registered", f"{obj.name}#{obj.generation}", object=obj.name, generation=obj.generation,
            model=model, label=image.label, image_id=image_id)
    elif registration is Registration.SUPERSEDED:
        log("INFO", "object_superseded", f"gs://{obj.bucket}/{obj.name}#{obj.generation}: a newer generation was "
            "registered first", object=obj.name, generation=obj.generation)
        return IngestOutcome("superseded", image_id)

    # Checked on redeliveries too: an earlier attempt may have died before publishing. The request's
    # cause is the same each time, and the launcher runs at most one training per cause.
    request = None
    if image.label is not None:
        state = training_state(model, settings)
        since_run = state.get("last_run_id")
        # Once this run's new-data cause is recorded, counting again (a query) and asking again change nothing.
        if not launch_rules.is_recorded(state, new_data_cause(model, since_run)):
            request = new_data_request(model, count_new_labelled(db, model), settings.thresholds.new_data_images, since_run)
            if request is not None:
                publish_request(request, settings)
    return IngestOutcome(registration.value, image_id, retrain_request=request)
