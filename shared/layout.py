"""Where things live: Storage object names and Firestore document paths.

Every path in the product is built (and parsed) here, so the functions, the
trainer, the client SDK and the security rules agree on one layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from shared.errors import InvalidObjectNameError

# Storage prefixes.
DATASET_PREFIX = "dataset"
UPLOADS_PREFIX = "uploads"
MODELS_PREFIX = "models"
QUARANTINE_PREFIX = "quarantine"

# One path segment each, safe as a Storage object name segment and a Firestore document id (no '/', no
# leading '.' or '_', never '__...__'): what shared.validation accepts in object names and
# shared.model_settings in ``edgeloop model create``.
MODEL_ID = r"[a-z0-9][a-z0-9_-]{0,62}"
LABEL_ID = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"

MODEL_FILE = "model.tflite"
MAX_OBJECT_NAME_BYTES = 1024  # the GCS limit


class CaptureReason(str, Enum):
    """Why a device uploaded a capture: its upload's ``capture_reason`` metadata, kept on the image document.

    Only ``random_sample`` captures are an unbiased sample of what devices see (drawn before and
    independently of the prediction), so only they are compared with a version's drift baseline.
    """

    LOW_CONFIDENCE = "low_confidence"  # a hard case: less confident than the capture threshold
    RANDOM_SAMPLE = "random_sample"  # a uniform random draw over every inference, whatever its confidence
    USER_REPORT = "user_report"  # the user said the prediction was wrong and the app passed the input


CAPTURE_REASON_KEY = "capture_reason"  # the upload's custom-metadata key
FEEDBACK_SENT_AT = "sent_at"  # a report's server timestamp of its write (firestore.rules require it)
DEVICE_LAST_SEEN = "last_seen"  # a device record's server timestamp of its last report (firestore.rules require it)


class ObjectKind(str, Enum):
    DATASET = "dataset"
    UPLOAD = "upload"
    MODEL = "model"


@dataclass(frozen=True)
class ObjectRef:
    """A parsed Storage object name."""

    kind: ObjectKind
    model: str
    filename: str
    label: str | None = None  # dataset images
    uid: str | None = None  # app uploads
    version: str | None = None  # published models


# --- Storage ---------------------------------------------------------------

def dataset_object(model: str, label: str, filename: str) -> str:
    return f"{DATASET_PREFIX}/{model}/{label}/{filename}"


def upload_object(model: str, uid: str, upload_id: str, extension: str) -> str:
    return f"{UPLOADS_PREFIX}/{model}/{uid}/{upload_id}.{extension}"


def model_object(model: str, version: str, filename: str = MODEL_FILE) -> str:
    return f"{MODELS_PREFIX}/{model}/{version}/{filename}"


def manifest_object(model: str, version: str) -> str:
    return model_object(model, version, "manifest.json")


def signature_object(model: str, version: str) -> str:
    return model_object(model, version, MODEL_FILE + ".sig")


def quarantine_object(object_name: str) -> str:
    return f"{QUARANTINE_PREFIX}/{object_name}"


def parse_object_name(name: str) -> ObjectRef:
    """Parse an object name of the bucket layout, or say precisely why not."""
    if not name:
        raise InvalidObjectNameError("empty object name")
    if len(name.encode("utf-8")) > MAX_OBJECT_NAME_BYTES:
        raise InvalidObjectNameError(f"object name longer than {MAX_OBJECT_NAME_BYTES} bytes")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectNameError(f"object name has an empty, '.' or '..' segment: {name!r}")
    prefix, rest = parts[0], parts[1:]
    shapes = {
        DATASET_PREFIX: "dataset/{model}/{label}/{file}",
        UPLOADS_PREFIX: "uploads/{model}/{uid}/{file}",
        MODELS_PREFIX: "models/{model}/{version}/{file}",
    }
    if prefix not in shapes:
        raise InvalidObjectNameError(f"unknown prefix {prefix!r}; expected one of {sorted(shapes)}")
    if len(rest) != 3:
        raise InvalidObjectNameError(f"expected {shapes[prefix]}, got {name!r}")
    model, middle, filename = rest
    if prefix == DATASET_PREFIX:
        return ObjectRef(ObjectKind.DATASET, model, filename, label=middle)
    if prefix == UPLOADS_PREFIX:
        return ObjectRef(ObjectKind.UPLOAD, model, filename, uid=middle)
    return ObjectRef(ObjectKind.MODEL, model, filename, version=middle)


# --- Firestore -------------------------------------------------------------

def model_doc(model: str) -> str:
    """The one document clients poll."""
    return f"models/{model}"


def versions_collection(model: str) -> str:
    return f"{model_doc(model)}/versions"


def version_doc(model: str, version: str) -> str:
    return f"{versions_collection(model)}/{version}"


def images_collection(model: str) -> str:
    return f"{model_doc(model)}/images"


def image_doc(model: str, image_id: str) -> str:
    return f"{images_collection(model)}/{image_id}"


def feedback_collection(model: str) -> str:
    return f"{model_doc(model)}/feedback"


def feedback_doc(model: str, feedback_id: str) -> str:
    return f"{feedback_collection(model)}/{feedback_id}"


def feedback_users_collection(model: str) -> str:
    """One document per (version, user): the user's counted reports on that version (server-only)."""
    return f"{model_doc(model)}/feedback_users"


def feedback_user_doc(model: str, version: str, uid: str) -> str:
    """Whose reports count: ``{version}~{hash of the uid}`` (a uid may hold any character, a document id may not)."""
    return f"{feedback_users_collection(model)}/{version}~{hashlib.sha256(uid.encode()).hexdigest()[:32]}"


def tally_collection(model: str, version: str) -> str:
    """A version's tally buckets (``shared.tally_buckets``): its counted reports, summed per (time bucket, shard)
    (server-only)."""
    return f"{model_doc(model)}/tallies/{version}/buckets"


def tally_doc(model: str, version: str, bucket: str) -> str:
    return f"{tally_collection(model, version)}/{bucket}"


def object_head_doc(model: str, object_name: str) -> str:
    """The newest generation of one object that on_upload registered: overwrites serialize on it."""
    return f"{model_doc(model)}/objects/{hashlib.sha256(object_name.encode()).hexdigest()[:32]}"


def confirmation_doc(model: str, object_name: str) -> str:
    """A user's confirmed label for one capture, keyed by its object name (whichever of upload and feedback comes first)."""
    return f"{model_doc(model)}/confirmations/{hashlib.sha256(object_name.encode()).hexdigest()[:32]}"


def training_control_doc(model: str) -> str:
    """Training lock, cooldown, folded requests and causes already served (server-only)."""
    return f"{model_doc(model)}/control/training"


def model_settings_doc(model: str) -> str:
    """The model's overrides of the global thresholds, gate, release and client settings (server-only;
    the client overrides are also published on the pointer, ``shared.model_settings``)."""
    return f"{model_doc(model)}/control/settings"


def reconcile_doc(model: str) -> str:
    """How far the scheduler's reconciliation has looked for lost feedback triggers (server-only)."""
    return f"{model_doc(model)}/control/reconcile"


def trainer_config_doc(model: str) -> str:
    """How this model is trained (augmentation kinds and strengths, grid), server-only."""
    return f"{model_doc(model)}/control/trainer"


def drift_reports_collection(model: str) -> str:
    return f"{model_doc(model)}/drift_reports"


def devices_collection(model: str) -> str:
    """The fleet inventory: one record per device user, written by that device only (shared/telemetry.py)."""
    return f"{model_doc(model)}/devices"


def device_doc(model: str, uid: str) -> str:
    """A device's own record: the version it runs, its SDK and class, its last period's predictions and latency,
    and ``last_seen``, the server's time of its last report. Keyed by the user id, as the rules check."""
    return f"{devices_collection(model)}/{uid}"


def run_doc(run_id: str) -> str:
    return f"runs/{run_id}"


def image_id(object_name: str, generation: int) -> str:
    """Stable id of one object generation: redelivery maps to the same document."""
    return hashlib.sha256(f"{object_name}#{generation}".encode("utf-8")).hexdigest()[:32]
