"""The one typed configuration: defaults here, overrides from the environment.

Every setting can be overridden with an ``EDGELOOP_`` variable; nested fields use
``__``, e.g. ``EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES=50`` or
``EDGELOOP_PORTS__FIRESTORE=8080``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Topics(BaseModel):
    """Pub/Sub topic ids. Ids need at least 3 characters (emulator and GCP)."""

    storage_events: str = "storage-events"
    retrain_requests: str = "retrain-requests"
    drift_checks: str = "drift-checks"
    dead_letter_suffix: str = "-dead-letter"

    def dead_letter(self, topic: str) -> str:
        return f"{topic}{self.dead_letter_suffix}"


class Thresholds(BaseModel):
    """Business thresholds; the rules that use them are plain functions."""

    new_data_images: int = Field(200, ge=1, description="labelled images since last training that trigger a retrain")
    min_success_rate: float = Field(0.85, gt=0, lt=1, description="retrain when the success-rate upper bound falls below this")
    min_feedback_samples: int = Field(100, ge=1, description="feedback needed before a success rate is trusted")
    success_window_s: int = Field(
        7 * 24 * 3600, ge=60,
        description="a version's success rate (and its retrain trigger) counts the reports received this recently")
    feedback_per_user_cap: int = Field(
        10, ge=1, le=1000,
        description="reports of one user counted per version within success_window_s; the user's further reports are "
                    "stored (and label their captures) but count toward no decision")
    tally_bucket_s: int = Field(
        3600, ge=1, le=86400,
        description="counted reports are tallied per version in time buckets this long (shared/tally_buckets.py): "
                    "a windowed success rate sums the buckets from the one holding the window's start, so it may "
                    "also count reports up to this much older than success_window_s")
    tally_shards: int = Field(
        32, ge=1, le=1000,
        description="tally documents per version and bucket, a report's picked by a hash of its path: each takes "
                    "about 1/tally_shards of the version's report rate (Firestore sustains about one write a second "
                    "per document); a windowed sum reads (success_window_s / tally_bucket_s + 1) x tally_shards "
                    "index entries at most")
    min_distinct_users: int = Field(
        10, ge=1, description="distinct users with counted reports in the window before a success-rate retrain is asked")
    min_agreeing_labellers: int = Field(
        1, ge=1, description="distinct users who must agree on a capture's label (and outnumber every other label) "
                             "before it is trained on; an operator's label overrides them (shared/labelling.py)")
    drift_min_samples: int = Field(50, ge=1, description="recent inputs needed before a drift test is run")
    drift_p_value: float = Field(0.01, gt=0, lt=1, description="KS-test significance (family-wise, Bonferroni)")
    drift_min_effect: float = Field(0.2, gt=0, le=1, description="smallest KS statistic that counts as drift")
    drift_max_label_distance: float = Field(0.35, gt=0, le=1, description="Jensen-Shannon distance of the label mix")
    drift_window_s: int = Field(24 * 3600, ge=60, description="how far back a drift check looks at inputs")
    drift_max_recent: int = Field(1000, ge=1, description="most recent inputs a drift check reads")
    drift_retrain: str = Field(
        "when_harmful", pattern="^(when_harmful|always)$",
        description="when_harmful: a drift is retrained on only if the version's field success over the drift window "
                    "is confidently below its gate accuracy minus release.max_drop (else it is reported); always: every drift")
    reconcile_after_s: int = Field(600, ge=0, description="an object or report with no handled event this long after "
                                   "its creation is taken as lost and handled by the scheduler's tick")


class Delivery(BaseModel):
    """At-least-once delivery settings for every push subscription."""

    max_delivery_attempts: int = Field(5, ge=5, le=100, description="then the message goes to the dead-letter topic")
    ack_deadline_s: int = Field(60, ge=10, le=600)
    min_backoff_s: int = Field(1, ge=0, le=600)
    max_backoff_s: int = Field(30, ge=0, le=600)


class Caching(BaseModel):
    """What a function instance keeps between events, and for how long (``shared.ttl_cache``)."""

    model_definition_ttl_s: float = Field(
        30.0, ge=0, le=3600,
        description="on_upload and on_feedback read a model's labels and per-model overrides (edgeloop model create) "
                    "at most this long after their instance last read them; 0: on every event. A changed override (or "
                    "label set) applies to uploads and reports within this delay; a model created after an upload or "
                    "report arrived is seen at once")
    published_cause_ttl_s: float = Field(
        300.0, ge=0, le=3600,
        description="how long an instance remembers a new-data retrain cause it published: meanwhile it neither "
                    "counts nor asks again for it (launch_training serves each cause once; it records the cause "
                    "within seconds, and a request lost on the way is asked again after this delay); 0: never")
    registered_generation_ttl_s: float = Field(
        600.0, ge=0, le=86400,
        description="on_upload remembers the object generations its instance registered (the newest "
                    "REMEMBERED_REGISTRATIONS of them) this long: a repeated notification of one (Cloud Storage "
                    "notifies at least once) is answered as a duplicate without downloading or reading anything; "
                    "other instances find the image document as before; 0: never")
    new_data_count_interval_s: float = Field(
        2.0, ge=0, le=3600,
        description="on_upload runs the new-data count query again only when the last count it ran plus the images "
                    "it registered since could reach the threshold, or when that count is this old (other instances "
                    "register images too; shared.count_pacing); the scheduler's tick counts for every model, so a "
                    "crossing is asked at most a tick late when uploads stop; 0: count after every labelled upload")
    success_rate_sum_interval_s: float = Field(
        2.0, ge=0, le=3600,
        description="on_feedback sums a version's windowed success rate again only when the reports it counted "
                    "since its last sum, all wrong, could bring a success-rate retrain, or when that sum is this old "
                    "(other instances count reports too; shared.count_pacing); the scheduler's tick judges every "
                    "model's production version, so a retrain is asked at most a tick late when reports stop; "
                    "0: sum after every counted report")


class ImageLimits(BaseModel):
    """What an uploaded image may be; anything else is quarantined with a reason."""

    max_bytes: int = Field(5 * 1024 * 1024, ge=1)
    min_side: int = Field(8, ge=1)
    max_side: int = Field(4096, ge=1)
    max_pixels: int = Field(4096 * 4096, ge=1, description="guards against decompression bombs")
    max_metadata_bytes: int = Field(2048, ge=0)


class Training(BaseModel):
    """How retrain requests become runs."""

    launcher: str = Field("local", pattern="^(local|cloud_run_job|vertex)$")
    lock_ttl_s: int = Field(1800, ge=10, description="a lock not renewed for this long (a stage start renews it) is abandoned")
    launch_grace_s: int = Field(300, ge=2, description="a new run's lock expires this soon unless its launcher confirms the start")
    cooldown_s: int = Field(600, ge=0, description="quiet time after a run before a non-manual request may start another")
    field_holdout_wait_s: int = Field(
        0, ge=0,
        description="a drift or success-rate request waits up to this long until the field holdout holds "
                    "gate.min_field_holdout confirmed captures taken on production, so the candidate learns and is "
                    "gated on the drift it is to fix (shared.field_evidence); the scheduler's tick launches it; 0: no wait")
    region: str = "us-central1"
    cloud_run_job: str = "edgeloop-trainer"
    trainer_image: str = "us-central1-docker.pkg.dev/PROJECT/edgeloop/trainer:latest"
    vertex_machine_type: str = "n1-standard-4"
    vertex_service_account: str = ""
    vertex_accelerator_type: str = Field(
        "", pattern="^[A-Z0-9_]*$",
        description="a Vertex AI AcceleratorType name (e.g. NVIDIA_L4, NVIDIA_TESLA_T4) for every CustomJob; empty: CPU only "
                    "(a Cloud Run job's GPU is part of the job, infra/terraform var.trainer.gpu)")
    vertex_accelerator_count: int = Field(1, ge=1, le=8, description="accelerators per CustomJob when a type is set")


# Synthetic stresses of the clean holdout the trainer scores every candidate and production on
# (``trainer_job.augment.STRESSES`` builds them): a dark room (12% brightness, mild sensor noise),
# heavy blur, heavy sensor noise.
STRESSES = ("dark", "blur", "noise")


class Gate(BaseModel):
    """What a candidate must show before any client may get it (``shared.gate`` applies it).

    Candidates and production are compared on the same images: the clean holdout, the field holdout
    (a fixed slice of user-confirmed captures that no run trains on) and, only for the stresses named
    in ``gated_stresses``, synthetic stresses of the clean holdout (the others are reported, not gated).
    """

    min_accuracy: float = Field(0.90, ge=0, le=1, description="int8 accuracy on the clean holdout, absolute")
    max_quantisation_loss: float = Field(0.01, ge=0, le=1, description="float minus int8 holdout accuracy")
    max_regression: float = Field(0.02, ge=0, le=1, description="largest drop of an accuracy vs production on the same holdouts")
    max_size_bytes: int = Field(2 * 1024 * 1024, ge=1, description="the published file a device downloads")
    max_latency_us: float = Field(5000.0, gt=0, description="LiteRT latency per image on one trainer core")
    field_holdout_share: float = Field(
        0.2, gt=0, lt=1,
        description="share of confirmed field captures held out from every run (picked by a hash of the object name) "
                    "to judge candidates on; changing it moves captures earlier runs trained on into the holdout")
    min_field_holdout: int = Field(
        50, ge=1, description="field holdout images needed before a regression on it rejects a candidate (fewer: reported only)")
    gated_stresses: tuple[str, ...] = Field(
        (), description=f"synthetic stresses ({', '.join(STRESSES)}) on which a regression vs production rejects a "
                        "candidate; the others are only reported")
    min_stress_accuracy: float = Field(0.0, ge=0, le=1, description="int8 accuracy on each gated stress, absolute")

    @model_validator(mode="before")
    @classmethod
    def _migrate_min_drifted_accuracy(cls, data: Any) -> Any:
        """``min_drifted_accuracy`` (a floor on the dark holdout, once always compared with production) still works:
        it becomes ``min_stress_accuracy`` with ``dark`` gated."""
        if not isinstance(data, dict) or "min_drifted_accuracy" not in data:
            return data
        data = dict(data)
        floor = float(data.pop("min_drifted_accuracy"))
        if floor > 0:
            data.setdefault("min_stress_accuracy", floor)
            gated = data.get("gated_stresses", ())
            gated = json.loads(gated) if isinstance(gated, str) else gated
            data["gated_stresses"] = tuple(dict.fromkeys((*gated, "dark")))
        return data

    @field_validator("gated_stresses")
    @classmethod
    def _known_stresses(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in STRESSES]
        if unknown:
            raise ValueError(f"unknown stress {unknown}: the trainer computes only {list(STRESSES)}")
        return tuple(dict.fromkeys(names))


class Release(BaseModel):
    """How a published version reaches devices, and when it advances or is rolled back (``shared.lifecycle``)."""

    rollout_steps: tuple[float, ...] = Field(
        (10.0, 50.0, 100.0), min_length=1,
        description="rollout percentages a canary climbs; it starts at the first and is promoted at 100")
    canary_min_samples: int = Field(50, ge=1, description="feedback reports per arm in a step before the canary is judged")
    significance: float = Field(
        0.05, gt=0, lt=1,
        description="chance, over a canary's whole rollout, of rolling back one that is not worse than production")
    promotion_risk: float = Field(
        0.05, gt=0, lt=1,
        description="chance, over a canary's whole rollout, of promoting one worse than production by more than max_drop")
    max_drop: float = Field(0.03, ge=0, lt=1, description="largest success-rate drop vs production still judged not worse")
    watch_samples: int = Field(300, ge=0, description="feedback reports after a promotion during which production is compared with its parent")
    canary_min_users: int = Field(
        10, ge=1, description="distinct users with counted reports on each version in a step (on production since its "
                              "promotion, when watched) before any verdict, a rollback included")

    @field_validator("rollout_steps")
    @classmethod
    def _climbs_to_100(cls, steps: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)) or steps[-1] != 100:
            raise ValueError(f"rollout_steps must rise strictly within (0, 100] and end at 100, got {steps}")
        return steps

    @property
    def canary_percent(self) -> float:
        """Where a new canary starts."""
        return self.rollout_steps[0]


class Client(BaseModel):
    """Device-side defaults of client_sdk: capture policy, daily budgets, retries."""

    capture_below_confidence: float = Field(0.5, ge=0, le=1, description="capture every prediction less confident than this")
    capture_sample_rate: float = Field(
        0.02, ge=0, le=1, description="share of all predictions captured as the random sample, whatever their confidence "
                                      "(the unbiased input drift checks use)")
    daily_capture_count: int = Field(50, ge=0, description="captures uploaded per device per day, at most")
    random_sample_reserve: int = Field(
        10, ge=0, description="of the daily count (and the same share of the bytes), captures only the random sample may "
                              "use: hard cases under drift cannot starve it")
    daily_capture_bytes: int = Field(2 * 1024 * 1024, ge=0, description="capture bytes uploaded per device per day, at most")
    capture_max_side: int = Field(512, ge=8, le=4096, description="captures are downscaled to this longest side before upload")
    capture_format: str = Field("png", pattern="^(png|jpeg)$")
    request_timeout_s: float = Field(20.0, gt=0)
    download_attempts: int = Field(4, ge=1, description="tries per model download, each resuming where the last stopped")
    send_attempts: int = Field(3, ge=1, description="tries per queued item in one flush before it waits for the next")
    backoff_initial_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    telemetry_period_s: float = Field(
        3600.0, gt=0, description="a device reports its predictions and latency once per period (shared/telemetry.py)")
    daily_telemetry_bytes: int = Field(
        16 * 1024, ge=0, description="telemetry bytes a device sends per day, at most; a period over it is carried "
                                     "into the next report instead of being sent")


class Web(BaseModel):
    """The browser app (client_sdk/web) and ``edgeloop web``, which serves it against the local stack."""

    port: int = Field(8765, ge=0, le=65535, description="edgeloop web's port (0: any free one); a browser keeps the "
                                                         "app's verified model per origin, so a fixed port keeps it")
    poll_interval_s: float = Field(60.0, gt=0, description="the app reads the model pointer this often (one document read)")


class Ports(BaseModel):
    """Local stack ports; 0 means pick a free port at start."""

    firestore: int = Field(0, ge=0, le=65535)
    pubsub: int = Field(0, ge=0, le=65535)
    storage: int = Field(0, ge=0, le=65535)
    functions_base: int = Field(0, ge=0, le=65535, description="first function port; the next ones follow")


# A Secret Manager secret version's resource name (a version number, or the alias "latest").
SECRET_VERSION_PATTERN = r"^projects/[a-z0-9][a-z0-9.:-]*/secrets/[A-Za-z0-9_-]{1,255}/versions/(latest|[1-9][0-9]*)$"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGELOOP_", env_nested_delimiter="__", frozen=True)

    project_id: str = "demo-edgeloop"
    bucket: str = "demo-edgeloop.firebasestorage.app"
    models: tuple[str, ...] = ("digits",)
    topics: Topics = Topics()
    thresholds: Thresholds = Thresholds()
    delivery: Delivery = Delivery()
    ports: Ports = Ports()
    host: str = "127.0.0.1"
    stack_dir: Path = Path(".edgeloop")
    images: ImageLimits = ImageLimits()
    caching: Caching = Caching()
    training: Training = Training()
    gate: Gate = Gate()
    release: Release = Release()
    # The Ed25519 model-signing key (PEM) for the local stack and tests. A cloud trainer never takes it
    # from its environment: it reads the version named by signing_key_secret through Secret Manager's
    # client (shared.gcp.secrets). When neither is set, the local trainer uses a development key created
    # on first use in the stack directory; a trainer on a cloud backend refuses to.
    signing_key: SecretStr | None = None
    signing_key_secret: str | None = Field(
        None, pattern=SECRET_VERSION_PATTERN,
        description="Secret Manager version holding the signing key (PEM): projects/P/secrets/S/versions/latest")
    client: Client = Client()
    web: Web = Web()

    @field_validator("signing_key_secret", mode="before")
    @classmethod
    def _never_echo_what_is_no_resource_name(cls, value: Any) -> Any:
        """A value that is not a secret version's name (a key pasted here by mistake) is replaced before
        the pattern check fails on it, so the validation error cannot print it."""
        if isinstance(value, str) and not re.fullmatch(SECRET_VERSION_PATTERN, value):
            return "(value not shown: not a secret version name)"
        return value

    @property
    def dev_signing_key_path(self) -> Path:
        return self.stack_dir / "signing-key.pem"


# The settings the trainer reads (its code and the shared/ modules it reaches), by top-level field.
# Every launcher gives the trainer these values of the settings it launched with (trainer_env), so a
# run trains, gates, publishes and holds its lock under the same configuration on every backend;
# tests/unit/shared/test_trainer_settings.py checks the list against the trainer's code.
TRAINER_SETTINGS = ("project_id", "bucket", "training", "gate", "release", "signing_key_secret")
# Settings the trainer reads that no launcher forwards, and why.
NOT_FORWARDED_TO_TRAINER = {
    "signing_key": "key material never travels in a job spec: a cloud trainer reads signing_key_secret "
                   "through Secret Manager (the local trainer inherits its parent's environment)",
    "stack_dir": "the local stack's state directory (its development key); a cloud trainer has none",
    "thresholds": "the trainer decides nothing with them; it reads them only as part of a model's overrides "
                  "(shared.model_settings), which it takes from Firestore, not from its launcher",
    "client": "device settings; the trainer reads them only as part of a model's overrides (shared.model_settings)",
    "caching": "what a function instance keeps between events (on_upload's and on_feedback's cached model "
               "definition); the trainer "
               "reaches that code but reads a model's settings once per run, uncached",
}


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        raise TypeError("a secret value is never written to an environment")
    if isinstance(value, (str, Path)):
        return str(value)
    return json.dumps(value)


def settings_env(settings: Settings, fields: tuple[str, ...] = TRAINER_SETTINGS) -> dict[str, str]:
    """The ``EDGELOOP_`` variables that give a process these fields' values (unset ones omitted).

    Groups become one variable per field (``EDGELOOP_GATE__MIN_ACCURACY``); strings stay as they are,
    everything else is JSON, which is how ``Settings`` parses them back.
    """
    env: dict[str, str] = {}

    def add(name: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, BaseModel):
            for field in type(value).model_fields:
                add(f"{name}__{field.upper()}", getattr(value, field))
        else:
            env[name] = _env_value(value if not isinstance(value, tuple) else list(value))

    for field in fields:
        add(f"EDGELOOP_{field.upper()}", getattr(settings, field))
    return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (a Cloud Function instance reuses them)."""
    return Settings()
