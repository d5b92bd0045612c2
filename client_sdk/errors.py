"""What the client SDK raises on purpose: one base class, narrow subclasses.

An app catches ``ClientError`` for everything, or a subclass when it wants to
react (e.g. ``Offline``: keep using the local model and try again later).
"""

from __future__ import annotations

from enum import Enum

from shared.errors import EdgeloopError


class ClientError(EdgeloopError):
    """Base class of every client_sdk error."""


class Offline(ClientError):
    """The backend could not be reached or answered with a transient error (retry later)."""


class PermissionDenied(ClientError):
    """The security rules refused the request: retrying the same request cannot succeed."""


class RequestRejected(ClientError):
    """The backend refused the request for good (a 4xx other than auth and throttling)."""


class NotFound(ClientError):
    """The document or object does not exist."""


class PointerError(ClientError, ValueError):
    """The ``models/{model}`` document does not follow the registry contract; ``str()`` says where."""


class NoModel(ClientError):
    """No verified model is installed and none could be installed now."""


class RefusalReason(str, Enum):
    SIZE_MISMATCH = "size_mismatch"  # truncated or padded: not the byte count the pointer promised
    DIGEST_MISMATCH = "digest_mismatch"  # corrupted: sha256 differs
    BAD_SIGNATURE = "bad_signature"  # not signed by the pinned key
    UNSUPPORTED = "unsupported"  # needs a newer SDK or an input this SDK cannot feed
    CONTRACT_VIOLATION = "contract_violation"  # the model file disagrees with its pointer (shape, labels)
    UNLOADABLE = "unloadable"  # LiteRT cannot load or run it


class ModelRefused(ClientError):
    """A model was downloaded or offered but failed a check; the active model is unchanged."""

    def __init__(self, reason: RefusalReason, detail: str):
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
