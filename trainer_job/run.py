"""One training run, end to end: snapshot → download → train → gate → sign → upload → publish.

Every stage is recorded on ``runs/{run_id}`` as it starts and ends (the start
renews the model's training lock). Nothing a client reads changes before the
publish transaction, so a run killed at any stage leaves no partial model:
SIGTERM is caught and the run marked failed with its stage; SIGKILL is noticed
by the launcher (local) or by the lock's expiry (cloud).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from shared import integrity, layout
from shared.config import Settings
from shared.gate import FIELD_IMAGES, FIELD_METRIC, GateResult, evaluate_gate
from shared.gcp import images, model_registry, model_settings, runs, secrets, training_lock
from shared.gcp.clients import firestore_client, storage_client
from shared.launch_rules import RunStatus
from shared.logs import log
from shared.registry import SDK_CONTRACT_VERSION, ModelInput, ModelRef, VersionRecord
from trainer_job.backbone import starting_weights
from trainer_job.devices import describe, training_device
from trainer_job.pipeline import Candidate, TrainConfig, train_candidate, train_candidate_streamed
from trainer_job.snapshot import Manifest, download_images, stream_images, take_snapshot
from trainer_job.stream import ImageCache
from trainer_job.stages import Stages

STAGES = ("snapshot", "download", "train", "gate", "sign", "upload", "publish")
# Fault injection: the trainer stops at the start of this stage and waits to be killed (tests use it).
PAUSE_AT_ENV = "EDGELOOP_TRAINER_PAUSE_AT"


class Terminated(Exception):
    """SIGTERM arrived (a cancelled Cloud Run execution, ``edgeloop down``)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"terminated by signal {signum}")


def load_train_config(model: str, settings: Settings) -> TrainConfig:
    """The model's training configuration (``models/{model}/control/trainer``), defaults when unset."""
    snapshot = firestore_client(settings.project_id).document(layout.trainer_config_doc(model)).get()
    return TrainConfig.model_validate((snapshot.to_dict() or {}).get("config", {}) if snapshot.exists else {})


def save_train_config(model: str, config: TrainConfig, settings: Settings) -> None:
    firestore_client(settings.project_id).document(layout.trainer_config_doc(model)).set(
        {"config": config.model_dump(mode="json")}
    )


def code_version() -> str:
    """The container sets EDGELOOP_CODE_VERSION at build time; a checkout knows its commit."""
    if os.environ.get("EDGELOOP_CODE_VERSION"):
        return os.environ["EDGELOOP_CODE_VERSION"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=os.path.dirname(__file__)).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class TrainingRun:
    """The stages of one run, reporting to its run document."""

    def __init__(self, model: str, run_id: str, settings: Settings, console: Console, seed: int = 0,
                 weights: str | None = None):
        self.model, self.run_id, self.settings, self.console, self.seed = model, run_id, settings, console, seed
        self.weights = weights  # overrides the model's TrainConfig.weights for this run (--weights)
        self.stage: str | None = None
        self.stages = Stages(console, self._enter)
        self._started: float | None = None
        self._signing_key: str | None = None

    def _enter(self, stage: str) -> None:
        self._close_stage()
        self.stage, self._started = stage, time.perf_counter()
        runs.start_stage(self.run_id, stage, self.settings)
        training_lock.renew_lock(self.model, self.run_id, self.settings)  # a stage boundary is a sign of life
        if os.environ.get(PAUSE_AT_ENV) == stage:
            self.console.print(f"[yellow]paused at {stage} ({PAUSE_AT_ENV}); waiting to be killed[/]")
            while True:
                time.sleep(1)

    def _close_stage(self) -> None:
        if self.stage is not None and self._started is not None:
            runs.end_stage(self.run_id, self.stage, time.perf_counter() - self._started, self.settings)
            self._started = None

    def execute(self, manifest_object: str | None = None) -> model_registry.PublishOutcome:
        run = runs.load_run(self.run_id, self.settings)
        if run.get("model") != self.model:
            raise ValueError(f"run {self.run_id} trains {run.get('model')!r}, not {self.model!r}")
        if run.get("status") in RunStatus.FINAL:
            raise RuntimeError(f"run {self.run_id} already ended as {run['status']}")
        version = run["version"]
        pointer = model_registry.load_pointer(self.model, self.settings)
        if pointer is None:
            raise RuntimeError(f"model {self.model!r} is not registered")
        # The model's own gate and release settings (edgeloop model create --set) over the launcher's, read once per run.
        self.settings = model_settings.for_model(self.model, self.settings)
        labels = list(pointer.labels)
        config = self._train_config()
        self._key()  # a missing or unreadable signing key stops the run here, before anything is trained
        self.console.rule(f"[bold]{self.model} {version}[/] · run {self.run_id} · {run.get('reason')}")

        manifest = self.stages.run("snapshot", lambda: self._snapshot(version, labels, manifest_object),
                                   lambda m: f"{len(m.entries)} images · {m.counts_per_label}")
        with tempfile.TemporaryDirectory(prefix="edgeloop-images-") as scratch:  # a streaming run's shards
            data = self.stages.run("download", lambda: self._download(manifest, labels, config, Path(scratch)),
                                   lambda d: _describe_download(d, config.image_size))
            reference = model_registry.download_model(pointer.production, self.settings) if pointer.production else None
            self._record_device()
            candidate: Candidate = self.stages.run(
                "train", lambda: self._train(data, manifest, labels, config, version, reference), _describe_candidate)
        gate: GateResult = self.stages.run(
            "gate", lambda: evaluate_gate(candidate.metrics, self.settings.gate),
            lambda g: ("passed" if g.passed else "REJECTED: " + "; ".join(g.reasons()))
            + "".join(f" · {note}" for note in g.notes))
        ref = None
        if gate.passed:
            signature = self.stages.run("sign", lambda: self._sign(candidate.model_bytes),
                                        lambda s: f"sha256 {integrity.sha256_hex(candidate.model_bytes)[:12]}… Ed25519")
            ref = self.stages.run("upload", lambda: self._upload(version, candidate, labels, config, signature),
                                  lambda r: f"gs://{self.settings.bucket}/{r.path} ({r.size} bytes)")
        record = VersionRecord(
            model=self.model, version=version, run_id=self.run_id, created=datetime.now(timezone.utc),
            stage="candidate", ref=ref, parent=pointer.production.version if pointer.production else None,
            metrics=candidate.metrics, sizes=candidate.sizes, hyperparameters=candidate.hyperparameters,
            trials=list(candidate.trials), gate=gate.to_dict(),
            manifest=manifest.summary(layout.manifest_object(self.model, version)), baseline=candidate.baseline,
            code_version=code_version(), seed=self.seed, backbone=candidate.backbone,
        )
        result = {"metrics": candidate.metrics, "gate": gate.to_dict(), "train_stage_seconds": candidate.stage_seconds,
                  "config": config.model_dump(mode="json"), "backbone": candidate.backbone}
        outcome = self.stages.run("publish", lambda: model_registry.publish_version(record, result, self.settings),
                                  lambda o: f"{o.version} is {o.stage.value}" + (f" at {o.percent:g}%" if o.published else " (run had already ended)"))
        self._close_stage()
        return outcome

    def _train_config(self) -> TrainConfig:
        """The model's TrainConfig with ``--weights`` over it; ImageNet weights that cannot be loaded stop the run here."""
        config = load_train_config(self.model, self.settings)
        if self.weights is not None:
            config = TrainConfig.model_validate({**config.model_dump(), "weights": self.weights})
        starting_weights(config.backbone, config.weights)
        return config

    def _snapshot(self, version: str, labels: list[str], manifest_object: str | None) -> Manifest:
        bucket = storage_client(self.settings.project_id).bucket(self.settings.bucket)
        if manifest_object:  # a rerun of an earlier run's exact data
            manifest = Manifest.from_json(bucket.blob(manifest_object).download_as_bytes())
        else:
            manifest = take_snapshot(self.model, labels, self.settings)
        path = layout.manifest_object(self.model, version)
        model_registry.upload_artifact(path, manifest.to_json(), self.settings, "application/json")
        firestore_client(self.settings.project_id).document(layout.run_doc(self.run_id)).update(
            {"manifest": manifest.summary(path)})
        # From here on these images are this run's: uploads during training count only what it does not learn from.
        images.mark_images_used(self.model, [e["image_id"] for e in manifest.entries], self.run_id, self.settings)
        return manifest

    def _record_device(self) -> None:
        """Log and record on the run the device it trains on (a GPU only when TensorFlow can really use it)."""
        device = training_device()
        self.console.print(f"  {describe(device)}")
        log("INFO", "trainer_device", describe(device), model=self.model, run_id=self.run_id, device=device)
        firestore_client(self.settings.project_id).document(layout.run_doc(self.run_id)).update({"device": device})

    def _download(self, manifest: Manifest, labels: list[str], config: TrainConfig, scratch: Path):
        """The manifest's images: decoded into memory, or (``config.streams``) split and decoded into sharded
        TFRecords under ``scratch`` (``trainer_job.stream``)."""
        columns = (TextColumn("  download"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task("download", total=len(manifest.entries))
            advance = lambda: progress.advance(task)  # noqa: E731
            if not config.streams(len(manifest.entries)):
                return download_images(manifest, labels, config.image_size, self.settings, advance)
            return stream_images(manifest, labels, config, self.seed, self.settings.gate.field_holdout_share,
                                 self.settings, scratch, advance)

    def _train(self, data, manifest: Manifest, labels: list[str], config: TrainConfig, version: str,
               reference: bytes | None) -> Candidate:
        common = dict(model_name=self.model, version=version, console=self.console, reference_model=reference)
        if isinstance(data, ImageCache):
            return train_candidate_streamed(data, labels, config, self.seed, **common)
        images, label_ids = data
        return train_candidate(images, label_ids, labels, config, self.seed, **common,
                               field_captures=manifest.field_mask(),
                               field_holdout=manifest.field_holdout_mask(self.settings.gate.field_holdout_share))

    def _key(self) -> str:
        """The signing key, read once per run (Secret Manager when configured; see shared.gcp.secrets)."""
        if self._signing_key is None:
            self._signing_key = secrets.signing_key(self.settings)
        return self._signing_key

    def _sign(self, model_bytes: bytes) -> str:
        return integrity.sign(self._key(), model_bytes)

    def _upload(self, version: str, candidate: Candidate, labels: list[str], config: TrainConfig, signature: str) -> ModelRef:
        path = layout.model_object(self.model, version)
        model_registry.upload_artifact(path, candidate.model_bytes, self.settings)
        model_registry.upload_artifact(layout.signature_object(self.model, version), signature.encode("ascii"),
                                     self.settings, "text/plain")
        return ModelRef(
            version=version, path=path, sha256=integrity.sha256_hex(candidate.model_bytes),
            size=len(candidate.model_bytes), signature=signature, labels=tuple(labels),
            input=ModelInput(height=config.image_size, width=config.image_size), min_sdk_version=SDK_CONTRACT_VERSION,
        )


def _describe_download(data, size: int) -> str:
    if isinstance(data, ImageCache):
        shards = sum(len(files) for files in data.shards.values())
        return (f"{sum(data.count(part) for part in data.shards)} images decoded at {size}×{size} into {shards} "
                f"shards on local disk (streamed)")
    return f"{len(data[0])} images decoded at {size}×{size}"


def _describe_candidate(candidate: Candidate) -> str:
    m = candidate.metrics
    field = (f" · field holdout ({m[FIELD_IMAGES]}) {m[FIELD_METRIC]:.4f}" if m.get(FIELD_IMAGES) else " · no field holdout")
    return f"int8 holdout {m['int8_accuracy']:.4f}{field} · dark {m['int8_drifted_accuracy']:.4f}"


def main(model: str, run_id: str, settings: Settings, manifest_object: str | None = None, seed: int = 0,
         weights: str | None = None) -> int:
    """Run the trainer; the exit code says whether a run outcome (published or rejected) was recorded."""
    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, _raise_terminated)
    run = TrainingRun(model, run_id, settings, console, seed, weights)
    try:
        with training_lock.lock_heartbeat(model, run_id, settings):
            outcome = run.execute(manifest_object)
    except BaseException as exc:  # noqa: BLE001 - every way out must leave the run marked and the lock free
        stage = run.stage or "start"
        error = f"{type(exc).__name__}: {exc}"
        console.print(f"[bold red]✗ run {run_id} failed at {stage}:[/] {error}")
        training_lock.complete_run(run_id, RunStatus.FAILED, {}, settings, failed_stage=stage, error=error[:1000])
        if isinstance(exc, KeyboardInterrupt):
            raise
        return 143 if isinstance(exc, Terminated) else 1
    log("INFO", "trainer_finished", f"{model} {outcome.version}: {outcome.stage.value}", model=model, run_id=run_id,
        version=outcome.version, stage=outcome.stage.value, percent=outcome.percent)
    return 0
