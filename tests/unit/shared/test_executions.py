"""What a cloud backend's word about a run's execution means for the run (shared.executions.judge)."""

import pytest

from shared.executions import KEEP, BackendState, Phase, Verdict, judge

RUNNING_RUN = {"run_id": "r1", "status": "running", "current_stage": "train"}
WHAT = "Cloud Run execution projects/p/locations/l/jobs/j/executions/e"
GRACE = 120.0


@pytest.mark.parametrize("phase, reason, error", [
    (Phase.FAILED, "Memory limit of 4096 MiB exceeded", f"{WHAT} failed: Memory limit of 4096 MiB exceeded"),
    (Phase.FAILED, "", f"{WHAT} failed"),
    (Phase.CANCELLED, "The execution was cancelled.", f"{WHAT} was cancelled: The execution was cancelled."),
    (Phase.GONE, "not found", f"{WHAT} no longer exists: not found"),
])
def test_an_execution_that_ended_badly_fails_the_run_at_once_with_the_backends_reason(phase, reason, error):
    assert judge(RUNNING_RUN, BackendState(WHAT, phase, reason, ended_at=1000.0), 1000.0, GRACE) == Verdict(True, error)


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_running_execution_keeps_its_run(status):
    assert judge({**RUNNING_RUN, "status": status}, BackendState(WHAT, Phase.RUNNING), 10**9, GRACE) is KEEP


@pytest.mark.parametrize("status", ["published", "rejected", "failed"])
@pytest.mark.parametrize("phase", list(Phase))
def test_a_run_with_an_outcome_is_never_touched(status, phase):
    assert judge({**RUNNING_RUN, "status": status}, BackendState(WHAT, phase, "x", 0.0), 10**9, GRACE) is KEEP


def test_a_succeeded_execution_gets_a_grace_for_the_trainers_outcome_then_fails_the_run():
    state = BackendState(WHAT, Phase.SUCCEEDED, ended_at=1000.0)
    assert judge(RUNNING_RUN, state, 1000.0 + GRACE - 1, GRACE) is KEEP
    verdict = judge(RUNNING_RUN, state, 1000.0 + GRACE, GRACE)
    assert verdict.fail and verdict.error.startswith(f"{WHAT} succeeded 120s ago but the run recorded no outcome")
    # An end time the backend did not give: the grace counts as spent.
    assert judge(RUNNING_RUN, BackendState(WHAT, Phase.SUCCEEDED), 0.0, GRACE).fail


def test_what_the_backend_said_is_recorded_on_the_run():
    state = BackendState(WHAT, Phase.FAILED, "OOMKilled", 990.0)
    assert state.record(1000.0) == {"execution": WHAT, "phase": "failed", "reason": "OOMKilled", "ended_at": 990.0,
                                    "checked_at": 1000.0}
