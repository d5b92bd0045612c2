"""Edgeloop's device-side library: inference with the current model, capture, feedback, updates.

Installs without TensorFlow and without the server-side Google Cloud clients:
ai-edge-litert runs the model; Firestore and Storage are reached over HTTP with
the user's Firebase ID token, so the security rules apply.
"""

from client_sdk.client import EdgeloopClient, Prediction
from client_sdk.errors import (
    ClientError, ModelRefused, NoModel, NotFound, Offline, PermissionDenied, PointerError, RefusalReason, RequestRejected,
)
from client_sdk.policy import Conditions, DownloadPolicy
from client_sdk.transport import Endpoints
from client_sdk.updater import UpdateResult, UpdateStatus

__all__ = [
    "ClientError", "Conditions", "DownloadPolicy", "EdgeloopClient", "Endpoints", "ModelRefused", "NoModel", "NotFound",
    "Offline", "PermissionDenied", "PointerError", "Prediction", "RefusalReason", "RequestRejected", "UpdateResult",
    "UpdateStatus",
]
