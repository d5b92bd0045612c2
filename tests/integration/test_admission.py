"""A report's admission: one conditional commit when nothing changed since on_feedback read it, the transaction
when something did, and in either case each report counted once and each user's cap held; then its judgement: the
rate it is judged on holds it once, and a retrain the paced sum left due is asked by the scheduler's tick."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from edgeloop.opcount import counting
from shared import layout
from shared.config import Thresholds
from shared.feedback import Feedback
from shared.gcp.tallies import admission_refs, admit_report, version_tally
from shared.lifecycle import Tally
from tests.integration.helpers import control, db, eventually, fresh_model


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
        assert admit_report(db(local_stack), model, path, feedback, None, Thresholds(), read).counted is True
    ops = counter.snapshot()
    assert ops["firestore.rpc.Commit"] == 1 and ops["firestore.rpc.BeginTransaction"] == 0
    assert ops["firestore.reads"] == 0  # what it needed came with the model's state
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=1, total=1)


def test_a_report_decided_since_it_was_read_keeps_its_verdict_and_is_tallied_once(local_stack):
    model = fresh_model(local_stack, "stale-report")
    path, feedback = _report(local_stack, model, "bob", correct=False)
    stale = _read(local_stack, model, path, feedback)
    assert admit_report(db(local_stack), model, path, feedback, None, Thresholds()).counted is True  # a redelivery, first
    with counting(local_stack.project_id) as counter:
        assert admit_report(db(local_stack), model, path, feedback, None, Thresholds(), stale).counted is True
    assert counter.snapshot()["firestore.rpc.BeginTransaction"] == 1  # the condition failed: the transaction decided
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=0, total=1)


def test_a_users_cap_holds_when_their_other_report_was_admitted_after_this_one_was_read(local_stack):
    model = fresh_model(local_stack, "stale-user")
    capped = Thresholds(feedback_per_user_cap=1)
    first, first_feedback = _report(local_stack, model, "carol")
    second, second_feedback = _report(local_stack, model, "carol")
    read_first = _read(local_stack, model, first, first_feedback)
    read_second = _read(local_stack, model, second, second_feedback)  # carol has no counted report yet
    assert admit_report(db(local_stack), model, first, first_feedback, None, capped, read_first).counted is True
    assert admit_report(db(local_stack), model, second, second_feedback, None, capped, read_second).counted is False
    user = db(local_stack).document(layout.feedback_user_doc(model, "v1", "carol")).get().to_dict()
    assert len(user["admitted"]) == 1
    assert version_tally(db(local_stack), model, "v1") == Tally(correct=1, total=1)
    assert db(local_stack).document(second).get().get("counted") is False


def test_the_rate_a_report_is_judged_on_counts_it_exactly_once_whoever_admits_it(local_stack):
    # on_feedback sums the window beside its first read, before the admission commits, then adds the report it
    # admitted. The stack's own on_feedback handles each report too (a redelivery racing this one): whichever
    # admits it, the rate judged here holds every report so far, this one once.
    from shared.config import Settings
    from shared.events import FirestoreDocumentEvent
    from shared.gcp.feedback import handle_feedback

    model = fresh_model(local_stack, "judged-once")
    settings = Settings(stack_dir=local_stack.directory)
    settings = settings.model_copy(update={"caching": settings.caching.model_copy(  # sum after every report
        update={"success_rate_sum_interval_s": 0})})
    for i in range(6):
        path = layout.feedback_doc(model, f"r-{uuid.uuid4().hex[:8]}")
        fields = {"uid": f"user-{i}", "model_version": "v1", "predicted_label": "3", "confidence": 0.8,
                  "correct": i % 3 != 0, "sent_at": datetime.now(timezone.utc)}
        db(local_stack).document(path).set(fields)
        event = FirestoreDocumentEvent(f"e-{i}", "created", local_stack.project_id, "(default)", path, fields, None)
        outcome = handle_feedback(event, settings)
        assert outcome.status == "counted"
        assert (outcome.rate.correct, outcome.rate.total) == (sum(j % 3 != 0 for j in range(i + 1)), i + 1)
        again = handle_feedback(event, settings)  # a redelivery, after the admission: it adds nothing
        assert (again.rate.correct, again.rate.total) == (outcome.rate.correct, outcome.rate.total)


def test_a_success_rate_retrain_due_from_reports_other_instances_counted_is_asked_by_the_next_tick(local_stack):
    # on_feedback sums a version's rate only when the reports it counted since could make a retrain due; reports
    # other instances counted may make it due unseen, so the scheduler's tick judges production as a report would.
    from edgeloop.bench_stack import serve_placeholder_v1
    from shared.config import Settings
    from shared.gcp import tick

    model = fresh_model(local_stack, "rate-backstop")
    settings = Settings(stack_dir=local_stack.directory)
    serve_placeholder_v1(model, settings)
    thresholds = Thresholds()
    for i in range(thresholds.min_feedback_samples + 20):  # half of them wrong, from 20 users
        path, feedback = _report(local_stack, model, f"user-{i % 20}", correct=i % 2 == 0)
        assert admit_report(db(local_stack), model, path, feedback, None, thresholds).counted is True
    assert not (control(local_stack, model).get("pending") or [])
    tick.handle_tick({"model": model}, uuid.uuid4().hex, settings)
    pending = eventually(lambda: control(local_stack, model).get("pending"), 30, "the tick's request recorded")
    assert len(pending) == 1 and pending[0]["cause"].startswith(f"success_rate:{model}:v1:after-")
