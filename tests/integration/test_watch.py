"""A failed cloud execution frees its run within one tick, on Cloud Run and on Vertex AI.

launch_training's use case starts the run through the real client library (REST) against a local
server speaking the backend's API, which records the execution's name on the run; the server then
says the execution failed, and one scheduler tick (shared.gcp.tick.handle_tick, in this process,
against the stack's emulators) ends the run: failed with the backend's reason and what the backend
said recorded, the lock free, the run's causes pending again for the sweep after the cooldown.
"""

from __future__ import annotations

import uuid

import pytest

from shared import layout
from shared.config import Settings
from shared.gcp import launch, launchers, tick
from shared.launch_rules import RunStatus
from shared.retrain import manual_request
from tests import backend_api as api
from tests.google_rest import serving
from tests.integration.helpers import control, db, fresh_model

BACKENDS = {
    # backend: (launch path, launch answer, the recorded execution's name, its GET path, running, failed, cancelled)
    "cloud_run_job": lambda job: (
        f"/v2/{job}:run", api.run_operation(f"{job}/executions/edgeloop-trainer-x7k2p"),
        f"{job}/executions/edgeloop-trainer-x7k2p", f"/v2/{job}/executions/edgeloop-trainer-x7k2p",
        api.execution_body(f"{job}/executions/edgeloop-trainer-x7k2p", completed=None),
        api.failed_execution(f"{job}/executions/edgeloop-trainer-x7k2p"),
        api.cancelled_execution(f"{job}/executions/edgeloop-trainer-x7k2p")),
    "vertex": lambda job: (
        f"/v1/{job.split('/jobs/')[0]}/customJobs", api.custom_job_body(),
        api.CUSTOM_JOB, f"/v1/{api.CUSTOM_JOB}", api.custom_job_body(state="JOB_STATE_RUNNING"),
        api.failed_custom_job(), api.cancelled_custom_job()),
}
REASONS = {"cloud_run_job": ("Memory limit of 4096 MiB exceeded", "The execution was cancelled."),
           "vertex": ("Termination reason: OOMKilled", "CANCELED")}


@pytest.fixture
def server(monkeypatch):
    with serving() as running:
        api.point_launchers_at(running, monkeypatch)
        yield running


def cloud_settings(stack, backend: str) -> Settings:
    settings = Settings(project_id=stack.project_id, bucket=stack.bucket)
    return settings.model_copy(update={"training": settings.training.model_copy(update={
        "launcher": backend, "region": api.REGION, "cooldown_s": 600,
        "vertex_service_account": f"edgeloop-trainer@{stack.project_id}.iam.gserviceaccount.com"})})


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_failed_execution_frees_its_run_within_one_tick(local_stack, server, backend, ending):
    settings = cloud_settings(local_stack, backend)
    launch_path, launched, name, get_path, running, failed, cancelled = BACKENDS[backend](
        launchers.cloud_run_job_name(settings))
    model = fresh_model(local_stack, "watch")
    request = manual_request(model, "test", note="watched")
    server.answer("POST", launch_path, (200, launched))

    outcome = launch.launch(request, settings)
    run_ref = db(local_stack).document(layout.run_doc(outcome.run_id))
    key = "execution" if backend == "cloud_run_job" else "custom_job"
    assert run_ref.get().get("execution") == {"backend": backend, key: name}
    assert [r.path for r in server.sent("POST")] == [launch_path]

    # A running execution keeps its run.
    server.answer("GET", get_path, (200, running))
    tick.handle_tick({"model": model}, uuid.uuid4().hex, settings)
    assert run_ref.get().get("status") == RunStatus.QUEUED
    assert control(local_stack, model)["active_run"]["run_id"] == outcome.run_id

    # The backend says it failed (or was cancelled): one tick ends the run.
    server.answer("GET", get_path, (200, failed if ending == "failed" else cancelled))
    tick.handle_tick({"model": model}, uuid.uuid4().hex, settings)
    run = run_ref.get().to_dict()
    reason = REASONS[backend][0 if ending == "failed" else 1]
    assert run["status"] == RunStatus.FAILED and run["failed_stage"] == "start"
    assert reason in run["error"] and name in run["error"]
    assert ("was cancelled" in run["error"]) == (ending == "cancelled")
    assert run["backend_state"]["phase"] == ending and reason in run["backend_state"]["reason"]
    assert run["backend_state"]["ended_at"] is not None
    state = control(local_stack, model)
    assert state["active_run"] is None
    assert request.cause not in state.get("causes", {})
    assert [(p["cause"], p["evidence"]) for p in state["pending"]] == [(request.cause, {"failed_run": outcome.run_id})]
    assert [r.path for r in server.sent("GET")] == [get_path, get_path]

    # Later ticks leave the ended run alone and ask the backend nothing more about it.
    tick.handle_tick({"model": model}, uuid.uuid4().hex, settings)
    assert run_ref.get().get("error") == run["error"] and len(server.sent("GET")) == 2
