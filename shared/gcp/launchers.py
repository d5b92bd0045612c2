"""Launcher backends: start the trainer container's entry point for one run.

Every backend runs the same thing, ``python -m trainer_job --model M --run-id R``:
locally as a detached subprocess, on Cloud Run Jobs as an execution of the
deployed job with per-run argument overrides, on Vertex AI as a CustomJob of
the same image. Every backend gives it the same settings (``trainer_env``): the
launcher's values of what the trainer reads, with the signing key's Secret
Manager name and never the key. The cloud requests are built by plain
functions so tests can assert exactly what is sent.

A cloud launch returns the execution's resource name (stored on the run
document); ``execution_state`` asks the backend about it again, which the
scheduler's tick does for each running run (``shared.gcp.watch``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from shared.config import TRAINER_SETTINGS, Settings, settings_env
from shared.executions import BackendState, Phase

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINER_MODULE = "trainer_job"


def trainer_args(model: str, run_id: str) -> list[str]:
    return ["--model", model, "--run-id", run_id]


def trainer_env(run_id: str, settings: Settings) -> dict[str, str]:
    """The environment a cloud trainer gets on every backend: the launcher's values of the settings the
    trainer reads (``shared.config.TRAINER_SETTINGS``, the signing key's Secret Manager name among them,
    never key material) and the run id."""
    return {**settings_env(settings, TRAINER_SETTINGS), "EDGELOOP_RUN_ID": run_id}


ExitCallback = Optional[Callable[[int], None]]


class Launcher(Protocol):
    def launch(self, model: str, run_id: str, settings: Settings, on_exit: ExitCallback = None) -> dict[str, Any]:
        """Start the run; return what identifies the execution (stored on the run document).

        ``on_exit`` is called with the exit code when the backend can observe the end (local only).
        """


class LocalLauncher:
    """The embedded default: the trainer as a detached subprocess with this process's environment
    (emulator hosts, a local key) and the same trainer settings as the cloud backends."""

    def launch(self, model: str, run_id: str, settings: Settings, on_exit: ExitCallback = None) -> dict[str, Any]:
        log_dir = Path(settings.stack_dir).resolve() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"trainer-{run_id}.log"
        env = {**os.environ, **trainer_env(run_id, settings), "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with open(log_file, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", TRAINER_MODULE, *trainer_args(model, run_id)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the request that launched it
            )
        def reap() -> None:  # so a long-lived function process collects no zombies, and learns of crashes early
            code = process.wait()
            if on_exit is not None:
                on_exit(code)

        threading.Thread(target=reap, name=f"reap-{run_id}", daemon=True).start()
        return {"backend": "local", "pid": process.pid, "log": str(log_file)}


def cloud_client(api: str, region: str, **kwargs: Any):
    """The client of a launcher backend's ``api`` ("run_jobs", "run_executions", "vertex_jobs"), with
    Application Default Credentials and the API's endpoint (Vertex AI's is regional).

    Tests replace this with one that adds a REST transport, anonymous credentials and a local endpoint.
    """
    if api in ("run_jobs", "run_executions"):
        from google.cloud import run_v2

        return (run_v2.JobsClient if api == "run_jobs" else run_v2.ExecutionsClient)(**kwargs)
    if api == "vertex_jobs":
        from google.cloud import aiplatform_v1

        kwargs.setdefault("client_options", {"api_endpoint": f"{region}-aiplatform.googleapis.com"})
        return aiplatform_v1.JobServiceClient(**kwargs)
    raise ValueError(f"unknown backend API {api!r}")


class BackendAccessError(RuntimeError):
    """A launcher backend refused this service account; the message names the role it lacks."""


# The role each backend call needs (infra/terraform/iam.tf binds them).
ROLES = {
    "run_job": "launch_training's service account needs roles/run.jobsExecutorWithOverrides on the trainer job",
    "create_custom_job": "launch_training's service account needs roles/aiplatform.user on the project and "
                         "roles/iam.serviceAccountUser on the trainer's service account",
    "get_execution": "check_drift's service account needs roles/run.viewer on the trainer job",
    "get_custom_job": "check_drift's service account needs roles/aiplatform.viewer on the project",
}


def _call(method: str, call: Callable[[], Any]) -> Any:
    """``call()``, with a refusal (403; the REST transport raises Forbidden, gRPC PermissionDenied) saying which
    role is missing; every other API error propagates as the client library raised it."""
    from google.api_core import exceptions

    try:
        return call()
    except (exceptions.Forbidden, exceptions.PermissionDenied) as exc:
        raise BackendAccessError(f"{method} was refused: {ROLES[method]} ({exc.message})") from exc


def _read_retry():
    """Reads of an execution's state are retried on transient errors (UNAVAILABLE, 429, 500, 503, 504).

    A launch is not: a retried run_job or create_custom_job whose first attempt reached the backend
    would start a second trainer for the same run.
    """
    from google.api_core import retry

    return retry.Retry(predicate=retry.if_transient_error, initial=0.2, maximum=5.0, timeout=30.0)


def cloud_run_job_name(settings: Settings) -> str:
    return f"projects/{settings.project_id}/locations/{settings.training.region}/jobs/{settings.training.cloud_run_job}"


def cloud_run_request(model: str, run_id: str, settings: Settings):
    """The RunJobRequest for one run: the deployed job, with this run's arguments and the trainer's settings."""
    from google.cloud import run_v2

    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=trainer_args(model, run_id),
                env=[run_v2.EnvVar(name=name, value=value) for name, value in trainer_env(run_id, settings).items()],
            )
        ],
        task_count=1,
    )
    return run_v2.RunJobRequest(name=cloud_run_job_name(settings), overrides=overrides)


class CloudRunJobLauncher:
    def launch(self, model: str, run_id: str, settings: Settings, on_exit: ExitCallback = None) -> dict[str, Any]:
        # run_job answers with a long-running operation whose metadata is the new Execution.
        request = cloud_run_request(model, run_id, settings)
        operation = _call("run_job", lambda: cloud_client("run_jobs", settings.training.region).run_job(request=request))
        return {"backend": "cloud_run_job", "execution": operation.metadata.name if operation.metadata else None}


def vertex_parent(settings: Settings) -> str:
    return f"projects/{settings.project_id}/locations/{settings.training.region}"


def vertex_machine_spec(settings: Settings):
    """The CustomJob's machine: the configured type, with the configured accelerators (the GPU image variant
    uses them) or none."""
    from google.cloud import aiplatform_v1

    training = settings.training
    if not training.vertex_accelerator_type:
        return aiplatform_v1.MachineSpec(machine_type=training.vertex_machine_type)
    try:
        accelerator = aiplatform_v1.AcceleratorType[training.vertex_accelerator_type]
    except KeyError:
        known = ", ".join(t.name for t in aiplatform_v1.AcceleratorType if t.value)
        raise ValueError(f"training.vertex_accelerator_type {training.vertex_accelerator_type!r} is not a Vertex AI "
                         f"accelerator type (one of {known})") from None
    return aiplatform_v1.MachineSpec(machine_type=training.vertex_machine_type, accelerator_type=accelerator,
                                     accelerator_count=training.vertex_accelerator_count)


def vertex_custom_job(model: str, run_id: str, settings: Settings):
    """The CustomJob for one run: the trainer image with the same entry point and arguments."""
    from google.cloud import aiplatform_v1

    env = [aiplatform_v1.EnvVar(name=name, value=value) for name, value in trainer_env(run_id, settings).items()]
    container = aiplatform_v1.ContainerSpec(
        image_uri=settings.training.trainer_image,
        command=["python", "-m", TRAINER_MODULE],
        args=trainer_args(model, run_id),
        env=env,
    )
    pool = aiplatform_v1.WorkerPoolSpec(
        machine_spec=vertex_machine_spec(settings),
        replica_count=1,
        container_spec=container,
    )
    return aiplatform_v1.CustomJob(
        display_name=f"edgeloop-{run_id}"[:128],
        labels={"edgeloop-model": model, "edgeloop-run": run_id.lower()[:63]},
        job_spec=aiplatform_v1.CustomJobSpec(
            worker_pool_specs=[pool], service_account=settings.training.vertex_service_account
        ),
    )


class VertexLauncher:
    def launch(self, model: str, run_id: str, settings: Settings, on_exit: ExitCallback = None) -> dict[str, Any]:
        client = cloud_client("vertex_jobs", settings.training.region)
        custom_job = vertex_custom_job(model, run_id, settings)
        job = _call("create_custom_job",
                    lambda: client.create_custom_job(parent=vertex_parent(settings), custom_job=custom_job))
        return {"backend": "vertex", "custom_job": job.name}


def _epoch(stamp: Any) -> float | None:
    """A proto-plus timestamp (a datetime, or None when unset) as epoch seconds."""
    return stamp.timestamp() if stamp else None


def cloud_run_execution_state(name: str, client: Any = None) -> BackendState:
    """What Cloud Run says about execution ``name``: its terminal condition ("Completed") decides.

    The condition is CONDITION_SUCCEEDED or CONDITION_FAILED once the execution ended (its
    ``execution_reason`` CANCELLED for a cancelled one), anything else while it runs.
    """
    from google.api_core import exceptions
    from google.cloud import run_v2

    what = f"Cloud Run execution {name}"
    client = client if client is not None else cloud_client("run_executions", "")
    try:
        execution = _call("get_execution", lambda: client.get_execution(name=name, retry=_read_retry()))
    except exceptions.NotFound as exc:
        return BackendState(what, Phase.GONE, exc.message)
    completed = next((c for c in execution.conditions if c.type_ == "Completed"), None)
    state = run_v2.Condition.State
    ended_at = _epoch(execution.completion_time)
    if completed is None or execution.reconciling or completed.state not in (state.CONDITION_SUCCEEDED,
                                                                              state.CONDITION_FAILED):
        return BackendState(what, Phase.RUNNING)
    reason = completed.message or (completed.execution_reason.name if completed.execution_reason else "")
    if completed.state == state.CONDITION_SUCCEEDED:
        return BackendState(what, Phase.SUCCEEDED, reason, ended_at)
    cancelled = execution.cancelled_count > 0 or completed.execution_reason == run_v2.Condition.ExecutionReason.CANCELLED
    return BackendState(what, Phase.CANCELLED if cancelled else Phase.FAILED, reason, ended_at)


def vertex_job_state(name: str, client: Any = None) -> BackendState:
    """What Vertex AI says about CustomJob ``name`` (``projects/P/locations/L/customJobs/ID``): its ``state``,
    and its ``error`` (a google.rpc.Status) as the reason."""
    from google.api_core import exceptions
    from google.cloud import aiplatform_v1

    what = f"Vertex AI CustomJob {name}"
    region = name.split("/locations/")[1].split("/")[0] if "/locations/" in name else ""
    client = client if client is not None else cloud_client("vertex_jobs", region)
    try:
        job = _call("get_custom_job", lambda: client.get_custom_job(name=name, retry=_read_retry()))
    except exceptions.NotFound as exc:
        return BackendState(what, Phase.GONE, exc.message)
    state = aiplatform_v1.JobState
    reason = job.error.message if job.error and job.error.message else ""
    phase = {state.JOB_STATE_SUCCEEDED: Phase.SUCCEEDED, state.JOB_STATE_FAILED: Phase.FAILED,
             state.JOB_STATE_EXPIRED: Phase.FAILED, state.JOB_STATE_CANCELLED: Phase.CANCELLED}.get(job.state, Phase.RUNNING)
    if phase is Phase.FAILED and not reason:
        reason = job.state.name
    return BackendState(what, phase, reason, _epoch(job.end_time) if phase is not Phase.RUNNING else None)


def execution_state(execution: dict[str, Any] | None) -> BackendState | None:
    """What its backend says about a run's execution (as a launch recorded it); None for a local trainer
    (its own process reports its exit) or an execution whose name was never recorded."""
    execution = execution or {}
    if execution.get("backend") == "cloud_run_job" and execution.get("execution"):
        return cloud_run_execution_state(execution["execution"])
    if execution.get("backend") == "vertex" and execution.get("custom_job"):
        return vertex_job_state(execution["custom_job"])
    return None


BACKENDS: dict[str, type] = {"local": LocalLauncher, "cloud_run_job": CloudRunJobLauncher, "vertex": VertexLauncher}


def launcher_for(settings: Settings) -> Launcher:
    return BACKENDS[settings.training.launcher]()
