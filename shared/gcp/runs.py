"""Adapter: the ``runs/{run_id}`` document, one per training run.

It records why the run started, each stage's start and end, and its outcome;
the training lock (``training_lock``) writes it in the same transactions that
take and release the lock, and the trainer reports its stages here.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

from google.cloud import firestore

from shared import launch_rules, layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.launch_rules import RunStatus
from shared.logs import log
from shared.retrain import RetrainRequest


def now() -> float:
    return time.time()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def new_run_id(model: str, epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{model}-{stamp}-{uuid.uuid4().hex[:6]}"


def run_ref(db: firestore.Client, run_id: str) -> firestore.DocumentReference:
    return db.document(layout.run_doc(run_id))


def run_document(request: RetrainRequest, decision: launch_rules.Decision, launcher: str, epoch: float) -> dict[str, Any]:
    return {
        "run_id": decision.run_id,
        "model": request.model,
        "version": launch_rules.allocated_version(decision.state),
        "reason": request.reason.value,
        "cause": request.cause,
        "evidence": request.evidence,
        "folded": list(decision.folded),
        # When its trigger asked (redeliveries keep the first ask's time): the loop's timing starts here.
        "requested_at": request.requested_at.isoformat(),
        "status": RunStatus.QUEUED,
        "launcher": launcher,
        "stages": {},
        "current_stage": None,
        "created": iso(epoch),
        "updated": iso(epoch),
    }


def ended_fields(outcome: str, result: dict[str, Any], failed_stage: str | None, error: str | None,
                 epoch: float) -> dict[str, Any]:
    """What a run's end writes onto its document."""
    if outcome not in RunStatus.FINAL:
        raise ValueError(f"outcome must be one of {sorted(RunStatus.FINAL)}, not {outcome!r}")
    return {"status": outcome, "result": result, "failed_stage": failed_stage, "error": error,
            "ended": iso(epoch), "updated": iso(epoch), "current_stage": None}


def load_run(run_id: str, settings: Settings) -> dict[str, Any]:
    snapshot = run_ref(firestore_client(settings.project_id), run_id).get()
    if not snapshot.exists:
        raise KeyError(f"no run {run_id!r}")
    return snapshot.to_dict()


def record_execution(run_id: str, execution: dict[str, Any], settings: Settings) -> None:
    """What the launcher reports about the started trainer (pid, execution or job name), and when it did."""
    stamp = iso(now())
    run_ref(firestore_client(settings.project_id), run_id).update({"execution": execution, "started": stamp,
                                                                  "updated": stamp})


def start_stage(run_id: str, stage: str, settings: Settings) -> None:
    stamp = iso(now())
    run_ref(firestore_client(settings.project_id), run_id).update(
        {f"stages.{stage}": {"started_at": stamp}, "current_stage": stage, "status": RunStatus.RUNNING,
         "updated": stamp})


def end_stage(run_id: str, stage: str, seconds: float, settings: Settings) -> None:
    stamp = iso(now())
    run_ref(firestore_client(settings.project_id), run_id).update(
        {f"stages.{stage}.ended_at": stamp, f"stages.{stage}.seconds": round(seconds, 3), "updated": stamp})


def run_model(run_id: str) -> str:
    """The model a run id names (``new_run_id``: ``{model}-{stamp}-{hex}``)."""
    return run_id.rsplit("-", 2)[0]


def log_completion(run_id: str, outcome: str, failed_stage: str | None = None, error: str | None = None) -> None:
    """A run's end in the log; a failed run logs ``run_failed`` (an ERROR Cloud Monitoring alerts on)."""
    if outcome == RunStatus.FAILED:
        log("ERROR", "run_failed", f"run {run_id} failed" + (f" in {failed_stage}" if failed_stage else "")
            + (f": {error}" if error else ""), model=run_model(run_id), run_id=run_id, failed_stage=failed_stage,
            error=error)
        return
    log("INFO", f"run_{outcome}", f"run {run_id} {outcome}", model=run_model(run_id), run_id=run_id,
        failed_stage=failed_stage, error=error)
