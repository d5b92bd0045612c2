"""The cloud launcher backends build exactly the request the trainer needs (their APIs are unreachable here)."""

from google.cloud import aiplatform_v1, run_v2

from shared.config import Settings, Training
from shared.gcp.launchers import BACKENDS, cloud_run_request, launcher_for, vertex_custom_job, vertex_parent

SETTINGS = Settings(project_id="acme-prod", training=Training(
    launcher="cloud_run_job", region="europe-west4", cloud_run_job="edgeloop-trainer",
    trainer_image="europe-west4-docker.pkg.dev/acme-prod/edgeloop/trainer:1.2", vertex_machine_type="n1-standard-8",
    vertex_service_account="edgeloop-trainer@acme-prod.iam.gserviceaccount.com",
))


def test_cloud_run_executes_the_deployed_job_with_this_runs_arguments():
    request = cloud_run_request("digits", "digits-20261123-abc", SETTINGS)
    assert request == run_v2.RunJobRequest(
        name="projects/acme-prod/locations/europe-west4/jobs/edgeloop-trainer",
        overrides=run_v2.RunJobRequest.Overrides(
            container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(
                args=["--model", "digits", "--run-id", "digits-20261123-abc"],
                env=[run_v2.EnvVar(name="EDGELOOP_RUN_ID", value="digits-20261123-abc")],
            )],
            task_count=1,
        ),
    )


def test_vertex_runs_the_same_image_and_entry_point_as_a_custom_job(monkeypatch):
    monkeypatch.setenv("EDGELOOP_PROJECT_ID", "acme-prod")
    monkeypatch.setenv("EDGELOOP_BUCKET", "acme-prod.firebasestorage.app")
    job = vertex_custom_job("digits", "digits-20261123-abc", SETTINGS)
    assert vertex_parent(SETTINGS) == "projects/acme-prod/locations/europe-west4"
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "n1-standard-8" and pool.replica_count == 1
    assert pool.container_spec.image_uri == "europe-west4-docker.pkg.dev/acme-prod/edgeloop/trainer:1.2"
    assert list(pool.container_spec.command) == ["python", "-m", "trainer_job"]  # the Dockerfile's ENTRYPOINT
    assert list(pool.container_spec.args) == ["--model", "digits", "--run-id", "digits-20261123-abc"]
    assert {e.name: e.value for e in pool.container_spec.env} == {
        "EDGELOOP_PROJECT_ID": "acme-prod", "EDGELOOP_BUCKET": "acme-prod.firebasestorage.app",
        "EDGELOOP_RUN_ID": "digits-20261123-abc",
    }
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
