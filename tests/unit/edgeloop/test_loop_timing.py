"""The loop's timeline says when each step happened and whether the wait before it was latency, work or policy."""

from datetime import datetime, timedelta, timezone

from rich.console import Console

from edgeloop.loop_timing import (DRIFT, FLEET, LATENCY, LAUNCHED, POLICY, PRODUCTION, PUBLISHED, REQUESTED, STARTED,
                                  WORK, asked_at, loop_timeline, request_to_start_s)
from shared.registry import VersionRecord

ONSET = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return ONSET + timedelta(seconds=seconds)


def record(canary_s: float, production_s: float) -> VersionRecord:
    history = [{"source": None, "target": "candidate", "at": at(canary_s - 1), "actor": "trainer:r", "reason": "trained"},
               {"source": "candidate", "target": "canary", "at": at(canary_s), "actor": "trainer:r", "reason": "gate"},
               {"source": "canary", "target": "production", "at": at(production_s), "actor": "on_feedback", "reason": "ok"}]
    return VersionRecord.model_validate({"model": "digits", "version": "v2", "run_id": "r2", "created": at(canary_s - 1),
                                         "stage": "production", "history": history})


def run(**fields) -> dict:
    return {"run_id": "r2", "reason": "drift", "cause": "drift:digits:v1:1", "launcher": "local", "folded": [],
            "evidence": {}, **fields}


DRIFT_REPORTS = [{"created": at(-30), "status": "drift"},  # before the onset: another story
                 {"created": at(5), "status": "no_drift"}, {"created": at(12), "status": "drift"},
                 {"created": at(20), "status": "drift"}]


def test_a_run_launched_at_once_is_latency_from_its_ask_and_the_fleet_wait_is_policy():
    fixing = run(requested_at=at(14).isoformat(), created=at(14.4).isoformat(), started=at(15).isoformat())
    timeline = loop_timeline(ONSET, DRIFT_REPORTS, fixing, record(50, 70), [], at(80))
    rows = [(step.name, round(since, 1), round(wait, 1), step.kind) for step, since, wait in timeline.rows()]
    assert rows == [(DRIFT, 12, 12, POLICY), (REQUESTED, 14, 2, POLICY), (LAUNCHED, 14.4, 0.4, LATENCY),
                    (STARTED, 15, 0.6, LATENCY), (PUBLISHED, 50, 35, WORK), (PRODUCTION, 70, 20, POLICY),
                    (FLEET, 80, 10, POLICY)]
    assert timeline.total_s == 80
    assert round(timeline.seconds(LATENCY), 1) == 1.0 and timeline.seconds(WORK) == 35
    assert round(timeline.seconds(POLICY), 1) == 44


def test_a_request_that_waited_for_the_cooldown_shows_the_wait_as_policy_from_its_first_ask():
    earlier = {"run_id": "r1", "created": at(-100).isoformat(), "ended": at(-20).isoformat()}
    sweep = run(cause="pending:digits:drift:digits:v1:1", requested_at=at(40).isoformat(),
                evidence={"pending": [{"cause": "drift:digits:v1:1", "requested_at": at(14).isoformat()}]},
                created=at(41).isoformat(), started=at(41.5).isoformat())
    timeline = loop_timeline(ONSET, DRIFT_REPORTS, sweep, record(70, 90), [earlier], None)
    launched = timeline.step(LAUNCHED)
    assert timeline.step(REQUESTED).at == at(14) and launched.kind == POLICY and "cooldown_s after r1" in launched.why
    assert timeline.total_s is None  # the fleet never got there


def test_a_request_that_waited_for_an_active_run_says_which():
    active = {"run_id": "r1", "created": at(0).isoformat(), "ended": at(30).isoformat()}
    folded = run(requested_at=at(35).isoformat(), folded=[{"cause": "x", "requested_at": at(14).isoformat()}],
                 created=at(35).isoformat())
    launched = loop_timeline(ONSET, [], folded, record(60, 80), [active], at(90)).step(LAUNCHED)
    assert launched.kind == POLICY and "waited for r1 to finish" in launched.why


def test_request_to_start_counts_only_runs_no_policy_kept_waiting():
    runs = [run(requested_at=at(0).isoformat(), started=at(0.8).isoformat()),
            run(requested_at=at(0).isoformat(), started=at(50).isoformat(), cause="pending:digits:a"),
            run(requested_at=at(0).isoformat(), started=at(60).isoformat(), folded=[{"cause": "b"}]),
            run(requested_at=at(0).isoformat()),  # never started
            {"reason": "manual"}]  # recorded before runs carried their ask
    assert request_to_start_s(runs) == [0.8]


def test_the_ask_is_the_earliest_of_the_run_its_folded_and_swept_requests():
    swept = run(requested_at=at(9).isoformat(), folded=[{"requested_at": at(7).isoformat()}],
                evidence={"pending": [{"requested_at": at(3).isoformat()}, {"requested_at": at(5).isoformat()}]})
    assert asked_at(swept) == at(3) and asked_at({"folded": ["not a request"]}) is None


def test_the_demo_prints_the_timeline_whole_in_80_columns():
    from edgeloop.demo import timeline_table

    fixing = run(requested_at=at(14).isoformat(), created=at(14.4).isoformat(), started=at(15).isoformat())
    console = Console(width=80, record=True)
    console.print(timeline_table(loop_timeline(ONSET, DRIFT_REPORTS, fixing, record(50, 70), [], at(80))))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "80 s from the room going dark to the whole fleet" in " ".join(text.split())


def test_a_request_that_waited_for_field_evidence_shows_that_policy_not_the_old_cooldown():
    earlier = {"run_id": "r1", "created": at(-100).isoformat(), "ended": at(-60).isoformat()}
    waited = {"cause": "drift:digits:v1:1", "requested_at": at(10).isoformat(), "field_wait": "field holdout 4/12 …"}
    sweep = run(cause="pending:digits:drift:digits:v1:1", requested_at=at(30).isoformat(),
                evidence={"pending": [waited]}, created=at(31).isoformat(), started=at(31.4).isoformat())
    timeline = loop_timeline(ONSET, DRIFT_REPORTS, sweep, record(70, 85), [earlier], at(90))
    launched = timeline.step(LAUNCHED)
    assert launched.kind == POLICY and "min_field_holdout" in launched.why and "cooldown" not in launched.why
    assert [round(wait, 1) for step, _, wait in timeline.rows() if step.name == LAUNCHED] == [19]  # after the drift report at 12 s


def test_a_runs_work_lists_its_stages_in_order_with_the_train_stages_own_steps():
    from edgeloop.loop_timing import run_work

    run = {"stages": {
        "train": {"started_at": "2026-12-02T10:00:05+00:00", "seconds": 80.0},
        "snapshot": {"started_at": "2026-12-02T10:00:00+00:00", "seconds": 1.5},
        "upload": {"started_at": "2026-12-02T10:01:30+00:00"},  # still running: no seconds yet
    }, "result": {"train_stage_seconds": {"train": 60.0, "convert": 12.5}}}
    assert run_work(run) == "snapshot 1.5 s · train 80.0 s (train 60.0 s, convert 12.5 s)"
    assert run_work({}) == "no stages recorded"
