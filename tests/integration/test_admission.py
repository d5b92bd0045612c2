"""A report's admission: one conditional commit when nothing changed since on_feedback read it, the transaction
when something did, and in either case each report counted once and each user's cap held."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from edgeloop.opcount import counting
from shared import layout
from shared.config import Thresholds
from shared.feedback import Feedback
from shared.gcp.tallies import admission_refs, admit_report, version_tally
from shared.lifecycle import Tally
from tests.integration.helpers import db, fresh_model


def _report(stack, model: str, uid: str, correct: bool = True) -> tuple[str, Feedback]:
    """A report where on_feedback's trigger does not fire: these tests are its only admitters."""
    path = f"admission-tests/{model}/reports/r-{uuid.uuid4().hex[:8]}"
    fields = {"uid": uid, "model_version": "v1", "predicted_label": "3", "confidence": 0.8, "correct": correct}
    db(stack).document(path).set({**fields, "sent_at": datetime.now(timezone.utc)})
    return path, Feedback(**fields)


def _read(stack, model: str, path: str, feedback: Feedback) -> dict:
    firestore = db(stack)
    return {s.reference.path: s for s in firestore.get_all(admission_refs(firestore, model, path, feedback))}


def test_a_report_unchanged_since_it_was_read_is_admitted_in_one_commit_without_a_transaction(local_stack):
    model = fresh_model(local_stack, "one-commit")
    path, feedback = _report(local_stack, model, "alice")
    read = _read(local_stack, model, path, feedback)
    with counting(local_stack.project_id) as counter:
        assert admit_report(db(local_stack), model, path, feedback, None, Thresholds(), read) is True
    ops = counter.snapshot()
    assert ops["firestore.rpc.Commit"] == 1 and ops["firestore.rpc.BeginTransaction"] == 0
    assert ops["firestore.reads"] == 0  # what it needed came with the model's state
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=1, total=1)


def test_a_report_decided_since_it_was_read_keeps_its_verdict_and_is_tallied_once(local_stack):
    model = fresh_model(local_stack, "stale-report")
    path, feedback = _report(local_stack, model, "bob", correct=False)
    stale = _read(local_stack, model, path, feedback)
    assert admit_report(db(local_stack), model, path, feedback, None, Thresholds()) is True  # a redelivery, first
    with counting(local_stack.project_id) as counter:
        assert admit_report(db(local_stack), model, path, feedback, None, Thresholds(), stale) is True
    assert counter.snapshot()["firestore.rpc.BeginTransaction"] == 1  # the condition failed: the transaction decided
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=0, total=1)


def test_a_users_cap_holds_when_their_other_report_was_admitted_after_this_one_was_read(local_stack):
    model = fresh_model(local_stack, "stale-user")
    capped = Thresholds(feedback_per_user_cap=1)
    first, first_feedback = _report(local_stack, model, "carol")
    second, second_feedback = _report(local_stack, model, "carol")
    read_first = _read(local_stack, model, first, first_feedback)
    read_second = _read(local_stack, model, second, second_feedback)  # carol has no counted report yet
    assert admit_report(db(local_stack), model, first, first_feedback, None, capped, read_first) is True
    assert admit_report(db(local_stack), model, second, second_feedback, None, capped, read_second) is False
    user = db(local_stack).document(layout.feedback_user_doc(model, "v1", "carol")).get().to_dict()
    assert len(user["admitted"]) == 1
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=1, total=1)
    assert db(local_stack).document(second).get().get("counted") is False
