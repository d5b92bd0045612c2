"""The capacity model's arithmetic, on loads worked out by hand."""

import math

import pytest
from hypothesis import given, strategies as st

from edgeloop.capacity import (
    INDEX_ENTRIES_PER_READ, PUBSUB_MIN_BYTES, SECONDS_PER_MONTH, EventCost, Load, Prices, Sizing, aggregation_reads,
    capacity, markdown_table,
)

UPLOAD = EventCost(seconds=0.2, firestore_reads=3, firestore_writes=2, aggregations=1, storage_class_b=2,
                   messages_published=0.01)
REPORT = EventCost(seconds=0.1, firestore_reads=4, firestore_writes=2, aggregations=2)
SIZING = {"on_upload": Sizing(concurrency=4, vcpu=1, memory_gib=0.5),
          "on_feedback": Sizing(concurrency=8, vcpu=1, memory_gib=0.25)}
NO_FREE_TIER = Prices(run_free_vcpu_seconds=0, run_free_gib_seconds=0, run_free_requests=0,
                      firestore_free_reads_per_day=0, firestore_free_writes_per_day=0,
                      firestore_free_deletes_per_day=0, pubsub_free_gib=0)
WINDOW_S = 3600


def _run(load, prices=NO_FREE_TIER):
    return capacity(load, UPLOAD, REPORT, reads_per_poll=1.0, sizing=SIZING, window_s=WINDOW_S,
                    notification_bytes=800, prices=prices)


def test_an_aggregation_reads_one_per_thousand_index_entries_and_at_least_one():
    assert aggregation_reads(0) == 1 and aggregation_reads(999) == 1 and aggregation_reads(1_000) == 1
    assert aggregation_reads(1_001) == 2 and aggregation_reads(2.5e6) == 2_500


def test_uploads_alone():
    row = _run(Load("u", uploads_per_s=100))
    assert row.instances == {"on_upload": math.ceil(100 * 0.2 / 4), "on_feedback": 0}  # Little's law: 20 busy / 4
    assert row.firestore_reads_per_s == pytest.approx(100 * (3 + 1))  # on_upload's count scans under 1,000 entries
    assert row.firestore_writes_per_s == pytest.approx(200)
    assert row.pubsub_messages_per_s == pytest.approx(2 * 100 + 2 * 100 * 0.01)  # notification + retrain requests
    month = SECONDS_PER_MONTH
    run = (100 * 0.2 / 4 * 1 * month * NO_FREE_TIER.run_vcpu_second
           + 100 * 0.2 / 4 * 0.5 * month * NO_FREE_TIER.run_gib_second + 100 * month / 1e6 * 0.40)
    assert row.monthly_usd["Cloud Run functions"] == pytest.approx(run)
    assert row.monthly_usd["Firestore"] == pytest.approx((400 * 0.06 + 200 * 0.18) * month / 1e5)
    assert row.monthly_usd["Pub/Sub"] == pytest.approx(202 * PUBSUB_MIN_BYTES * month / 2**40 * 40)
    assert row.monthly_usd["Cloud Storage operations"] == pytest.approx(200 * month / 1e3 * 0.0004)


def test_the_success_rate_counts_cost_grows_with_the_reports_in_the_window():
    slow, fast = _run(Load("r", reports_per_s=1)), _run(Load("r", reports_per_s=100))
    # 1 report/s: 3,600 entries in the window → 4 reads per count; 100/s: 360,000 → 360 reads per count
    assert slow.firestore_reads_per_s == pytest.approx(1 * (4 + 2 * 4))
    assert fast.firestore_reads_per_s == pytest.approx(100 * (4 + 2 * 360))
    assert fast.instances["on_feedback"] == math.ceil(100 * 0.1 / 8)


def test_tallied_reports_cost_the_same_reads_per_report_at_any_rate():
    def run(rate):
        return capacity(Load("r", reports_per_s=rate), UPLOAD, REPORT, reads_per_poll=1.0, sizing=SIZING,
                        window_s=WINDOW_S, notification_bytes=800, prices=NO_FREE_TIER, tally_documents=2_500)

    # 1 report/s: 3,600 reports but at most 2,500 bucket documents → 3 reads per sum, as at 100 or 1,000/s
    for rate in (1, 100, 1_000):
        assert run(rate).firestore_reads_per_s == pytest.approx(rate * (4 + 2 * 3))
    # fewer reports than bucket documents: one entry per report
    assert run(0.1).firestore_reads_per_s == pytest.approx(0.1 * (4 + 2 * 1))


def test_devices_polling_hourly_read_the_pointer_once_each():
    row = _run(Load("d", devices=1_000_000))
    assert row.firestore_reads_per_s == pytest.approx(1e6 / 3600)
    assert row.instances == {"on_upload": 0, "on_feedback": 0} and row.pubsub_messages_per_s == 0
    assert row.total_usd == pytest.approx(1e6 / 3600 * SECONDS_PER_MONTH / 1e5 * 0.06)


def test_the_free_tier_is_taken_off_once_a_month():
    small = _run(Load("d", devices=100), prices=Prices())
    assert small.total_usd == 0  # 100 hourly polls: 72,000 reads a month, under 50,000 a day
    assert _run(Load("d", devices=100)).total_usd > 0


@given(st.floats(0, 2_000), st.floats(0, 2_000), st.integers(0, 2_000_000))
def test_more_load_never_costs_less(uploads, reports, devices):
    base = _run(Load("a", uploads, reports, devices))
    more = _run(Load("b", uploads * 2, reports * 2, devices * 2))
    assert more.total_usd >= base.total_usd - 1e-9
    assert all(more.instances[n] >= base.instances[n] for n in base.instances)


def test_the_table_has_a_row_per_load():
    rows = [_run(Load("ten", uploads_per_s=10)), _run(Load("devices", devices=10))]
    table = markdown_table(rows).splitlines()
    assert len(table) == 4 and table[2].startswith("| ten |") and table[3].startswith("| devices |")
    assert INDEX_ENTRIES_PER_READ == 1_000
