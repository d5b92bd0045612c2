"""Which label a capture gets from its votes: operators override, users agree by majority with a minimum,
and the order in which votes arrive never matters."""

import itertools

import pytest
from hypothesis import given, strategies as st

from shared.labelling import Decision, LabelSource, LabelStatus, Vote, decide, votes_of

LABELS = frozenset({"circle", "square", "star"})


def user(uid: str, label: str, at: str = "") -> Vote:
    return Vote(LabelSource.USER, uid, label, at)


def operator(name: str, label: str, at: str) -> Vote:
    return Vote(LabelSource.OPERATOR, name, label, at)


def test_one_user_confirms_with_the_default_minimum():
    decision = decide([user("u1", "star", "2026-12-02T08:00:00+00:00")], LABELS, 1)
    assert (decision.label, decision.status, decision.by, decision.at) == (
        "star", LabelStatus.CONFIRMED, "u1", "2026-12-02T08:00:00+00:00")


def test_the_majority_of_distinct_users_wins_not_the_last_vote():
    votes = [user("u1", "star"), user("u2", "star"), user("u3", "circle")]
    for order in itertools.permutations(votes):
        decision = decide(order, LABELS, 1)
        assert (decision.label, decision.status, decision.by) == ("star", LabelStatus.CONFIRMED, "u1,u2")


def test_a_tie_is_disputed_and_unlabelled():
    decision = decide([user("u1", "star"), user("u2", "circle")], LABELS, 1)
    assert (decision.label, decision.status, decision.labelled) == (None, LabelStatus.DISPUTED, False)
    assert "circle: 1, star: 1" in decision.detail


def test_a_user_who_named_two_labels_counts_for_neither():
    alone = decide([user("u1", "star"), user("u1", "circle")], LABELS, 1)
    assert alone.status is LabelStatus.DISPUTED and "named two labels: u1" in alone.detail
    outvoted = decide([user("u1", "star"), user("u1", "circle"), user("u2", "circle")], LABELS, 1)
    assert (outvoted.label, outvoted.by) == ("circle", "u2")


def test_one_user_repeating_a_label_is_one_vote():
    votes = [user("u1", "star"), user("u1", "star"), user("u2", "circle"), user("u3", "circle")]
    assert decide(votes, LABELS, 1).label == "circle"


def test_agreement_below_the_minimum_is_pending():
    decision = decide([user("u1", "star")], LABELS, 2)
    assert (decision.label, decision.status) == (None, LabelStatus.PENDING)
    assert decide([user("u1", "star"), user("u2", "star")], LABELS, 2).label == "star"


def test_an_operator_overrides_every_user_and_the_latest_operator_label_stands():
    votes = [user("u1", "star"), user("u2", "star"), operator("ana", "square", "2026-12-02T09:00:00+00:00"),
             operator("bo", "circle", "2026-12-02T08:00:00+00:00")]
    for order in itertools.permutations(votes):
        decision = decide(order, LABELS, 1)
        assert (decision.label, decision.status, decision.by) == ("square", LabelStatus.OPERATOR, "operator:ana")
        assert decision.at == "2026-12-02T09:00:00+00:00"


def test_votes_for_labels_the_model_does_not_have_are_ignored():
    assert decide([user("u1", "cat")], LABELS, 1).status is LabelStatus.UNLABELLED
    assert decide([user("u1", "cat"), user("u2", "star")], LABELS, 1).label == "star"


def test_no_votes_is_unlabelled_and_a_zero_minimum_is_refused():
    assert decide([], LABELS, 1) == Decision(None, LabelStatus.UNLABELLED, None, None, "no label given")
    with pytest.raises(ValueError, match="at least 1"):
        decide([], LABELS, 0)


def test_votes_round_trip_through_a_confirmation_document_and_old_documents_still_count():
    votes = [user("u1", "star", "t1"), operator("ana", "circle", "t2")]
    document = {"object": "uploads/m/u1/a.png", "votes": {v.key: v.to_dict() for v in votes}}
    assert sorted(votes_of(document).values(), key=lambda v: v.who) == sorted(votes, key=lambda v: v.who)
    (legacy,) = votes_of({"object": "uploads/m/u1/a.png", "true_label": "star", "uid": "u1"}).values()
    assert (legacy.source, legacy.who, legacy.label) == (LabelSource.USER, "u1", "star")
    assert votes_of(None) == {}


def test_a_redelivered_vote_has_the_same_key_and_a_different_label_another():
    assert user("u1", "star", "t1").key == user("u1", "star", "t2").key != user("u1", "circle", "t1").key
    assert user("u1", "star").key != operator("u1", "star", "t").key


VOTE = st.builds(
    Vote, st.sampled_from(list(LabelSource)), st.sampled_from(["u1", "u2", "u3", "ana"]),
    st.sampled_from(sorted(LABELS) + ["cat"]), st.sampled_from(["", "2026-12-01T00:00:00+00:00", "2026-12-02T00:00:00+00:00"]))


@given(st.lists(VOTE, max_size=8), st.randoms(), st.integers(1, 3))
def test_the_decision_never_depends_on_the_order_of_arrival(votes, random, minimum):
    shuffled = list(votes)
    random.shuffle(shuffled)
    decision = decide(votes, LABELS, minimum)
    assert decide(shuffled, LABELS, minimum) == decision
    assert decision.labelled == (decision.status in (LabelStatus.CONFIRMED, LabelStatus.OPERATOR))
    assert decision.label is None or decision.label in LABELS
