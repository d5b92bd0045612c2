"""When an instance runs a deciding count again (shared.count_pacing): once the events since its last count could
have used up the slack that count left (for the new-data count, the threshold minus the count), or once its last
count is old; never less often than that, and never again while nothing could have changed."""

from __future__ import annotations

import math
import threading

from hypothesis import given, strategies as st

from shared.count_pacing import CountPacer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_cause_never_counted_by_this_instance_is_counted_at_once():
    assert CountPacer().should_count("cause", interval_s=2)


def test_after_a_count_the_next_uploads_wait_until_they_could_reach_the_threshold():
    pacer = CountPacer(clock=Clock())
    pacer.counted("cause", slack=5)
    assert [pacer.should_count("cause", 60) for _ in range(5)] == [False, False, False, False, True]


def test_a_count_older_than_the_interval_is_run_again_whatever_the_estimate():
    clock = Clock()
    pacer = CountPacer(clock=clock)
    pacer.counted("cause", slack=197)
    assert not pacer.should_count("cause", 2)
    clock.now = 2.0  # other instances may have registered images meanwhile
    assert pacer.should_count("cause", 2)


def test_a_new_count_restarts_the_estimate_from_what_it_found():
    pacer = CountPacer(clock=Clock())
    pacer.counted("cause", slack=2)
    assert not pacer.should_count("cause", 60)
    pacer.counted("cause", slack=50)  # the trainer marked images used meanwhile
    assert not any(pacer.should_count("cause", 60) for _ in range(49))
    assert pacer.should_count("cause", 60)


def test_an_interval_of_zero_counts_after_every_upload():
    pacer = CountPacer(clock=Clock())
    pacer.counted("cause", slack=200)
    assert all(pacer.should_count("cause", 0) for _ in range(10))


def test_causes_are_paced_apart_and_the_oldest_is_forgotten_first():
    pacer = CountPacer(max_entries=2, clock=Clock())
    pacer.counted("a", slack=200)
    pacer.counted("b", slack=200)
    pacer.counted("c", slack=200)
    assert pacer.should_count("a", 60)  # forgotten: counted again
    assert not pacer.should_count("b", 60) and not pacer.should_count("c", 60)


def test_threads_of_one_instance_share_the_estimate():
    pacer = CountPacer(clock=Clock())
    pacer.counted("cause", slack=200)
    answers: list[bool] = []
    lock = threading.Lock()

    def upload() -> None:
        for _ in range(50):
            answer = pacer.should_count("cause", 60)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(False) == 199 and answers.count(True) == 201  # every upload from the 200th on counts


@given(last=st.integers(0, 500), threshold=st.integers(1, 500), uploads=st.integers(0, 600))
def test_with_one_instance_no_crossing_is_left_uncounted(last, threshold, uploads):
    """Uploads by this instance alone: the upload at which last + uploads reaches the threshold counts."""
    pacer = CountPacer(clock=Clock())
    pacer.counted("cause", slack=threshold - last)
    answers = [pacer.should_count("cause", 60) for _ in range(uploads)]
    for index, answer in enumerate(answers, start=1):
        assert answer == (last + index >= threshold)


def test_a_count_that_left_no_decision_possible_is_run_again_only_once_it_is_old():
    clock = Clock()
    pacer = CountPacer(clock=clock)
    pacer.counted("cause", slack=math.inf)  # e.g. a retrain for this cause is already asked for
    assert not any(pacer.should_count("cause", 2) for _ in range(10_000))
    clock.now = 2.0
    assert pacer.should_count("cause", 2)
