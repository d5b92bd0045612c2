"""Feedback documents: what is counted and what is refused with a reason."""

import pytest
from hypothesis import given, strategies as st

from shared.feedback import InvalidFeedback, parse_feedback

LABELS = frozenset("0123456789")
GOOD = {"uid": "u1", "model_version": "v2", "predicted_label": "3", "confidence": 0.4, "correct": False,
        "true_label": "8", "capture": "uploads/digits/u1/a.png"}


def test_a_complete_feedback_document_is_accepted():
    feedback = parse_feedback("digits", GOOD, LABELS)
    assert feedback.true_label == "8" and feedback.capture == "uploads/digits/u1/a.png"


def test_an_integer_confidence_as_firestore_stores_it_is_accepted():
    assert parse_feedback("digits", {**GOOD, "confidence": 1}, LABELS).confidence == 1


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"uid": None}, "uid"),
        ({"confidence": "0.4"}, "confidence"),
        ({"confidence": 2.0}, "outside"),
        ({"correct": "no"}, "correct"),
        ({"model_version": "latest"}, "model_version"),
        ({"true_label": "x"}, "true_label"),
        ({"predicted_label": "cat"}, "predicted_label"),
        ({"capture": "uploads/digits/someone-else/a.png"}, "capture"),
        ({"correct": True}, "contradicts"),
        ({"correct": False, "true_label": "3"}, "contradicts"),  # confirmed the prediction, yet says wrong
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(change, problem):
    with pytest.raises(InvalidFeedback, match=problem):
        parse_feedback("digits", {**GOOD, **change}, LABELS)


def test_feedback_for_an_unregistered_model_is_refused():
    with pytest.raises(InvalidFeedback, match="'ghost' is not registered"):
        parse_feedback("ghost", GOOD, None)


def test_a_missing_field_is_refused():
    with pytest.raises(InvalidFeedback, match="correct"):
        parse_feedback("digits", {k: v for k, v in GOOD.items() if k != "correct"}, LABELS)


@given(st.dictionaries(st.sampled_from([*GOOD, "other"]), st.none() | st.booleans() | st.floats() | st.text(max_size=8)))
def test_any_document_is_accepted_or_refused_never_crashes(document):
    try:
        parse_feedback("digits", document, LABELS)
    except InvalidFeedback as exc:
        assert str(exc)
