"""The release process on the local stack: canaries advance, get promoted or rolled back by on_feedback alone.

Versions are published through the trainer's own publish path (a run holding
the lock, then ``publish_version``) with real signed models; feedback is
written as documents, so the real on_feedback function judges every step.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.localstack.function_logs import log_entries
from shared import layout
from shared.config import Settings
from shared.gcp import model_registry, training_lock
from shared.gcp.release import promote
from shared.gcp.tallies import version_tally
from shared.registry import ModelPointer, Stage, VersionRecord
from shared.retrain import manual_request
from shared.rollout import takes_candidate
from tests.integration.helpers import bucket, db, eventually, fresh_model
from tests.integration.test_client_sdk import device
from tests.model_fixtures import digits, make_ref, signing_key, trained_models  # noqa: F401 (fixtures)

RELEASE_WAIT_S = 90


@pytest.fixture(scope="module")
def settings(local_stack) -> Settings:
    return Settings(stack_dir=local_stack.directory)


def release(stack, settings: Settings, model: str, data: bytes, key) -> str:
    """Publish ``data`` as the model's next version the way the trainer does; returns the version."""
    created = training_lock.create_run(manual_request(model, who="test"), settings)
    assert created.action == "launch", created.detail
    ref = make_ref(model, created.version, data, key)
    bucket(stack).blob(ref.path).upload_from_string(data, content_type="application/octet-stream")
    pointer = model_registry.load_pointer(model, settings)
    record = VersionRecord(
        model=model, version=created.version, run_id=created.run_id, created=datetime.now(timezone.utc),
        stage=Stage.CANDIDATE, ref=ref, parent=pointer.production.version if pointer and pointer.production else None,
        gate={"passed": True, "checks": []}, metrics={"int8_accuracy": 0.9},
    )
    assert model_registry.publish_version(record, {}, settings).published
    return created.version


@pytest.fixture
def canary(local_stack, settings, trained_models, signing_key):
    """A fresh model with v1 in production and v2 a canary at the first rollout step."""
    model = fresh_model(local_stack, "release", paused=False)
    assert release(local_stack, settings, model, trained_models["v1"].data, signing_key) == "v1"
    assert release(local_stack, settings, model, trained_models["v2"].data, signing_key) == "v2"
    return model


REPORTS_PER_USER = 2  # an honest fleet: many users, each far below the per-user cap


def give_feedback(stack, model: str, version: str, correct: int, wrong: int) -> None:
    """``correct + wrong`` reports on ``version`` from users of their own, ``REPORTS_PER_USER`` each."""
    fleet = uuid.uuid4().hex[:6]
    batch = db(stack).batch()
    for index in range(correct + wrong):
        document = db(stack).document(layout.feedback_doc(model, f"{version}-{uuid.uuid4().hex[:10]}"))
        batch.set(document, {"uid": f"user-{fleet}-{index // REPORTS_PER_USER}", "model_version": version,
                             "predicted_label": "1", "confidence": 0.9, "correct": index < correct})
    batch.commit()


def pointer(stack, model: str) -> ModelPointer:
    return ModelPointer.model_validate(db(stack).document(layout.model_doc(model)).get().to_dict())


def record(stack, model: str, version: str) -> dict:
    return db(stack).document(layout.version_doc(model, version)).get().to_dict()


def transitions(stack, model: str, version: str) -> list[tuple[str | None, str, str]]:
    return [(t["source"], t["target"], t["actor"]) for t in record(stack, model, version)["history"]]


def wait_for(stack, model: str, what: str, condition) -> ModelPointer:
    return eventually(lambda: condition(pointer(stack, model)) and pointer(stack, model), RELEASE_WAIT_S, what)


def a_device_in(model: str, canary: bool, percent: float) -> str:
    return next(d for d in (f"phone-{i}" for i in range(1000)) if takes_candidate(d, model, percent) == canary)


# --- automatic ------------------------------------------------------------------------------------

def test_a_better_canary_climbs_the_steps_and_becomes_production_with_no_human_step(local_stack, settings, canary, signing_key, tmp_path):
    model = canary
    start = pointer(local_stack, model)
    assert start.production.version == "v1" and start.rollout.candidate.version == "v2" and start.rollout.percent == 10
    in_canary = device(local_stack, tmp_path, model, signing_key, device_id=a_device_in(model, True, 10))
    elsewhere = device(local_stack, tmp_path, model, signing_key, device_id=a_device_in(model, False, 50))
    assert in_canary.ensure_model().version == "v2" and elsewhere.ensure_model().version == "v1"

    # Enough reports for the anytime-valid bounds to show v2 within release.max_drop of v1 at each step.
    give_feedback(local_stack, model, "v1", correct=200, wrong=50)
    give_feedback(local_stack, model, "v2", correct=300, wrong=0)
    wait_for(local_stack, model, "the canary to advance to 50%", lambda p: p.rollout.percent == 50)

    give_feedback(local_stack, model, "v1", correct=200, wrong=50)
    give_feedback(local_stack, model, "v2", correct=300, wrong=0)
    final = wait_for(local_stack, model, "v2 to be promoted", lambda p: p.production.version == "v2")
    assert final.rollout.candidate is None

    history = transitions(local_stack, model, "v2")
    assert [t[:2] for t in history] == [(None, "candidate"), ("candidate", "canary"), ("canary", "production")]
    assert history[-1][2] == "on_feedback"
    assert [t[:2] for t in transitions(local_stack, model, "v1")][-1] == ("production", "archived")
    promoted = record(local_stack, model, "v2")
    assert promoted["stage"] == "production" and promoted["promotion"]["previous"] == "v1"
    evidence = promoted["history"][-1]["evidence"]
    assert evidence["verdict"] == "promote" and evidence["judged"]["total"] >= 20 and evidence["reference"]["total"] >= 20
    assert elsewhere.check_for_update().status.value == "updated" and elsewhere.active.version == "v2"  # the fleet follows


def test_a_worse_canary_is_rolled_back_automatically_and_its_devices_return_to_production(local_stack, settings, canary, signing_key, tmp_path):
    model = canary
    phone = device(local_stack, tmp_path, model, signing_key, device_id=a_device_in(model, True, 10))
    assert phone.ensure_model().version == "v2"

    give_feedback(local_stack, model, "v1", correct=28, wrong=2)
    give_feedback(local_stack, model, "v2", correct=4, wrong=16)
    after = wait_for(local_stack, model, "the canary to be rolled back", lambda p: p.rollout.candidate is None)
    assert after.production.version == "v1"
    rolled_back = record(local_stack, model, "v2")
    assert rolled_back["stage"] == "rolled_back"
    last = rolled_back["history"][-1]
    assert (last["source"], last["target"], last["actor"]) == ("canary", "rolled_back", "on_feedback")
    assert last["evidence"]["difference_upper"] < 0 and last["reason"].startswith("worse")

    assert phone.check_for_update().status.value == "updated" and phone.active.version == "v1"
    alert = eventually(lambda: [e for e in log_entries(local_stack, "on_feedback")
                                if e.get("event") == "model_rolled_back" and e.get("model") == model], 30, "the alert line")
    assert alert[0]["severity"] == "WARNING" and alert[0]["automatic"] is True


def test_a_bad_canary_never_triggers_a_success_rate_retrain(local_stack, settings, canary):
    give_feedback(local_stack, canary, "v1", correct=20, wrong=0)
    give_feedback(local_stack, canary, "v2", correct=0, wrong=25)
    wait_for(local_stack, canary, "the canary to be rolled back", lambda p: p.rollout.candidate is None)
    state = training_lock.training_state(canary, settings)
    assert not any(cause.startswith("success_rate") for cause in (state.get("causes") or {}))
    assert not any(p["cause"].startswith("success_rate") for p in state.get("pending") or [])


def test_production_that_collapses_after_promotion_is_rolled_back_to_its_parent(local_stack, settings, canary):
    model = canary
    give_feedback(local_stack, model, "v1", correct=24, wrong=1)  # v1's rate during the canary step
    eventually(lambda: version_tally(db(local_stack), model, "v1").total == 25, 30, "v1's feedback")
    promote(model, "v2", None, "alice", settings)  # an operator promotes early
    assert record(local_stack, model, "v2")["promotion"]["previous_rate"] == {"correct": 24, "total": 25}

    give_feedback(local_stack, model, "v2", correct=5, wrong=20)
    after = wait_for(local_stack, model, "production to return to v1", lambda p: p.production.version == "v1")
    assert after.rollout.candidate is None
    assert [t[:2] for t in transitions(local_stack, model, "v1")][-2:] == [("production", "archived"), ("archived", "production")]
    assert transitions(local_stack, model, "v2")[-1] == ("production", "rolled_back", "on_feedback")


# --- by an operator --------------------------------------------------------------------------------

def cli(local_stack, *args: str):
    """The command in an 80-column terminal; none of its lines is wider, nor a log line of the code it ran."""
    result = CliRunner().invoke(app, [*args, "--dir", str(local_stack.path)], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert max(map(len, lines), default=0) <= 80, result.stdout
    if "--json" not in args:
        assert not [line for line in lines if line.lstrip().startswith('{"') or "XNNPACK" in line], result.stdout
    return result


def test_an_operator_sets_the_rollout_promotes_and_rolls_back_with_every_move_in_the_history(local_stack, settings, canary, monkeypatch):
    model = canary
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))
    result = cli(local_stack, "promote", model, "v2", "--percent", "30", "--reason", "more devices")
    assert result.exit_code == 0, result.output
    assert pointer(local_stack, model).rollout.percent == 30

    assert cli(local_stack, "promote", model, "v2").exit_code == 0
    assert pointer(local_stack, model).production.version == "v2"
    assert cli(local_stack, "rollback", model, "--reason", "bad reviews").exit_code == 0
    assert pointer(local_stack, model).production.version == "v1"

    v2 = record(local_stack, model, "v2")
    assert [(t["source"], t["target"]) for t in v2["history"]] == [
        (None, "candidate"), ("candidate", "canary"), ("canary", "production"), ("production", "rolled_back")]
    assert {t["actor"] for t in v2["history"][2:]} == {f"operator:{__import__('getpass').getuser()}"}
    assert v2["history"][-1]["reason"] == "bad reviews"

    status = cli(local_stack, "status", model)
    assert status.exit_code == 0, status.output
    assert "rolled_back" in status.output and "production" in status.output
    assert "v2 " in status.output and "production → rolled_back by operator:" in status.output and "bad reviews" in status.output
    # What promote and rollback logged (model_promoted, model_rolled_back) went to the stack's logs instead.
    logged = (local_stack.path / "logs" / "cli.log").read_text()
    assert '"event": "model_promoted"' in logged and '"event": "model_rolled_back"' in logged

    document = json.loads(cli(local_stack, "status", model, "--json").stdout)
    assert document["stack"]["healthy"] and {c["state"] for c in document["stack"]["components"]} == {"healthy"}
    [view] = document["models"]
    assert view["model"] == model and view["production"] == "v1" and view["canary"] is None
    v2 = next(v for v in view["versions"] if v["version"] == "v2")
    assert v2["stage"] == "rolled_back" and v2["last_change"]["reason"] == "bad reviews"
    runs = json.loads(cli(local_stack, "runs", model, "--json").stdout)
    assert runs == {"runs": [run for run in runs["runs"] if run["model"] == model]}


@pytest.mark.parametrize("args, refusal", [
    (("promote", "{model}", "v9"), "has no version v9"),
    (("rollback", "{model}"), "v1 has no earlier version"),
])
def test_illegal_operator_moves_are_refused_and_change_nothing(local_stack, settings, trained_models, signing_key, monkeypatch, args, refusal):
    model = fresh_model(local_stack, "refuse", paused=False)
    release(local_stack, settings, model, trained_models["v1"].data, signing_key)
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))
    before = db(local_stack).document(layout.model_doc(model)).get().to_dict()
    result = cli(local_stack, *(a.format(model=model) for a in args))
    assert result.exit_code == 1 and refusal in result.output
    assert db(local_stack).document(layout.model_doc(model)).get().to_dict() == before


def test_a_rolled_back_version_cannot_be_promoted_straight_to_production(local_stack, settings, canary, monkeypatch):
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))
    assert cli(local_stack, "rollback", canary).exit_code == 0
    refused = cli(local_stack, "promote", canary, "v2")
    assert refused.exit_code == 1 and "rolled_back: it cannot become production" in refused.output
    retried = cli(local_stack, "promote", canary, "v2", "--percent", "5")  # but it may be offered again as a canary
    assert retried.exit_code == 0 and pointer(local_stack, canary).rollout.percent == 5


def test_report_writes_a_png_of_success_drift_and_accuracy(local_stack, settings, canary, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGELOOP_STACK_DIR", str(local_stack.path))
    give_feedback(local_stack, canary, "v1", correct=10, wrong=2)
    output = tmp_path / "report.png"
    result = cli(local_stack, "report", canary, "--output", str(output))
    assert result.exit_code == 0, result.output
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 20_000
    assert "v1: 83.3% of 12 reports correct" in result.output


def test_while_a_canary_rolls_out_production_asks_for_no_retrain_and_none_is_swept(local_stack, settings, canary):
    """A run now would replace the canary (the candidate fix) before its evidence is in."""
    from shared.gcp import retrain_requests

    model = canary
    wrong = settings.thresholds.min_feedback_samples + 50  # far below min_success_rate, from many users
    give_feedback(local_stack, model, "v1", correct=0, wrong=wrong)
    eventually(lambda: version_tally(db(local_stack), model, "v1").total == wrong, RELEASE_WAIT_S, "every report counted")
    state = db(local_stack).document(layout.training_control_doc(model)).get().to_dict() or {}
    assert not state.get("pending") and not state.get("active_run")
    assert not [e for e in log_entries(local_stack, "on_feedback")
                if e.get("event") == "retrain_requested" and e.get("model") == model]

    # A cause asked before the canary was published stays pending until the canary is promoted or rolled back.
    db(local_stack).document(layout.training_control_doc(model)).set(
        {"pending": [{"reason": "success_rate", "cause": f"success_rate:{model}:v1:earlier"}], "cooldown_until": 0},
        merge=True)
    assert retrain_requests.sweep_pending(model, settings) is None
