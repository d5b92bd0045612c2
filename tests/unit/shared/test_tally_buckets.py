"""Where counted reports are tallied: time buckets aligned on the epoch, a stable shard per report, whole-bucket windows."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from shared.config import Thresholds
from shared.tally_buckets import bucket_documents, bucket_id, bucket_start, shard_of, window_start

UTC = timezone.utc
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def test_a_bucket_starts_on_its_size_from_the_epoch():
    at = datetime(2026, 12, 2, 12, 34, 56, 789, tzinfo=UTC)
    assert bucket_start(at, 3600) == datetime(2026, 12, 2, 12, tzinfo=UTC)
    assert bucket_start(at, 60) == datetime(2026, 12, 2, 12, 34, tzinfo=UTC)
    assert bucket_start(datetime(2026, 12, 2, 13, tzinfo=UTC), 3600) == datetime(2026, 12, 2, 13, tzinfo=UTC)


def test_a_bucket_is_the_same_whatever_the_time_zone_of_the_time():
    at = datetime(2026, 12, 2, 12, 34, tzinfo=UTC)
    assert bucket_start(at.astimezone(timezone(timedelta(hours=5, minutes=30))), 3600) == bucket_start(at, 3600)


@given(times, st.integers(1, 86_400))
def test_every_time_lies_in_its_bucket(at, size):
    start = bucket_start(at, size)
    assert start <= at < start + timedelta(seconds=size)
    assert bucket_start(start, size) == start


def test_a_report_keeps_its_shard_and_reports_spread_over_all_shards():
    reports = [f"models/m/feedback/r{i}" for i in range(2_000)]
    assert [shard_of(r, 32) for r in reports] == [shard_of(r, 32) for r in reports]
    counts = [sum(shard_of(r, 32) == shard for r in reports) for shard in range(32)]
    assert min(counts) > 2_000 / 32 / 2  # no shard is left out or takes far more than its share
    assert {shard_of(r, 1) for r in reports} == {0}


def test_a_bucket_document_is_named_by_its_start_and_shard():
    assert bucket_id(datetime(2026, 12, 2, 12, tzinfo=UTC), 7) == "1796212800-7"


def test_a_window_sums_from_the_bucket_that_holds_its_start():
    now = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
    assert window_start(now, timedelta(days=7), 3600) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    # Every report of the window is in a summed bucket; the oldest one summed is at most one bucket older.
    first = window_start(now, timedelta(days=7), 3600)
    assert first <= now - timedelta(days=7) < first + timedelta(hours=1)


def test_a_windowed_sum_reads_at_most_buckets_times_shards():
    assert bucket_documents(7 * 86_400, 3600, 32) == (168 + 1) * 32
    assert bucket_documents(90, 60, 2) == (2 + 1) * 2
    defaults = Thresholds()
    assert bucket_documents(defaults.success_window_s, defaults.tally_bucket_s, defaults.tally_shards) < 10_000


@pytest.mark.parametrize("call", [lambda: bucket_start(datetime(2026, 1, 1), 60),
                                  lambda: bucket_start(datetime(2026, 1, 1, tzinfo=UTC), 0),
                                  lambda: shard_of("models/m/feedback/r", 0)])
def test_naive_times_and_empty_sizes_are_refused(call):
    with pytest.raises(ValueError):
        call()
