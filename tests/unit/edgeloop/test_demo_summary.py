"""The demo's summary names what actually happened, not what the script expected."""

import re

from rich.console import Console

from edgeloop.demo import DemoResult, summary_table


def rendered(result: DemoResult) -> str:
    console = Console(width=80, record=True)  # an 80-column terminal: nothing cut, no line wider
    console.print(summary_table(result))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text, text
    return text


def record(stage: str) -> dict:
    return {"stage": stage, "metrics": {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.9}, "history": []}


def test_the_loop_close_names_the_version_that_fixed_the_drift():
    versions = {"v1": record("archived"), "v2": record("rejected"), "v3": record("production")}
    text = rendered(DemoResult([], versions, [], 61.0, 170.0, {}, None, True, fixed_by="v3"))
    assert re.search(r"loop close: v3's run launched → fleet on v3\s*│\s*61 s", text)
    assert "v2's run" not in text


def test_a_loop_that_did_not_close_says_so():
    text = rendered(DemoResult([], {"v1": record("production")}, [], None, 600.0, {}, None, False))
    assert "loop NOT closed" in text and "not closed" in text


def test_each_version_shows_its_field_holdout_beside_production_on_the_same_captures():
    v2 = {**record("production"), "metrics": {"int8_accuracy": 0.97, "int8_drifted_accuracy": 0.9, "field_holdout_images": 34,
                                              "int8_field_accuracy": 0.95, "production_int8_field_accuracy": 0.4}}
    text = rendered(DemoResult([], {"v1": record("archived"), "v2": v2}, [], 61.0, 170.0, {}, None, True, fixed_by="v2"))
    assert re.search(r"│ v1\s+│(?:[^│\n]*│){4}\s*-\s*│", text)
    field = re.search(r"│ v2\s+│(?:[^│\n]*│){4}\s*([\d.]+)% vs ([\d.]+)% \((\d+)\)", text)  # as test_demo reads it
    assert field and field.groups() == ("95.0", "40.0", "34")
    clean_dark = re.search(r"│ v2\s+│[^│\n]*│[^│\n]*│\s*([\d.]+)%\s*│\s*([\d.]+)%\s*│", text)
    assert clean_dark and clean_dark.groups() == ("97.0", "90.0")


def test_every_stage_version_and_round_shows_whole_in_80_columns():
    from collections import Counter

    from edgeloop.demo import Round

    history = [{"target": "candidate", "actor": "trainer:r"}, {"target": "canary", "actor": "trainer:digits-1"},
               {"target": "production", "actor": "on_feedback"}, {"target": "rolled_back", "actor": "operator:alice"}]
    versions = {f"v{n}": {**record(stage), "manifest": {"objects": 12345}, "history": history}
                for n, stage in [(1, "archived"), (2, "rolled_back"), (10, "production"), (11, "canary")]}
    last = Round(9, "drift", 300.0, Counter({"v10": 8, "v11": 2}), Counter({"v10": 800, "v11": 200}), Counter({"v10": 790, "v11": 150}))
    runs = [{"reason": "new_data"}, {"reason": "success_rate", "folded": ["x"]}, {"reason": "drift"}]
    stages = {"local stack up": 12.0, "fleet: drift, retrain, canary, promotion": 100.0}
    text = rendered(DemoResult([last], versions, runs, 61.0, 170.0, stages, None, True, fixed_by="v10"))
    for version, stage in [("v1", "archived"), ("v2", "rolled_back"), ("v10", "production"), ("v11", "canary")]:
        assert re.search(rf"│ {version}\s+│ {stage}\s+│\s+12345 │", text), text
    assert "v11: canary by trainer; production by on_feedback; rolled_back by operator" in " ".join(text.split())
    assert re.search(r"field success, last round \(v10, v11\)\s*│\s*94.0% of 1000", text)
    assert re.search(r"training runs: success_rate\s*│\s*1", text) and re.search(r"requests folded into runs\s*│\s*1", text)
    assert re.search(r"stage: fleet: drift, retrain, canary, promotion\s*│\s*100.0 s", text)


def test_the_loop_timeline_and_its_split_into_policy_work_and_latency_show_in_80_columns():
    from datetime import datetime, timedelta, timezone

    from edgeloop.loop_timing import loop_timeline
    from shared.registry import VersionRecord

    onset = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)

    def at(s: float) -> str:
        return (onset + timedelta(seconds=s)).isoformat()

    history = [{"source": None, "target": "candidate", "at": at(60), "actor": "trainer:r2", "reason": "trained"},
               {"source": "candidate", "target": "canary", "at": at(61), "actor": "trainer:r2", "reason": "gate"},
               {"source": "canary", "target": "production", "at": at(75), "actor": "on_feedback", "reason": "ok"}]
    v2 = VersionRecord.model_validate({"model": "digits", "version": "v2", "run_id": "r2", "created": at(60),
                                       "stage": "production", "history": history})
    waited = {"cause": "drift:digits:v1:1", "requested_at": at(9), "field_wait": "field holdout 8/20"}
    run = {"run_id": "r2", "reason": "drift", "cause": "pending:digits:drift:digits:v1:1", "launcher": "local",
           "requested_at": at(24), "evidence": {"pending": [waited]}, "created": at(24.5), "started": at(25)}
    timeline = loop_timeline(onset, [{"created": at(9), "status": "drift"}], run, v2, [], onset + timedelta(seconds=80))
    result = DemoResult([], {"v1": record("archived"), "v2": record("production")}, [run], 55.0, 170.0, {}, None, True,
                        fixed_by="v2", timeline=timeline)
    text = rendered(result)
    assert "loop timeline: 80 s from the room going dark to the whole fleet" in " ".join(text.split())
    assert re.search(r"│ run launched\s+│\s+24 s │\s+15.5 s │ policy\s+│ field evidence:", text), text
    split = re.search(r"policy / work / latency\s*│\s*([\d.]+) s / ([\d.]+) s / ([\d.]+) s", text)  # as test_demo reads it
    assert split and split.groups() == ("43.5", "36.0", "0.5")
