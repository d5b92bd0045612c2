"""The update check: one document read, then download, verify and swap only if the model changed.

Steps: read ``models/{model}`` → pick production or the canary for this
device's rollout bucket → same version and sha256 as the active model: done
(zero model bytes) → refused before, needs a newer SDK, or conditions unmet:
done → the file is still on the device (a rollback to the previous version):
verify it and swap, no download → otherwise download (resumable), verify
(size, sha256, signature, contract, a real inference) and swap atomically.
A refused offer (the bytes and the pointer's claims about them) is remembered and never becomes active.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from client_sdk.contract import check_supported, verify_model
from client_sdk.download import download_model
from client_sdk.errors import ModelRefused
from client_sdk.pointer import parse_pointer
from client_sdk.policy import Conditions
from client_sdk.runtime import LiteRTClassifier
from client_sdk.store import ModelStore
from client_sdk.transport import Transport
from shared import layout
from shared.config import Client
from shared.registry import ModelRef
from shared.rollout import model_for_device


class UpdateStatus(str, Enum):
    UNCHANGED = "unchanged"
    UPDATED = "updated"
    REFUSED = "refused"
    DEFERRED = "deferred"  # conditions (Wi-Fi, charging) not met
    NOTHING_PUBLISHED = "nothing_published"


@dataclass(frozen=True)
class UpdateResult:
    status: UpdateStatus
    target: ModelRef | None  # what the pointer offers this device
    detail: str = ""
    classifier: LiteRTClassifier | None = None  # the verified, loaded model when UPDATED


class ModelUpdater:
    def __init__(self, model: str, device_id: str, transport: Transport, store: ModelStore, public_key_pem: str,
                 settings: Client, conditions: Conditions = Conditions()):
        self.model, self.device_id = model, device_id
        self.transport, self.store = transport, store
        self.public_key_pem, self.settings, self.conditions = public_key_pem, settings, conditions
        self.published_client: dict = {}  # the model's capture defaults, as the last pointer read published them

    def check(self) -> UpdateResult:
        """Raises ``Offline`` when the backend is unreachable and ``PointerError`` for a malformed pointer."""
        pointer = parse_pointer(self.model, self.transport.get_document(layout.model_doc(self.model)))
        self.published_client = dict(pointer.client)
        target = model_for_device(pointer, self.device_id)
        if target is None:
            return UpdateResult(UpdateStatus.NOTHING_PUBLISHED, None, "the pointer names no model yet")
        active = self.store.active()
        if active is not None and (active.version, active.sha256) == (target.version, target.sha256):
            return UpdateResult(UpdateStatus.UNCHANGED, target)
        known = self.store.refusal(target)
        if known is not None:
            return UpdateResult(UpdateStatus.REFUSED, target, f"refused before: {known}")
        try:
            check_supported(target)  # not remembered: an app update may bring a newer SDK
        except ModelRefused as refused:
            return UpdateResult(UpdateStatus.REFUSED, target, str(refused))
        try:
            kept = self.store.read_model(target)
            if kept is None:
                unmet = self.conditions.unmet()
                if unmet:
                    return UpdateResult(UpdateStatus.DEFERRED, target, f"waiting for {', '.join(unmet)}")
                data = download_model(self.transport, target, self.store.partial_path(target), self.settings)
            else:
                data = kept
            classifier = verify_model(target, data, self.public_key_pem)
        except ModelRefused as refused:
            self.store.remember_refusal(target, str(refused))
            return UpdateResult(UpdateStatus.REFUSED, target, str(refused))
        self.store.install(target, data)
        return UpdateResult(UpdateStatus.UPDATED, target, classifier=classifier)
