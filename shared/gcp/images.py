"""Adapter: the image documents of a model, their confirmations and quarantine records.

One document per accepted object generation (``layout.image_doc``), created
once; a head document per object names its newest registered generation; a
confirmation document per capture holds every label given to it (users'
confirmations through feedback, operators' labels from ``edgeloop label``) as
votes, whichever of upload and vote arrives first, and the image gets the label
``shared.labelling.decide`` makes of them; rejected objects get a quarantine
record with the reason and a copy under ``quarantine/``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.bulk_writer import BulkWriterOptions

from shared import layout
from shared.config import Settings
from shared.events import StorageObjectEvent
from shared.feedback import Feedback
from shared.gcp.clients import firestore_client, storage_client
from shared.labelling import Decision, LabelSource, Vote, decide, votes_of
from shared.validation import AcceptedImage, Reason, Rejected

QUARANTINE_COLLECTION = "quarantine"
REGISTER_ATTEMPTS = 10  # two generations of one object registering at once: one of them retries
BULK_OPS_PER_SECOND = 5_000  # a model's images are a few thousand writes; the 500/s ramp suits cold, huge collections


def quarantine(db: firestore.Client, obj: StorageObjectEvent, image_id: str, rejected: Rejected, model: str | None) -> bool:
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


def confirmation_votes(db: firestore.Client, model: str, object_name: str,
                       transaction: firestore.Transaction | None = None) -> dict[str, Vote]:
    """The labels given to this capture so far (users' confirmations, operators' labels), by vote key."""
    snapshot = db.document(layout.confirmation_doc(model, object_name)).get(transaction=transaction)
    return votes_of(snapshot.to_dict() if snapshot.exists else None)


def _metadata_vote(image: dict[str, Any]) -> Vote | None:
    """The label an app put in the capture's own upload metadata: its user's vote."""
    if image.get("kind") != "upload" or not image.get("metadata_label"):
        return None
    return Vote(LabelSource.USER, str(image.get("uid")), str(image["metadata_label"]))


def _labelled_fields(decision: Decision) -> dict[str, Any]:
    return {"label": decision.label, "labelled": decision.labelled, "confirmed_by": decision.by,
            "label_status": decision.status.value, "label_detail": decision.detail, "labelled_at": decision.at}


def _image_document(obj: StorageObjectEvent, image: AcceptedImage, decision: Decision | None,
                    metadata_label: str | None) -> dict[str, Any]:
    from shared.image_stats import image_statistics  # numpy and PIL: only on_upload registers images

    return {
        "object": obj.name,
        "generation": obj.generation,
        "bucket": obj.bucket,
        "kind": image.ref.kind.value,
        "label": image.label,
        "labelled": image.label is not None,
        "confirmed_by": None,
        "metadata_label": metadata_label,
        "uid": image.ref.uid,
        "predicted_label": image.predicted_label,
        "confidence": image.confidence,
        "model_version": image.model_version,
        "capture_reason": image.capture_reason,
        "content_type": obj.content_type,
        "size": obj.size,
        "md5": obj.md5_hash,
        "width": image.width,
        "height": image.height,
        "stats": image_statistics(image.rgb),
        "status": "new",
        "created": firestore.SERVER_TIMESTAMP,
        **(_labelled_fields(decision) if decision is not None else {}),
    }


class Registration(str, Enum):
    REGISTERED = "accepted"
    DUPLICATE = "duplicate"  # this generation was registered before (a redelivery)
    SUPERSEDED = "superseded"  # a newer generation of the object was registered first (deliveries are unordered)


def first_generation_without_votes(obj: StorageObjectEvent, image: AcceptedImage) -> bool:
    """Whether ``register`` may create the image and head documents in one commit, without a transaction: the
    object had no live generation when this one was written (nothing to supersede) and it is not an app's
    capture (whose votes, given before its upload arrived, must be read in the same transaction as the write:
    ``apply_confirmation`` leaves them for on_upload when the head does not exist yet)."""
    return obj.overwrote_generation is None and image.ref.kind is not layout.ObjectKind.UPLOAD


def register(db: firestore.Client, model: str, image_id: str, obj: StorageObjectEvent, image: AcceptedImage,
             labels: frozenset[str] | None, min_agreeing: int = 1) -> tuple[Registration, AcceptedImage]:
    """Create the image document and retire the generation it replaces, in one transaction on the object's head.

    The head names the newest registered generation, so two generations handled at the same time, or in
    the wrong order, leave exactly one of them counted: the newer. A capture that was labelled before its
    upload arrived (users' confirmations, an operator's label) takes the label ``labelling.decide`` gives
    those votes and its own metadata label; read in the transaction, so a vote written meanwhile is not missed.
    """
    head_ref = db.document(layout.object_head_doc(model, obj.name))
    image_ref = db.document(layout.image_doc(model, image_id))
    head_fields = {"object": obj.name, "generation": obj.generation, "image_id": image_id}
    metadata_label = image.label if image.ref.kind is layout.ObjectKind.UPLOAD else None
    if first_generation_without_votes(obj, image):
        # One commit instead of a transaction: both documents are created only if neither exists, so a
        # redelivery, or an older or newer generation registered first, fails it and takes the full path.
        batch = db.batch()
        batch.create(image_ref, _image_document(obj, image, None, metadata_label))
        batch.create(head_ref, head_fields)
        try:
            batch.commit()
            return Registration.REGISTERED, image
        except (gexc.AlreadyExists, gexc.FailedPrecondition):
            pass
    confirmation_ref = db.document(layout.confirmation_doc(model, obj.name))
    wanted = [image_ref, head_ref] + ([confirmation_ref] if image.ref.kind is layout.ObjectKind.UPLOAD else [])

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> tuple[Registration, AcceptedImage]:
        read = {s.reference.path: s for s in transaction.get_all(wanted)}  # one round trip, not one per document
        if read[image_ref.path].exists:
            return Registration.DUPLICATE, image
        head = read[head_ref.path]
        newest = int(head.get("generation")) if head.exists else obj.overwrote_generation
        if newest is not None and newest > obj.generation:
            return Registration.SUPERSEDED, image
        previous = None
        if newest is not None and newest != obj.generation:
            candidate = db.document(layout.image_doc(model, layout.image_id(obj.name, newest)))
            previous = candidate if candidate.get(transaction=transaction).exists else None
        registered, decision = image, None
        if image.ref.kind is layout.ObjectKind.UPLOAD:  # feedback may have labelled this capture before its upload event arrived
            confirmation = read[confirmation_ref.path]
            votes = list(votes_of(confirmation.to_dict() if confirmation.exists else None).values())
            if votes:
                own = [Vote(LabelSource.USER, str(image.ref.uid), image.label)] if image.label is not None else []
                decision = decide(votes + own, labels, min_agreeing)
                registered = dataclasses.replace(image, label=decision.label)
        transaction.create(image_ref, _image_document(obj, registered, decision, metadata_label))
        transaction.set(head_ref, head_fields)
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


def user_vote(feedback: Feedback) -> Vote:
    """A confirming report as a vote: its user, the true label, the server's time of the report."""
    at = feedback.sent_at or feedback.received_at
    return Vote(LabelSource.USER, feedback.uid, str(feedback.true_label), at.astimezone(timezone.utc).isoformat() if at else "")


def operator_vote(who: str, label: str) -> Vote:
    return Vote(LabelSource.OPERATOR, who, label, datetime.now(timezone.utc).isoformat())


def apply_confirmation(db: firestore.Client, model: str, capture: str, vote: Vote, labels: frozenset[str] | None,
                       min_agreeing: int) -> int:
    """Record one label given to a capture (a user's confirmation or an operator's label) and give its image
    document the label ``labelling.decide`` makes of all its votes. Returns 1 if the image got a (new) label.

    One transaction on the capture's confirmation document, so concurrent votes are all counted and every
    order of arrival ends in the same label. The object's head names its registered generation (older ones
    are superseded and never count): reads by key instead of a query over every image of the model. A
    relabelled image that a run already used counts as new data again.
    """
    confirmation_ref = db.document(layout.confirmation_doc(model, capture))
    head_ref = db.document(layout.object_head_doc(model, capture))

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> int:
        votes = confirmation_votes(db, model, capture, transaction)
        votes.setdefault(vote.key, vote)  # a redelivered report keeps its first record
        head = head_ref.get(transaction=transaction)
        image_ref = db.document(layout.image_doc(model, head.get("image_id"))) if head.exists else None
        image_snapshot = image_ref.get(transaction=transaction) if image_ref is not None else None
        image = image_snapshot.to_dict() if image_snapshot is not None and image_snapshot.exists else {}
        own = _metadata_vote(image)
        decision = decide([*votes.values(), *([own] if own else [])], labels, min_agreeing)
        transaction.set(confirmation_ref, {
            "object": capture, "votes": {key: value.to_dict() for key, value in votes.items()},
            "label": decision.label, "status": decision.status.value, "decided_by": decision.by,
            "detail": decision.detail})
        if not image or image.get("status") not in ("new", "used"):
            return 0  # not registered yet: on_upload applies the votes when it registers the upload
        fields = _labelled_fields(decision)
        if all(image.get(key) == value for key, value in fields.items()):
            return 0
        relabelled = decision.labelled and decision.label != image.get("label")
        if relabelled and image.get("status") == "used":
            fields["status"] = "new"  # trained on with another label (or none): new data again
        transaction.update(image_ref, fields)
        return int(relabelled)

    return apply(db.transaction(max_attempts=REGISTER_ATTEMPTS))


def mark_images_used(model: str, image_ids: Iterable[str], run_id: str, settings: Settings) -> int:
    """Images a run snapshotted no longer count as new data; returns how many were marked.

    Called right after the snapshot, so uploads during the run count only what the run does
    not already train on. Only images still ``new`` are marked, each with a precondition on
    the version read: an image superseded or changed meanwhile keeps its newer state.
    """
    db = firestore_client(settings.project_id)
    wanted = set(image_ids)
    still_new = [
        snapshot for snapshot in db.collection(layout.images_collection(model))
        .where(filter=firestore.FieldFilter("status", "==", "new")).stream()
        if snapshot.id in wanted
    ]
    refused: list[str] = []

    def keep_newer_state(failure, _writer) -> bool:  # a changed document is not retried: its new state stands
        refused.append(failure.operation.reference.id)
        return False

    writer = db.bulk_writer(options=BulkWriterOptions(initial_ops_per_second=BULK_OPS_PER_SECOND,
                                                      max_ops_per_second=BULK_OPS_PER_SECOND))
    writer.on_write_error(keep_newer_state)
    for snapshot in still_new:
        writer.update(snapshot.reference, {"status": "used", "used_by": run_id},
                      option=db.write_option(last_update_time=snapshot.update_time))
    writer.close()
    return len(still_new) - len(refused)


def quarantine_feedback(db: firestore.Client, model: str, feedback_id: str, document: str, detail: str) -> None:
    """Record a feedback report that does not follow the contract (set: a redelivery rewrites the same record)."""
    db.collection(QUARANTINE_COLLECTION).document(f"feedback-{model}-{feedback_id}").set(
        {"document": document, "model": model, "reason": "invalid_feedback", "detail": detail,
         "created": firestore.SERVER_TIMESTAMP}
    )
