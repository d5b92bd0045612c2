"""What arrives on retrain-requests: full requests and the scheduler's tick."""

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from shared.errors import MalformedEventError
from shared.retrain import (
    RetrainReason, RetrainRequest, drift_check_model, manual_request, request_from_message, require_known_model,
)

MONDAY = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)


def test_a_full_request_round_trips_through_a_message():
    original = manual_request("digits", "operator:alice", "new camera")
    assert request_from_message(json.loads(original.to_message()), MONDAY) == original


def test_scheduler_ticks_of_one_week_share_a_cause_and_the_next_week_differs():
    tick = {"model": "digits", "reason": "schedule"}
    first = request_from_message(tick, MONDAY)
    again = request_from_message(tick, datetime(2026, 11, 29, 23, 0, tzinfo=timezone.utc))
    later = request_from_message(tick, datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc))
    assert first.reason is RetrainReason.SCHEDULE and first.cause == again.cause == "schedule:digits:2026-W48"
    assert later.cause != first.cause


@pytest.mark.parametrize(
    "payload, problem",
    [
        ({"model": "digits"}, "reason"),
        ({"model": "Digits!", "reason": "manual", "cause": "c"}, "model"),
        ({"model": "digits", "reason": "because", "cause": "c"}, "reason"),
        ({"model": "digits", "reason": "manual", "cause": "c", "extra": 1}, "extra"),
        ({"reason": "schedule"}, "model"),
        ([1, 2], "message"),
    ],
)
def test_a_malformed_request_names_what_is_wrong(payload, problem):
    with pytest.raises(MalformedEventError, match=problem):
        request_from_message(payload, MONDAY)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)))
def test_any_json_is_a_request_or_a_malformed_event_error(payload):
    try:
        assert isinstance(request_from_message(payload, MONDAY), RetrainRequest)
    except MalformedEventError as exc:
        assert str(exc).startswith("invalid retrain request")


# --- drift-checks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload, model", [(None, None), ({}, None), ({"model": "digits"}, "digits"),
                                            ({"model": "digits", "reason": "schedule"}, "digits")])  # scheduler.tf
def test_a_drift_check_names_one_model_or_every_configured_one(payload, model):
    assert drift_check_model(payload) == model


@pytest.mark.parametrize(
    "payload, problem",
    [
        ([1], "message"), ("digits", "message"), ({"model": 5}, "model"), ({"model": "../etc"}, "model"),
        ({"model": "a/b"}, "model"), ({"model": ""}, "model"), ({"model": "Digits"}, "model"),
        ({"model": "digits", "extra": 1}, "extra"), ({"model": "digits", "reason": "manual"}, "reason"),
        ({"modle": "digits"}, "modle"),
    ],
)
def test_a_malformed_drift_check_names_what_is_wrong(payload, problem):
    with pytest.raises(MalformedEventError, match=problem):
        drift_check_model(payload)


# --- the model a message names ----------------------------------------------------------------------

def test_a_registered_model_is_known_and_a_configured_one_only_where_allowed():
    assert require_known_model("digits", frozenset({"3"})) == "digits"
    assert require_known_model("digits", None, configured=("digits",)) == "digits"  # the scheduler's own model
    with pytest.raises(MalformedEventError, match="unknown model 'ghost'"):
        require_known_model("ghost", None, configured=("digits",))
    with pytest.raises(MalformedEventError, match="unknown model 'digits'"):
        require_known_model("digits", None)  # launch_training: training needs the registered labels
