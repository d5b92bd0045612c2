"""A drift or success-rate retrain waits for field evidence: enough confirmed captures held out to judge it on."""

from datetime import datetime, timezone

import pytest

from shared.field_evidence import field_wait, first_asked, in_field_holdout, is_held_out_capture
from shared.retrain import RetrainReason
from trainer_job.split import in_field_holdout as trainer_holds_out

NAMES = [f"uploads/digits/user-{i % 7}/{i:06d}.png" for i in range(2000)]


def test_the_rule_holds_out_exactly_the_captures_the_trainer_holds_out():
    for share in (0.1, 0.2, 0.5):
        assert [in_field_holdout(n, share) for n in NAMES] == [trainer_holds_out(n, share) for n in NAMES]
    assert 0.17 < sum(in_field_holdout(n, 0.2) for n in NAMES) / len(NAMES) < 0.23
    with pytest.raises(ValueError):
        in_field_holdout(NAMES[0], 1.0)


def test_only_live_labelled_captures_in_the_holdout_count():
    held = next(n for n in NAMES if in_field_holdout(n, 0.2))
    trained = next(n for n in NAMES if not in_field_holdout(n, 0.2))
    capture = {"kind": "upload", "labelled": True, "status": "new", "object": held}
    assert is_held_out_capture(capture, 0.2) and is_held_out_capture({**capture, "status": "used"}, 0.2)
    assert not is_held_out_capture({**capture, "object": trained}, 0.2)
    assert not is_held_out_capture({**capture, "labelled": False}, 0.2)
    assert not is_held_out_capture({**capture, "status": "superseded"}, 0.2)
    assert not is_held_out_capture({**capture, "kind": "dataset"}, 0.2)


def test_only_field_reasons_wait_and_only_until_the_holdout_is_full_or_the_wait_is_over():
    assert field_wait(RetrainReason.DRIFT, 4, 12, "v1", 10, 120) == (
        "field holdout 4/12 confirmed captures on v1 (waits at most 120 s, 10 s so far)")
    assert field_wait(RetrainReason.SUCCESS_RATE, 4, 12, "v1", 10, 120) is not None
    assert field_wait(RetrainReason.DRIFT, 12, 12, "v1", 10, 120) is None  # the holdout can judge it
    assert field_wait(RetrainReason.DRIFT, 4, 12, "v1", 120, 120) is None  # waited long enough: the gate reports
    assert field_wait(RetrainReason.DRIFT, 4, 12, "v1", 10, 0) is None  # the rule is off (the default)
    for reason in (RetrainReason.NEW_DATA, RetrainReason.MANUAL, RetrainReason.SCHEDULE):
        assert field_wait(reason, 0, 12, "v1", 0, 120) is None


def test_a_swept_request_waits_from_its_earliest_ask():
    first = datetime(2026, 12, 2, 9, 0, 10, tzinfo=timezone.utc)
    assert first_asked([datetime(2026, 12, 2, 9, 1, tzinfo=timezone.utc), first.isoformat(), None]) == first
    assert first_asked([]) is None
