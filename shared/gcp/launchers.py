"""Launcher backends: start the trainer container's entry point for one run.

Every backend runs the same thing, ``python -m trainer_job --model M --run-id R``:
locally as a detached subprocess, on Cloud Run Jobs as an execution of the
deployed job with per-run argument overrides, on Vertex AI as a CustomJob of
the same image. Every backend gives it the same settings (``trainer_env``): the
launcher's values of what the trainer reads, with the signing key's Secret
Manager name and never the key. The cloud requests are built by plain
functions so tests can assert exactly what would be sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from shared.config import TRAINER_SETTINGS, Settings, settings_env

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
        from google.cloud import run_v2

        operation = run_v2.JobsClient().run_job(request=cloud_run_request(model, run_id, settings))
        return {"backend": "cloud_run_job", "execution": operation.metadata.name if operation.metadata else None}


def vertex_parent(settings: Settings) -> str:
    return f"projects/{settings.project_id}/locations/{settings.training.region}"


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
        machine_spec=aiplatform_v1.MachineSpec(machine_type=settings.training.vertex_machine_type),
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
        from google.cloud import aiplatform_v1

        client = aiplatform_v1.JobServiceClient(
            client_options={"api_endpoint": f"{settings.training.region}-aiplatform.googleapis.com"}
        )
        job = client.create_custom_job(parent=vertex_parent(settings), custom_job=vertex_custom_job(model, run_id, settings))
        return {"backend": "vertex", "custom_job": job.name}


BACKENDS: dict[str, type] = {"local": LocalLauncher, "cloud_run_job": CloudRunJobLauncher, "vertex": VertexLauncher}


def launcher_for(settings: Settings) -> Launcher:
    return BACKENDS[settings.training.launcher]()
