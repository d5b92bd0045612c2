"""The soak's invariant checks: pure functions of what was written and what the stack holds."""

import math

from hypothesis import given, strategies as st

from edgeloop.soak import feedback_lost, percentiles, uploads_counted_once

LIVE = {"dataset/m/1/a.png": 2, "uploads/m/u/b.png": 5}


def image(name, generation, status="new"):
    return {"object": name, "generation": generation, "status": status}


def test_each_live_object_counted_once_with_its_live_generation_passes():
    images = [image("dataset/m/1/a.png", 1, "superseded"), image("dataset/m/1/a.png", 2, "used"),
              image("uploads/m/u/b.png", 5)]
    assert uploads_counted_once(LIVE, images) == []


def test_an_upload_counted_twice_is_reported():
    images = [image("dataset/m/1/a.png", 1), image("dataset/m/1/a.png", 2), image("uploads/m/u/b.png", 5)]
    assert uploads_counted_once(LIVE, images) == ["dataset/m/1/a.png: counted 2 times"]


def test_a_lost_upload_is_reported():
    assert uploads_counted_once(LIVE, [image("dataset/m/1/a.png", 2)]) == ["uploads/m/u/b.png: counted 0 times"]


def test_counting_a_replaced_generation_is_reported():
    images = [image("dataset/m/1/a.png", 1), image("uploads/m/u/b.png", 5)]
    assert uploads_counted_once(LIVE, images) == ["dataset/m/1/a.png: counts generation 1, live is 2"]


def test_a_counted_object_nobody_uploaded_is_reported():
    images = [image("dataset/m/1/a.png", 2), image("uploads/m/u/b.png", 5), image("dataset/m/2/ghost.png", 9)]
    assert uploads_counted_once(LIVE, images) == ["dataset/m/2/ghost.png: counted but not one of the soak's objects"]


def test_feedback_is_lost_when_a_report_was_never_handled_or_is_missing_from_the_count():
    assert feedback_lost(["a", "b"], ["a", "b", "other"], 2) == []
    assert feedback_lost(["a", "b"], ["a"], 2) == ["1 reports never handled, e.g. ['b']"]
    assert feedback_lost(["a", "b"], ["a", "b"], 3) == ["the version's count says 3 reports, 2 were written"]


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_ordered_and_within_the_sample(values):
    cuts = percentiles(values)
    slack = 1e-9 * max(1.0, max(values))  # interpolation between equal values may round by an ulp
    chain = [min(values), cuts["p50"], cuts["p95"], cuts["p99"], max(values)]
    assert all(low <= high + slack for low, high in zip(chain, chain[1:]))


def test_no_latencies_have_no_percentiles():
    assert all(math.isnan(v) for v in percentiles([]).values())
