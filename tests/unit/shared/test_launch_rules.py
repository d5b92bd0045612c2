"""How retrain requests become runs: one run per cause, at most one active run per model."""


from hypothesis import given, settings as hsettings, strategies as st

from shared.launch_rules import Action, allocated_version, decide, finish, sweep_request
from shared.retrain import RetrainReason, RetrainRequest, manual_request, new_data_request

TTL = 100.0


def request(cause="new_data:digits:after-start", reason=RetrainReason.NEW_DATA):
    return RetrainRequest(model="digits", reason=reason, cause=cause)


def test_the_first_request_launches_and_allocates_v1():
    decision = decide(None, request(), now=0, new_run_id="r1", lock_ttl_s=TTL)
    assert decision.action is Action.LAUNCH and decision.run_id == "r1"
    assert decision.state["active_run"]["expires_at"] == TTL
    assert allocated_version(decision.state) == "v1"


def test_a_redelivered_request_is_a_duplicate_even_after_its_run_ended():
    state = decide(None, request(), 0, "r1", TTL).state
    assert decide(state, request(), 1, "r2", TTL).action is Action.DUPLICATE
    done = finish(state, "r1", now=2, cooldown_s=0, forget_causes=False)
    assert decide(done, request(), 3, "r3", TTL).action is Action.DUPLICATE


def test_a_different_cause_during_a_run_is_folded_and_then_served_by_the_next_run():
    state = decide(None, request(), 0, "r1", TTL).state
    folded = decide(state, request("drift:digits:v1:after-r1", RetrainReason.DRIFT), 1, "r2", TTL)
    assert folded.action is Action.FOLD and folded.run_id == "r1"
    assert [p["cause"] for p in folded.state["pending"]] == ["drift:digits:v1:after-r1"]
    done = finish(folded.state, "r1", now=2, cooldown_s=10, forget_causes=False)
    assert sweep_request(done, "digits", now=5) is None  # cooling down
    sweep = sweep_request(done, "digits", now=12)
    launched = decide(done, sweep, 12, "r2", TTL)
    assert launched.action is Action.LAUNCH and [f["cause"] for f in launched.folded] == ["drift:digits:v1:after-r1"]
    assert decide(launched.state, sweep, 13, "r3", TTL).action is Action.DUPLICATE


def test_a_stale_sweep_whose_causes_were_all_served_launches_nothing():
    state = decide(None, request(), 0, "r1", TTL).state
    state = decide(state, request("other"), 1, "x", TTL).state
    done = finish(state, "r1", 2, 0, False)
    sweep = sweep_request(done, "digits", 3)
    state = decide(done, sweep, 3, "r2", TTL).state
    state = finish(state, "r2", 4, 0, False)
    assert decide(state, sweep.model_copy(update={"cause": "pending:different"}), 5, "r3", TTL).action is Action.DUPLICATE


def test_cooldown_defers_automatic_requests_but_not_manual_ones():
    state = finish(decide(None, request(), 0, "r1", TTL).state, "r1", now=1, cooldown_s=60, forget_causes=False)
    assert decide(state, request("new_data:digits:after-r1"), 2, "r2", TTL).action is Action.DEFER
    assert decide(state, manual_request("digits", "op"), 2, "r2", TTL).action is Action.LAUNCH


def test_paused_training_keeps_automatic_requests_pending():
    decision = decide({"paused": True}, request(), 0, "r1", TTL)
    assert decision.action is Action.DEFER and decision.state["pending"]
    assert sweep_request(decision.state, "digits", 1) is None
    assert decide({"paused": True}, manual_request("digits", "op"), 0, "r1", TTL).action is Action.LAUNCH


def test_an_expired_lock_is_reclaimed_by_the_next_request():
    state = decide(None, request(), 0, "r1", TTL).state
    decision = decide(state, request("manual:x", RetrainReason.MANUAL), TTL + 1, "r2", TTL)
    assert decision.action is Action.LAUNCH and decision.reclaimed_run_id == "r1"


def test_only_the_lock_holder_can_release_it_and_a_failed_start_forgets_its_causes():
    state = decide(None, request(), 0, "r1", TTL).state
    assert finish(state, "someone-else", 1, 0, False) is None
    released = finish(state, "r1", 1, 0, forget_causes=True)
    assert decide(released, request(), 2, "r2", TTL).action is Action.LAUNCH


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.booleans(), st.integers(0, 50)), max_size=40))
def test_any_sequence_of_requests_and_ends_never_has_two_active_runs_or_serves_a_cause_twice(steps):
    state, now, served_by = None, 0.0, {}
    for cause, end_active, dt in steps:
        now += dt
        if end_active and state and state.get("active_run"):
            state = finish(state, state["active_run"]["run_id"], now, 5, False)
        decision = decide(state, request(cause), now, f"r{now}", TTL)
        if decision.reclaimed_run_id:  # its holder died: what it was to serve was never served
            served_by = {c: run for c, run in served_by.items() if run != decision.reclaimed_run_id}
        if decision.action is Action.LAUNCH:
            assert not (state or {}).get("active_run") or state["active_run"]["expires_at"] <= now
            for launched in (cause, *(f["cause"] for f in decision.folded)):
                assert launched not in served_by, f"{launched} served twice"
                served_by[launched] = decision.run_id
        state = decision.state


def test_an_abandoned_runs_causes_are_pending_again_and_its_redelivery_launches_them():
    state = decide(None, request(), 0, "r1", TTL).state
    state = decide(state, request("drift:digits:v1:after-r1", RetrainReason.DRIFT), 1, "x", TTL).state
    before = decide(state, request(), TTL - 1, "r2", TTL)
    assert before.action is Action.DUPLICATE  # r1 may still be starting
    after = decide(state, request(), TTL + 1, "r2", TTL)
    assert after.action is Action.LAUNCH and after.reclaimed_run_id == "r1"
    assert after.state["causes"]["new_data:digits:after-start"] == "r2"
    assert [f["cause"] for f in after.folded] == ["drift:digits:v1:after-r1"]


def test_a_sweep_reclaims_an_expired_lock_even_with_nothing_else_pending():
    state = decide(None, request(), 0, "r1", TTL).state
    assert sweep_request(state, "digits", TTL - 1) is None
    sweep = sweep_request(state, "digits", TTL + 1)
    assert [p["cause"] for p in sweep.evidence["pending"]] == ["new_data:digits:after-start"]
    launched = decide(state, sweep, TTL + 1, "r2", TTL)
    assert launched.action is Action.LAUNCH and launched.reclaimed_run_id == "r1"
    assert launched.state["causes"]["new_data:digits:after-start"] == "r2"
    assert decide(launched.state, request(), TTL + 2, "r3", TTL).action is Action.DUPLICATE


def test_while_paused_a_sweep_relaunches_only_an_abandoned_manual_request():
    state = decide({"paused": True}, request(), 0, "x", TTL).state
    assert sweep_request(state, "digits", 1) is None
    state = decide(state, manual_request("digits", "op"), 1, "r1", TTL).state
    state["pending"] = [{"cause": "drift:d", "reason": "drift", "evidence": {}, "requested_at": "t"}]
    sweep = sweep_request(state, "digits", TTL + 2)
    assert {p["cause"] for p in sweep.evidence["pending"]} == {"new_data:digits:after-start", state["active_run"]["cause"]}
    assert {p["reason"] for p in sweep.evidence["pending"]} == {"manual"}  # drift waits for the pause to end
    assert decide(state, sweep, TTL + 2, "r2", TTL).action is Action.LAUNCH


def test_an_abandoned_run_of_a_paused_model_leaves_its_causes_pending():
    state = decide(None, manual_request("digits", "op"), 0, "r1", TTL).state
    state["paused"] = True
    deferred = decide(state, request(), TTL + 1, "r2", TTL)
    assert deferred.action is Action.DEFER and deferred.reclaimed_run_id == "r1"
    assert not deferred.state["active_run"] and len(deferred.state["pending"]) == 2


def test_new_data_requests_need_the_threshold_and_name_the_last_run():
    assert new_data_request("digits", 199, 200, None) is None
    req = new_data_request("digits", 200, 200, "r7")
    assert req.cause == "new_data:digits:after-r7" and req.evidence["new_labelled_images"] == 200


def test_a_run_whose_trainer_died_frees_the_lock_and_its_causes_are_pending_again_after_the_cooldown():
    state = decide(None, request(), 0, "r1", TTL).state
    state = decide(state, request("drift:digits:v1:after-r1", RetrainReason.DRIFT), 1, "x", TTL).state  # folded: pending
    released = finish(state, "r1", now=5, cooldown_s=60, forget_causes=False, requeue_causes=True)
    assert released["active_run"] is None and released["cooldown_until"] == 65
    assert "new_data:digits:after-start" not in released["causes"]
    pending = {p["cause"]: p for p in released["pending"]}
    assert set(pending) == {"new_data:digits:after-start", "drift:digits:v1:after-r1"}
    assert pending["new_data:digits:after-start"]["evidence"] == {"failed_run": "r1"}
    assert pending["new_data:digits:after-start"]["reason"] == "new_data"  # the dead run's reason
    assert sweep_request(released, "digits", 64) is None  # the cooldown first: no tight relaunch loop
    sweep = sweep_request(released, "digits", 65)
    assert {p["cause"] for p in sweep.evidence["pending"]} == set(pending)
    launched = decide(released, sweep, 65, "r2", TTL)
    assert launched.action is Action.LAUNCH and launched.state["causes"]["new_data:digits:after-start"] == "r2"
    # A redelivery of the original request is a duplicate again once r2 serves it.
    assert decide(launched.state, request(), 66, "r3", TTL).action is Action.DUPLICATE


def test_a_run_with_an_outcome_keeps_its_causes_served():
    state = decide(None, request(), 0, "r1", TTL).state
    released = finish(state, "r1", now=5, cooldown_s=60, forget_causes=False)
    assert released["causes"] == {"new_data:digits:after-start": "r1"} and released["pending"] == []


def test_a_field_request_waiting_for_field_evidence_is_deferred_then_swept_once_the_holdout_is_there():
    wait = "field holdout 3/12 confirmed captures on v1"
    drift = request("drift:digits:v1:after-r1", RetrainReason.DRIFT)
    deferred = decide({}, drift, 0, "r1", TTL, field_wait=wait)
    assert deferred.action is Action.DEFER and "field holdout 3/12" in deferred.detail
    assert [(p["cause"], p["field_wait"]) for p in deferred.state["pending"]] == [("drift:digits:v1:after-r1", wait)]
    assert decide(deferred.state, manual_request("digits", "op"), 1, "r1", TTL, field_wait=wait).action is Action.LAUNCH
    sweep = sweep_request(deferred.state, "digits", now=5)
    still = decide(deferred.state, sweep, 5, "r1", TTL, field_wait="field holdout 9/12 confirmed captures on v1")
    assert still.action is Action.DEFER and len(still.state["pending"]) == 1  # the sweep is not one more request
    assert still.state["pending"][0]["field_wait"].startswith("field holdout 9/12")
    launched = decide(still.state, sweep, 9, "r1", TTL)
    assert launched.action is Action.LAUNCH and [f["cause"] for f in launched.folded] == ["drift:digits:v1:after-r1"]
    assert launched.folded[0]["field_wait"].startswith("field holdout 9/12")  # the run records what it waited for
