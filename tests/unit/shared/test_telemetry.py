"""Device telemetry (shared/telemetry.py): the latency histogram, its percentiles, device classes, merged reports."""

from __future__ import annotations

import json
import math
import re

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shared import telemetry
from shared.telemetry import BUCKET_KEYS, BUCKETS, DEVICE_FIELDS, PeriodStats, bucket_of, merge_documents, percentile

latencies = st.floats(allow_nan=True, allow_infinity=True)
positive_latencies = st.floats(min_value=1e-3, max_value=5e3, allow_nan=False)

# The rules' checks on a device record (infra/firebase/firestore.rules, validDeviceRecord).
RULES_DEVICE_CLASS = re.compile(r"[A-Za-z0-9 ._+()-]+")


@given(latencies)
def test_every_latency_lands_in_one_bucket_in_order(ms):
    bucket = bucket_of(ms)
    assert 0 <= bucket < BUCKETS
    if not math.isnan(ms) and 0 < ms < math.inf:
        assert bucket_of(ms * 2.0001) >= bucket
        if bucket not in (0, BUCKETS - 1):
            low, high = 2.0 ** (bucket - 6), 2.0 ** (bucket - 5)
            assert low < ms <= high


@given(st.lists(positive_latencies, min_size=1, max_size=300), st.sampled_from([0.5, 0.95]))
def test_a_percentile_from_the_histogram_is_within_a_factor_of_two_of_the_true_one(values, q):
    stats = PeriodStats("v1", 0)
    for value in values:
        stats.add(value)
    estimate = percentile(stats.histogram, q)
    ordered = sorted(values)
    # Any value of the bucket holding the q-th ranked latency is within a factor of two of it.
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    floor = 2.0 ** -5
    assert estimate is not None
    assert min(true, floor) / 2 <= estimate <= max(true, floor) * 2, (true, estimate)


def test_percentiles_of_nothing_are_none_and_of_a_tight_distribution_close():
    assert percentile([0] * BUCKETS, 0.5) is None
    stats = PeriodStats("v1", 0)
    for value in np.random.default_rng(0).lognormal(np.log(0.2), 0.3, 5000):
        stats.add(float(value))
    assert 0.1 <= percentile(stats.histogram, 0.5) <= 0.3
    assert percentile(stats.histogram, 0.5) <= percentile(stats.histogram, 0.95) <= 0.6


@given(st.text(max_size=200) | st.none())
def test_any_device_class_becomes_one_the_rules_accept(value):
    cleaned = telemetry.device_class(value)
    assert 1 <= len(cleaned) <= 64 and RULES_DEVICE_CLASS.fullmatch(cleaned)


@given(st.lists(latencies, max_size=200), st.text(max_size=100), st.text(max_size=40))
def test_a_report_has_exactly_the_fields_the_rules_require_typed_and_bounded(values, device_class, version):
    stats = PeriodStats(version or "v1", 1_790_000_000.5)
    for value in values:
        stats.add(value)
    document = stats.document("py-0.1.0+c1", device_class, 1_790_003_600.0)
    assert set(document) == set(DEVICE_FIELDS) - {telemetry.LAST_SEEN_FIELD}
    assert document["predictions"] == len(values) == sum(document["latency_hist"].values())
    assert list(document["latency_hist"]) == list(BUCKET_KEYS)  # every bucket: see histogram_map
    assert all(isinstance(n, int) and n >= 0 for n in document["latency_hist"].values())
    assert 0 <= document["latency_p50_ms"] <= document["latency_p95_ms"] <= 1_000_000
    assert document["period_start"] == 1_790_000_000 and document["period_s"] == 3599
    assert len(json.dumps(document)) < 800  # however many inferences: the budget counts reports, not predictions


def test_two_queued_reports_on_one_version_add_up_and_a_new_version_replaces():
    first, second = PeriodStats("v1", 1000), PeriodStats("v1", 4600)
    for value in (0.1, 0.2, 0.3):
        first.add(value)
    second.add(5.0)
    older, newer = first.document("s", "c", 4600), second.document("s", "c", 8200)
    merged = merge_documents(older, newer)
    assert merged["predictions"] == 4 and merged["period_start"] == 1000 and merged["period_s"] == 7200
    assert sum(merged["latency_hist"].values()) == 4 and merged["latency_p95_ms"] > 2.5
    other = PeriodStats("v2", 4600).document("s", "c", 8200)
    assert merge_documents(older, other) == other
