"""The cloud launcher backends build exactly the request the trainer needs (their APIs are unreachable here)."""

import json
import re

import pytest
from google.cloud import aiplatform_v1, run_v2
from pydantic import SecretStr

from shared import integrity
from shared.config import Gate, Release, Settings, Training
from shared.gcp.launchers import (
    BACKENDS, cloud_run_request, launcher_for, trainer_env, vertex_custom_job, vertex_parent,
)

KEY_VERSION = "projects/acme-prod/secrets/edgeloop-model-signing-key/versions/latest"
SETTINGS = Settings(
    project_id="acme-prod", bucket="acme-prod-edgeloop", signing_key_secret=KEY_VERSION,
    gate=Gate(min_accuracy=0.93, gated_stresses=("dark",)), release=Release(rollout_steps=(5.0, 100.0)),
    training=Training(
        launcher="cloud_run_job", region="europe-west4", cloud_run_job="edgeloop-trainer",
        trainer_image="europe-west4-docker.pkg.dev/acme-prod/edgeloop/trainer:1.2", vertex_machine_type="n1-standard-8",
        vertex_service_account="edgeloop-trainer@acme-prod.iam.gserviceaccount.com", lock_ttl_s=900,
    ),
)
RUN = "digits-20261123-abc"


def test_the_trainer_gets_the_launchers_settings_and_the_secrets_name():
    env = trainer_env(RUN, SETTINGS)
    assert {name: env[name] for name in (
        "EDGELOOP_PROJECT_ID", "EDGELOOP_BUCKET", "EDGELOOP_SIGNING_KEY_SECRET", "EDGELOOP_RUN_ID",
        "EDGELOOP_GATE__MIN_ACCURACY", "EDGELOOP_GATE__GATED_STRESSES", "EDGELOOP_RELEASE__ROLLOUT_STEPS",
        "EDGELOOP_TRAINING__LAUNCHER", "EDGELOOP_TRAINING__LOCK_TTL_S",
    )} == {
        "EDGELOOP_PROJECT_ID": "acme-prod", "EDGELOOP_BUCKET": "acme-prod-edgeloop", "EDGELOOP_SIGNING_KEY_SECRET": KEY_VERSION,
        "EDGELOOP_RUN_ID": RUN, "EDGELOOP_GATE__MIN_ACCURACY": "0.93", "EDGELOOP_GATE__GATED_STRESSES": '["dark"]',
        "EDGELOOP_RELEASE__ROLLOUT_STEPS": "[5.0, 100.0]", "EDGELOOP_TRAINING__LAUNCHER": "cloud_run_job",
        "EDGELOOP_TRAINING__LOCK_TTL_S": "900",
    }
    assert "EDGELOOP_SIGNING_KEY" not in env


def test_cloud_run_executes_the_deployed_job_with_this_runs_arguments():
    request = cloud_run_request("digits", RUN, SETTINGS)
    assert request == run_v2.RunJobRequest(
        name="projects/acme-prod/locations/europe-west4/jobs/edgeloop-trainer",
        overrides=run_v2.RunJobRequest.Overrides(
            container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=["--model", "digits", "--run-id", RUN],
                env=[run_v2.EnvVar(name=name, value=value) for name, value in trainer_env(RUN, SETTINGS).items()],
            )],
            task_count=1,
        ),
    )


def test_vertex_runs_the_same_image_and_entry_point_as_a_custom_job():
    job = vertex_custom_job("digits", RUN, SETTINGS)
    assert vertex_parent(SETTINGS) == "projects/acme-prod/locations/europe-west4"
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "n1-standard-8" and pool.replica_count == 1
    assert pool.container_spec.image_uri == "europe-west4-docker.pkg.dev/acme-prod/edgeloop/trainer:1.2"
    assert list(pool.container_spec.command) == ["python", "-m", "trainer_job"]  # the Dockerfile's ENTRYPOINT
    assert list(pool.container_spec.args) == ["--model", "digits", "--run-id", "digits-20261123-abc"]
    # The same settings as a Cloud Run execution: one list, one builder.
    assert {e.name: e.value for e in pool.container_spec.env} == trainer_env(RUN, SETTINGS)
    (cloud_run,) = cloud_run_request("digits", RUN, SETTINGS).overrides.container_overrides
    assert [(e.name, e.value) for e in pool.container_spec.env] == [(e.name, e.value) for e in cloud_run.env]
    assert job.job_spec.service_account == "edgeloop-trainer@acme-prod.iam.gserviceaccount.com"
    assert job.display_name == "edgeloop-digits-20261123-abc"
    assert isinstance(job, aiplatform_v1.CustomJob)


def test_the_dockerfile_entry_point_is_the_module_every_backend_runs():
    from pathlib import Path

    dockerfile = (Path(__file__).parents[4] / "trainer_job" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "trainer_job"]' in dockerfile


def test_the_configured_backend_is_chosen():
    assert set(BACKENDS) == {"local", "cloud_run_job", "vertex"}
    assert type(launcher_for(SETTINGS)).__name__ == "CloudRunJobLauncher"
    assert type(launcher_for(Settings())).__name__ == "LocalLauncher"


def _key_fragments(pem: str) -> list[str]:
    body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return [pem.strip(), "".join(body), *[line for line in body if len(line) >= 16]]


@pytest.mark.parametrize("backend", ["cloud_run_job", "vertex"])
def test_no_request_carries_key_material_only_the_secrets_name(backend):
    """Even with a plaintext key in the launcher's settings, the serialised request holds none of it."""
    pem = integrity.generate_private_key_pem()
    settings = SETTINGS.model_copy(update={"signing_key": SecretStr(pem),
                                           "training": SETTINGS.training.model_copy(update={"launcher": backend})})
    if backend == "vertex":
        job = vertex_custom_job("digits", RUN, settings)
        sent = aiplatform_v1.CustomJob.to_json(job)
        env = {e.name: e.value for e in job.job_spec.worker_pool_specs[0].container_spec.env}
    else:
        request = cloud_run_request("digits", RUN, settings)
        sent = run_v2.RunJobRequest.to_json(request)
        env = {e.name: e.value for e in request.overrides.container_overrides[0].env}
    assert env["EDGELOOP_SIGNING_KEY_SECRET"] == KEY_VERSION
    assert not any(name.startswith("EDGELOOP_SIGNING_KEY") and name != "EDGELOOP_SIGNING_KEY_SECRET" for name in env)
    assert "PRIVATE KEY" not in sent and "-----BEGIN" not in sent
    assert not [fragment for fragment in _key_fragments(pem) if fragment in sent]
    # Nothing in the job's environment looks like key material of any kind (a PEM block or a long base64 run).
    for name, value in env.items():
        assert not re.search(r"-----BEGIN|[A-Za-z0-9+/]{40,}={0,2}", value), name
    json.loads(sent)  # what the client library would send: valid JSON in the API's own field names


def test_the_local_trainer_gets_the_same_settings_over_its_parents_environment(monkeypatch, tmp_path):
    from shared.gcp import launchers

    started = {}

    class Process:
        pid = 4242

        def __init__(self, command, env, **kwargs):
            started.update(command=command, env=env)

        def wait(self):
            return 0

    monkeypatch.setattr(launchers.subprocess, "Popen", Process)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080")
    settings = SETTINGS.model_copy(update={"stack_dir": tmp_path})
    launchers.LocalLauncher().launch("digits", RUN, settings)
    assert started["command"][-4:] == ["--model", "digits", "--run-id", RUN]
    assert trainer_env(RUN, settings).items() <= started["env"].items()
    assert started["env"]["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:8080"  # the emulators it talks to


# --- the requests sent for real: the client libraries over REST to a local server ------------------------------------

from google.api_core import exceptions  # noqa: E402

from shared.executions import Phase  # noqa: E402
from shared.gcp import launchers  # noqa: E402
from tests import backend_api as api  # noqa: E402
from tests.google_rest import error, serving  # noqa: E402


@pytest.fixture
def server(monkeypatch):
    with serving() as running:
        api.point_launchers_at(running, monkeypatch)
        yield running


def test_a_cloud_run_launch_sends_exactly_the_request_and_records_the_executions_name(server):
    server.answer("POST", f"/v2/{api.JOB}:run", (200, api.run_operation()))
    execution = launchers.CloudRunJobLauncher().launch("digits", RUN, SETTINGS)
    assert execution == {"backend": "cloud_run_job", "execution": api.EXECUTION}
    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/v2/projects/acme-prod/locations/europe-west4/jobs/edgeloop-trainer:run")
    # The body is the RunJobRequest without the name the path carries: parsed back, it is the request built above.
    assert "name" not in sent.body and sent.body["overrides"]["taskCount"] == 1
    assert run_v2.RunJobRequest(name=api.JOB, mapping=run_v2.RunJobRequest.from_json(json.dumps(sent.body))) == \
        cloud_run_request("digits", RUN, SETTINGS)
    assert sent.body["overrides"]["containerOverrides"][0]["args"] == ["--model", "digits", "--run-id", RUN]


def test_a_vertex_launch_sends_exactly_the_custom_job_and_records_its_name(server):
    settings = SETTINGS.model_copy(update={"training": SETTINGS.training.model_copy(update={"launcher": "vertex"})})
    server.answer("POST", "/v1/projects/acme-prod/locations/europe-west4/customJobs", (200, api.custom_job_body()))
    execution = launchers.VertexLauncher().launch("digits", RUN, settings)
    assert execution == {"backend": "vertex", "custom_job": api.CUSTOM_JOB}
    (sent,) = server.requests
    assert aiplatform_v1.CustomJob.from_json(json.dumps(sent.body)) == vertex_custom_job("digits", RUN, settings)
    pool = sent.body["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"] == {"machineType": "n1-standard-8"} and pool["replicaCount"] == "1"
    assert pool["containerSpec"]["command"] == ["python", "-m", "trainer_job"]


@pytest.mark.parametrize("backend, path", [
    ("cloud_run_job", f"/v2/{api.JOB}:run"), ("vertex", "/v1/projects/acme-prod/locations/europe-west4/customJobs"),
])
@pytest.mark.parametrize("status, grpc_status, raised", [
    (403, "PERMISSION_DENIED", launchers.BackendAccessError),
    (503, "UNAVAILABLE", exceptions.ServiceUnavailable),
])
def test_a_refused_launch_raises_the_apis_error_and_is_never_retried(server, backend, path, status, grpc_status, raised):
    """launch_training frees the lock on any error; a retried launch could start a second trainer for the run."""
    settings = SETTINGS.model_copy(update={"training": SETTINGS.training.model_copy(update={"launcher": backend})})
    server.answer("POST", path, (status, error(status, grpc_status, "Permission denied" if status == 403 else "refused")))
    role = "roles/run.jobsExecutorWithOverrides" if backend == "cloud_run_job" else "roles/aiplatform.user"
    with pytest.raises(raised, match=f"{role}.*Permission denied" if status == 403 else "refused"):
        launcher_for(settings).launch("digits", RUN, settings)
    assert len(server.requests) == 1


@pytest.mark.parametrize("body, phase, reason", [
    (api.failed_execution(), Phase.FAILED, "Memory limit of 4096 MiB exceeded"),
    (api.cancelled_execution(), Phase.CANCELLED, "The execution was cancelled."),
    (api.execution_body(completed="CONDITION_SUCCEEDED", succeeded=1), Phase.SUCCEEDED, ""),
    (api.execution_body(completed=None), Phase.RUNNING, ""),
    (api.execution_body(completed="CONDITION_FAILED", failed=1, reason="NON_ZERO_EXIT_CODE"), Phase.FAILED,
     "NON_ZERO_EXIT_CODE"),
])
def test_what_cloud_run_says_about_an_execution(server, body, phase, reason):
    server.answer("GET", f"/v2/{api.EXECUTION}", (200, body))
    state = launchers.execution_state({"backend": "cloud_run_job", "execution": api.EXECUTION})
    assert (state.phase, state.execution) == (phase, f"Cloud Run execution {api.EXECUTION}")
    assert reason in state.reason
    assert (state.ended_at is None) == (phase is Phase.RUNNING)
    assert [(r.method, r.path) for r in server.requests] == [("GET", f"/v2/{api.EXECUTION}")]


@pytest.mark.parametrize("body, phase, reason", [
    (api.failed_custom_job(), Phase.FAILED, "non-zero status of 137. Termination reason: OOMKilled"),
    (api.cancelled_custom_job(), Phase.CANCELLED, "CANCELED"),
    (api.custom_job_body(state="JOB_STATE_SUCCEEDED"), Phase.SUCCEEDED, ""),
    (api.custom_job_body(state="JOB_STATE_RUNNING"), Phase.RUNNING, ""),
    (api.custom_job_body(state="JOB_STATE_CANCELLING"), Phase.RUNNING, ""),
    (api.custom_job_body(state="JOB_STATE_FAILED"), Phase.FAILED, "JOB_STATE_FAILED"),
])
def test_what_vertex_says_about_a_custom_job(server, body, phase, reason):
    server.answer("GET", f"/v1/{api.CUSTOM_JOB}", (200, body))
    state = launchers.execution_state({"backend": "vertex", "custom_job": api.CUSTOM_JOB})
    assert (state.phase, state.execution) == (phase, f"Vertex AI CustomJob {api.CUSTOM_JOB}")
    assert reason in state.reason
    assert [(r.method, r.path) for r in server.requests] == [("GET", f"/v1/{api.CUSTOM_JOB}")]


@pytest.mark.parametrize("execution, path, body", [
    ({"backend": "cloud_run_job", "execution": api.EXECUTION}, f"/v2/{api.EXECUTION}", api.failed_execution()),
    ({"backend": "vertex", "custom_job": api.CUSTOM_JOB}, f"/v1/{api.CUSTOM_JOB}", api.failed_custom_job()),
])
def test_reading_an_executions_state_is_retried_through_transient_errors(server, execution, path, body):
    server.answer("GET", path, (503, error(503, "UNAVAILABLE", "The service is currently unavailable.")),
                  (429, error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.")), (200, body))
    assert launchers.execution_state(execution).phase is Phase.FAILED
    assert len(server.requests) == 3


@pytest.mark.parametrize("execution, path", [
    ({"backend": "cloud_run_job", "execution": api.EXECUTION}, f"/v2/{api.EXECUTION}"),
    ({"backend": "vertex", "custom_job": api.CUSTOM_JOB}, f"/v1/{api.CUSTOM_JOB}"),
])
def test_an_execution_the_backend_does_not_know_is_gone_and_a_denied_read_raises(server, execution, path):
    server.answer("GET", path, (404, error(404, "NOT_FOUND", "Resource 'x' was not found")))
    state = launchers.execution_state(execution)
    assert state.phase is Phase.GONE and "was not found" in state.reason
    server.answer("GET", path, (403, error(403, "PERMISSION_DENIED", "Permission denied on resource")))
    role = "roles/run.viewer" if execution["backend"] == "cloud_run_job" else "roles/aiplatform.viewer"
    with pytest.raises(launchers.BackendAccessError, match=role):  # the tick logs it and asks again; the run is kept
        launchers.execution_state(execution)


def test_a_local_or_unrecorded_execution_is_not_asked_about(server):
    assert launchers.execution_state({"backend": "local", "pid": 42}) is None
    assert launchers.execution_state({"backend": "cloud_run_job", "execution": None}) is None
    assert launchers.execution_state(None) is None
    assert server.requests == []


# --- GPU-capable training: the Vertex request carries the configured accelerators -------------------------------------

def _vertex(**training) -> Settings:
    return SETTINGS.model_copy(update={"training": SETTINGS.training.model_copy(update={"launcher": "vertex", **training})})


def test_a_custom_job_has_no_accelerator_unless_configured(server):
    assert vertex_custom_job("digits", RUN, _vertex()).job_spec.worker_pool_specs[0].machine_spec == \
        aiplatform_v1.MachineSpec(machine_type="n1-standard-8")


def test_a_configured_accelerator_is_sent_with_the_custom_job(server):
    settings = _vertex(vertex_machine_type="g2-standard-8", vertex_accelerator_type="NVIDIA_L4",
                       vertex_accelerator_count=1)
    server.answer("POST", "/v1/projects/acme-prod/locations/europe-west4/customJobs", (200, api.custom_job_body()))
    launchers.VertexLauncher().launch("digits", RUN, settings)
    (sent,) = server.requests
    machine = sent.body["jobSpec"]["workerPoolSpecs"][0]["machineSpec"]
    # The client sends enums as numbers ($alt=json;enum-encoding=int): NVIDIA_L4 is 11 in the API's enum.
    assert machine == {"machineType": "g2-standard-8", "acceleratorType": aiplatform_v1.AcceleratorType.NVIDIA_L4.value,
                       "acceleratorCount": 1}
    assert aiplatform_v1.CustomJob.from_json(json.dumps(sent.body)) == vertex_custom_job("digits", RUN, settings)


def test_an_unknown_accelerator_type_is_refused_before_anything_is_sent(server):
    with pytest.raises(ValueError, match="'NVIDIA_Q9' is not a Vertex AI accelerator type .*NVIDIA_L4"):
        launchers.VertexLauncher().launch("digits", RUN, _vertex(vertex_accelerator_type="NVIDIA_Q9"))
    assert server.requests == []
