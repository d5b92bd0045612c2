"""Cloud Run Admin API v2 and Vertex AI v1 as the launcher backends' clients see them, for a local REST server.

The bodies follow the public API reference's JSON (camelCase fields, enum names, RFC 3339 times;
``projects.locations.jobs.run`` answers a long-running Operation whose metadata is the new Execution,
``projects.locations.jobs.executions.get`` an Execution, ``projects.locations.customJobs.create`` and
``.get`` a CustomJob, whose project is shown by number). ``point_launchers_at`` makes
``shared.gcp.launchers`` build its real clients against such a server.
"""

from __future__ import annotations

from typing import Any

from tests.google_rest import GoogleRestServer

PROJECT = "acme-prod"
PROJECT_NUMBER = "734918205561"
REGION = "europe-west4"
JOB = f"projects/{PROJECT}/locations/{REGION}/jobs/edgeloop-trainer"
EXECUTION = f"{JOB}/executions/edgeloop-trainer-x7k2p"
CUSTOM_JOB = f"projects/{PROJECT_NUMBER}/locations/{REGION}/customJobs/4567890123456789012"


def point_launchers_at(server: GoogleRestServer, monkeypatch) -> None:
    """Every backend client the launchers and the watcher build talks REST to ``server``."""
    from shared.gcp import launchers

    real = launchers.cloud_client
    monkeypatch.setattr(launchers, "cloud_client", lambda api, region, **kwargs: real(api, region, **{
        **server.client_kwargs(), **kwargs}))


def run_operation(execution: str = EXECUTION) -> dict[str, Any]:
    """``jobs.run``'s answer: the operation, not done, with the starting Execution as its metadata."""
    return {
        "name": f"projects/{PROJECT}/locations/{REGION}/operations/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
        "metadata": {
            "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
            **execution_body(execution, completed=None),
        },
        "done": False,
    }


def execution_body(name: str = EXECUTION, completed: str | None = "CONDITION_FAILED", message: str = "",
                   reason: str = "", failed: int = 0, cancelled: int = 0, succeeded: int = 0) -> dict[str, Any]:
    """An Execution; ``completed`` is the state of its terminal "Completed" condition (None: still running)."""
    body: dict[str, Any] = {
        "name": name,
        "uid": "5f0e3c1a-8d47-4b8e-9a51-2c6f7e4d9b10",
        "generation": "1",
        "createTime": "2026-11-23T10:00:01.204193Z",
        "startTime": "2026-11-23T10:00:09.551031Z",
        "job": name.split("/jobs/")[1].split("/")[0],
        "parallelism": 1,
        "taskCount": 1,
        "logUri": f"https://console.cloud.google.com/logs/viewer?project={PROJECT}&advancedFilter=...",
        "etag": '"execution-etag-1"',
        "conditions": [
            {"type": "ResourcesAvailable", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "2026-11-23T10:00:08Z"},
            {"type": "Started", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "2026-11-23T10:00:09Z"},
        ],
    }
    if completed is None:
        body["reconciling"] = True
        body["runningCount"] = 1
        body["conditions"].append({"type": "Completed", "state": "CONDITION_PENDING",
                                   "lastTransitionTime": "2026-11-23T10:00:09Z"})
        return body
    body.update(completionTime="2026-11-23T10:03:12.907311Z", observedGeneration="1")
    for field, count in (("failedCount", failed), ("cancelledCount", cancelled), ("succeededCount", succeeded)):
        if count:
            body[field] = count
    condition = {"type": "Completed", "state": completed, "lastTransitionTime": "2026-11-23T10:03:12Z"}
    if message:
        condition["message"] = message
    if reason:
        condition["executionReason"] = reason
    body["conditions"].append(condition)
    return body


def failed_execution(name: str = EXECUTION) -> dict[str, Any]:
    return execution_body(name, "CONDITION_FAILED", failed=1, reason="NON_ZERO_EXIT_CODE",
                          message="Task edgeloop-trainer-x7k2p-task0 failed with message: Memory limit of 4096 MiB "
                                  "exceeded with 4127 MiB used.")


def cancelled_execution(name: str = EXECUTION) -> dict[str, Any]:
    return execution_body(name, "CONDITION_FAILED", cancelled=1, reason="CANCELLED",
                          message="The execution was cancelled.")


def custom_job_body(name: str = CUSTOM_JOB, state: str = "JOB_STATE_PENDING", error: tuple[int, str] | None = None,
                    spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CustomJob as create and get answer it (``spec``: the job spec the server echoes)."""
    body: dict[str, Any] = {
        "name": name,
        "displayName": "edgeloop-digits-20261123-abc",
        "jobSpec": spec or {},
        "state": state,
        "createTime": "2026-11-23T10:00:00.844312Z",
        "updateTime": "2026-11-23T10:00:00.844312Z",
        "labels": {"edgeloop-model": "digits"},
    }
    if state not in ("JOB_STATE_PENDING", "JOB_STATE_QUEUED"):
        body["startTime"] = "2026-11-23T10:01:31Z"
    if state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
        body["endTime"] = "2026-11-23T10:06:02Z"
    if error:
        body["error"] = {"code": error[0], "message": error[1]}
    return body


def failed_custom_job(name: str = CUSTOM_JOB) -> dict[str, Any]:
    return custom_job_body(name, "JOB_STATE_FAILED", (3, (
        "The replica workerpool0-0 exited with a non-zero status of 137. Termination reason: OOMKilled. To find out "
        "more about why your job exited please check the logs: https://console.cloud.google.com/logs/viewer?...")))


def cancelled_custom_job(name: str = CUSTOM_JOB) -> dict[str, Any]:
    return custom_job_body(name, "JOB_STATE_CANCELLED", (1, "CANCELED"))
