"""``EdgeloopClient``: what an app embeds — the current model, inference, capture, feedback, updates.

A thin facade over the parts: ``updater`` (poll, download, verify, swap),
``runtime`` (LiteRT), ``capture`` and ``budget`` (what gets uploaded),
``outbox`` (offline queue) and ``transport`` (HTTP with the user's ID token).
Everything it keeps lives under one directory per model, so a restarted app
continues with its verified model, queue and budget.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from client_sdk.budget import CaptureBudget, utc_today
from client_sdk.capture import as_rgb_image, capture_reason, encode_capture
from client_sdk.errors import ClientError, NoModel
from client_sdk.outbox import FlushReport, Outbox
from client_sdk.policy import Conditions, DownloadPolicy
from client_sdk.runtime import LiteRTClassifier
from client_sdk.store import ModelStore
from client_sdk.telemetry import Telemetry
from client_sdk.transport import Endpoints, Transport
from client_sdk.updater import ModelUpdater, UpdateResult, UpdateStatus
from shared import layout
from shared.config import Client
from shared.layout import CaptureReason
from shared.model_settings import device_settings
from shared.registry import ModelRef


@dataclass(frozen=True)
class Prediction:
    id: str  # also the id of its feedback document: one report per prediction
    label: str
    confidence: float
    model_version: str
    capture: str | None = None  # object name of the queued upload, when this input was captured
    capture_reason: str | None = None


class EdgeloopClient:
    def __init__(
        self,
        model: str,
        *,
        uid: str,
        device_id: str,
        directory: str | Path,
        public_key_pem: str,
        endpoints: Endpoints,
        id_token: Callable[[], str],
        settings: Client = Client(),
        policy: DownloadPolicy = DownloadPolicy.LOCAL_WITH_BACKGROUND_UPDATE,
        conditions: Conditions = Conditions(),
        seed: int | None = None,
        today=utc_today,
        device_class: str = "",
    ):
        self.model, self.uid, self.device_id, self.policy = model, uid, device_id, policy
        # What the app asked for; ``settings`` adds the capture defaults the model publishes on its pointer
        # (``edgeloop model create --set client.…``) where the app left the built-in default.
        self.app_settings = self.settings = settings
        root = Path(directory) / model
        self.transport = Transport(endpoints, id_token, settings.request_timeout_s)
        self.store = ModelStore(root / "store")
        self.outbox = Outbox(root / "outbox", settings)
        self.budget = CaptureBudget(root / "budget.json", settings, today)
        # What the fleet inventory shows of this device: version, SDK, ``device_class`` (an app-chosen label such
        # as "pixel-7" or "gateway-arm64", 64 characters of [A-Za-z0-9 ._+()-]), predictions and latency.
        self.telemetry = Telemetry(model, uid, root / "telemetry.json", settings, device_class, today=today)
        self.updater = ModelUpdater(model, device_id, self.transport, self.store, public_key_pem, settings, conditions)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._background: threading.Thread | None = None
        self.last_background_result: UpdateResult | ClientError | None = None
        self._active: ModelRef | None = None
        self._classifier: LiteRTClassifier | None = None
        self._load_installed()

    # --- the model ------------------------------------------------------------------------

    @property
    def active(self) -> ModelRef | None:
        return self._active

    def ensure_model(self) -> ModelRef:
        """The model to run now, following the download policy; ``NoModel`` if there is none yet."""
        if self.policy is DownloadPolicy.LATEST or self._active is None:
            self.check_for_update()
        elif self.policy is DownloadPolicy.LOCAL_WITH_BACKGROUND_UPDATE:
            self.update_in_background()
        if self._active is None:
            raise NoModel(f"no verified model of {self.model!r} is installed yet")
        return self._active

    def check_for_update(self) -> UpdateResult:
        """One pointer read; download, verify and swap only if this device's model changed."""
        result = self.updater.check()
        self._use_model_settings(self.updater.published_client)
        if result.status is UpdateStatus.UPDATED:
            self._swap(result.target, result.classifier)
        return result

    def update_in_background(self) -> None:
        """Start one update check on a background thread unless one is running."""
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self._background_check, name=f"edgeloop-update-{self.model}", daemon=True)
            self._background.start()

    def wait_for_background_update(self, timeout_s: float | None = None) -> None:
        if self._background is not None:
            self._background.join(timeout_s)

    def rollback(self) -> ModelRef | None:
        """Go back to the previous verified model (e.g. the app saw the new one misbehave)."""
        previous = self.store.rollback()
        if previous is not None:
            self._swap(previous, LiteRTClassifier(self.store.read_model(previous)))
        return previous

    # --- inference, capture, feedback -------------------------------------------------------

    def classify(self, image: Image.Image | np.ndarray | bytes) -> Prediction:
        """Top label, its confidence and the model version; queues the input when the capture policy says so."""
        with self._lock:
            ref, classifier = self._active, self._classifier
        if ref is None or classifier is None:
            raise NoModel(f"no verified model of {self.model!r} is installed yet (call ensure_model)")
        rgb = as_rgb_image(image)
        size = (ref.input.width, ref.input.height)
        pixels = np.asarray(rgb if rgb.size == size else rgb.resize(size, Image.BILINEAR), dtype=np.uint8)
        started = time.perf_counter()
        scores = classifier.scores(pixels)
        self.telemetry.record(ref.version, (time.perf_counter() - started) * 1000.0)
        top = int(np.argmax(scores))
        confidence = float(min(1.0, max(0.0, scores[top])))
        prediction = Prediction(uuid.uuid4().hex, ref.labels[top], confidence, ref.version)
        reason = capture_reason(confidence, self._random.random(), self.settings)
        if reason is None:
            return prediction
        name = self._capture(prediction, rgb, reason)
        return prediction if name is None else dataclasses.replace(prediction, capture=name, capture_reason=reason)

    def report(self, prediction: Prediction, correct: bool | None = None, true_label: str | None = None,
               image: Image.Image | np.ndarray | bytes | None = None) -> Prediction:
        """Queue the outcome of ``prediction``: correct or not, and the true label when the user confirmed it.

        With a true label, a captured input becomes a labelled training image (on_feedback labels it).
        When the prediction was wrong and not captured, an app that passes the input it classified
        (``image``) has it uploaded as a ``user_report`` capture, within the daily budget. Returns the
        prediction as reported (with its capture, if one was queued now).
        """
        if true_label is not None:
            if correct is not None and correct != (true_label == prediction.label):
                raise ValueError(f"correct={correct} contradicts true_label {true_label!r} vs predicted {prediction.label!r}")
            correct = true_label == prediction.label
        if correct is None:
            raise ValueError("say whether the prediction was correct, or give the true label")
        if not correct and image is not None and prediction.capture is None:
            reason = CaptureReason.USER_REPORT.value
            name = self._capture(prediction, as_rgb_image(image), reason)
            if name is not None:
                prediction = dataclasses.replace(prediction, capture=name, capture_reason=reason)
        values = {"uid": self.uid, "model_version": prediction.model_version, "predicted_label": prediction.label,
                  "confidence": float(prediction.confidence), "correct": bool(correct)}
        if true_label is not None:
            values["true_label"] = true_label
            if prediction.capture is not None:
                values["capture"] = prediction.capture
        self.outbox.add_feedback(layout.feedback_collection(self.model), prediction.id, values)
        return prediction

    def flush(self, end_period: bool = False) -> FlushReport:
        """Send what is queued; what cannot be sent now stays on disk for the next flush.

        First queues the telemetry report of a period that has ended (``end_period``: of the open one now,
        e.g. before the app goes to the background), within the daily telemetry budget."""
        self.telemetry.queue(self.outbox, force=end_period)
        return self.outbox.flush(self.transport)

    def close(self) -> None:
        self.wait_for_background_update()

    # --- internals --------------------------------------------------------------------------

    def _capture(self, prediction: Prediction, rgb: Image.Image, reason: str) -> str | None:
        """Queue ``rgb`` as the upload of ``prediction`` taken for ``reason``; its object name, or None if over budget."""
        encoded = encode_capture(rgb, self.settings)
        if not self.budget.try_spend(len(encoded.data), reason):
            return None
        name = layout.upload_object(self.model, self.uid, prediction.id, encoded.extension)
        self.outbox.add_upload(name, encoded.data, encoded.content_type, {
            "predicted_label": prediction.label, "confidence": f"{prediction.confidence:.6f}",
            "model_version": prediction.model_version, layout.CAPTURE_REASON_KEY: reason,
        })
        return name

    def _use_model_settings(self, published: dict) -> None:
        settings = device_settings(self.app_settings, published)
        if settings != self.settings:
            self.settings = self.budget.settings = settings

    def _load_installed(self) -> None:
        ref = self.store.active()
        data = self.store.read_model(ref) if ref is not None else None
        if ref is not None and data is not None:
            self._swap(ref, LiteRTClassifier(data))

    def _swap(self, ref: ModelRef, classifier: LiteRTClassifier) -> None:
        with self._lock:
            self._active, self._classifier = ref, classifier

    def _background_check(self) -> None:
        try:
            self.last_background_result = self.check_for_update()
        except ClientError as exc:  # offline or a bad pointer: keep the installed model, try next time
            self.last_background_result = exc
