"""Device telemetry (pure): what one device reports about its inferences, and how reports add up.

A device keeps, per period (``Client.telemetry_period_s``, an hour), the number
of predictions of the model version it runs and their latencies in a fixed
histogram of ``BUCKETS`` buckets whose bounds double (``bucket_of``): bucket 0
holds latencies up to 1/32 ms, bucket i those in (2^(i-6), 2^(i-5)] ms, the last
everything above 8.2 s. The histogram is the bounded sketch the percentiles come
from: a few hundred bytes whatever the number of inferences, and histograms
*add*, so the server gets the fleet's percentiles by summing the buckets of
every device's record with aggregation queries (``shared/gcp/tallies.fleet_version``)
instead of reading the records. The price is resolution: a percentile is
interpolated inside its bucket, so it is right within a factor of two and
usually much closer.

A report is one document, ``models/{model}/devices/{uid}`` (the device's own
record, the only one the rules let it write), with ``DEVICE_FIELDS``: the server
stamps ``last_seen`` with its own time of the write.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from shared.layout import DEVICE_LAST_SEEN

BUCKETS = 20
# Upper bounds (ms) of buckets 0..BUCKETS-2; the last bucket is open above.
UPPER_BOUNDS_MS = tuple(2.0 ** (i - 5) for i in range(BUCKETS - 1))
BUCKET_KEYS = tuple(f"b{i:02d}" for i in range(BUCKETS))
HISTOGRAM_FIELD = "latency_hist"
LAST_SEEN_FIELD = DEVICE_LAST_SEEN  # the server's time of the device's last report (firestore.rules require it)

MAX_COUNT = 1_000_000_000  # per bucket and per report: what the rules accept
MAX_LATENCY_MS = 1_000_000.0
DEVICE_CLASS_MAX = 64
SDK_VERSION_MAX = 32
# What a device class may hold (the rules check the same pattern): letters, digits, space and . _ + ( ) -
DEVICE_CLASS_PATTERN = re.compile(r"[A-Za-z0-9 ._+()-]{1,64}")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9 ._+()-]")
UNKNOWN_CLASS = "unknown"

DEVICE_FIELDS = ("model_version", "sdk_version", "device_class", "predictions", "latency_p50_ms", "latency_p95_ms",
                 HISTOGRAM_FIELD, "period_start", "period_s", LAST_SEEN_FIELD)


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of one latency; a negative or NaN latency counts as the fastest, infinity as the slowest."""
    if math.isnan(latency_ms) or latency_ms <= 0:
        return 0
    return min(bisect_left(UPPER_BOUNDS_MS, latency_ms), BUCKETS - 1)


def _bounds(bucket: int) -> tuple[float, float]:
    upper = UPPER_BOUNDS_MS[min(bucket, BUCKETS - 2)]
    if bucket >= BUCKETS - 1:  # open above: report its lower bound
        return upper, upper
    return upper / 2, upper


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of the latencies counted in ``histogram``, in ms; None if it counts nothing.

    Found in its bucket and interpolated geometrically between the bucket's bounds (a factor of two apart)."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = min(max(q, 0.0), 1.0) * total
    below = 0
    for bucket, count in enumerate(histogram):
        if count > 0 and below + count >= rank:
            low, high = _bounds(bucket)
            share = (rank - below) / count
            return round(low * (high / low) ** share, 4)
        below += count
    return _bounds(len(histogram) - 1)[1]  # pragma: no cover (rank <= total)


def histogram_from(mapping: Mapping[str, Any] | None) -> list[int]:
    """The bucket counts of a stored ``latency_hist`` map (missing buckets are zero)."""
    mapping = mapping or {}
    return [int(mapping.get(key) or 0) for key in BUCKET_KEYS]


def histogram_map(histogram: Sequence[int]) -> dict[str, int]:
    """The stored form: every bucket, zeros included. A Firestore query with several aggregations includes only
    the documents holding every field it sums, so a record without one bucket would drop out of the fleet's
    counts (the rules require all of them)."""
    return {key: int(count) for key, count in zip(BUCKET_KEYS, histogram)}


def device_class(value: str | None) -> str:
    """An app's device class as reports carry it: allowed characters only, at most 64, never empty."""
    cleaned = _NOT_ALLOWED.sub("", value or "").strip()[:DEVICE_CLASS_MAX].strip()
    return cleaned or UNKNOWN_CLASS


@dataclass
class PeriodStats:
    """One period of one device on one model version: predictions and their latency histogram."""

    model_version: str
    start: float  # the device's clock, seconds since the epoch
    predictions: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, latency_ms: float) -> None:
        if self.predictions >= MAX_COUNT:
            return  # bounded: the rules take no more per report
        self.predictions += 1
        self.histogram[bucket_of(latency_ms)] += 1

    def document(self, sdk_version: str, device_class_name: str, now: float) -> dict[str, Any]:
        """The device record's fields, but ``last_seen`` (the server's time, set on write)."""
        p50, p95 = percentile(self.histogram, 0.5), percentile(self.histogram, 0.95)
        return {
            "model_version": self.model_version,
            "sdk_version": sdk_version[:SDK_VERSION_MAX],
            "device_class": device_class(device_class_name),
            "predictions": int(self.predictions),
            "latency_p50_ms": float(p50 or 0.0),
            "latency_p95_ms": float(p95 or 0.0),
            HISTOGRAM_FIELD: histogram_map(self.histogram),
            "period_start": max(0, int(self.start)),
            "period_s": max(0, int(now - self.start)),
        }


def merge_documents(older: Mapping[str, Any], newer: Mapping[str, Any]) -> dict[str, Any]:
    """Two reports of one device not yet sent, as one: summed when on the same version (from the older one's
    start), else the newer one alone (the record says what the device runs now)."""
    if older.get("model_version") != newer.get("model_version"):
        return dict(newer)
    histogram = [min(MAX_COUNT, a + b) for a, b in zip(histogram_from(older.get(HISTOGRAM_FIELD)),
                                                          histogram_from(newer.get(HISTOGRAM_FIELD)))]
    start = min(int(older.get("period_start", 0)), int(newer.get("period_start", 0)))
    end = max(int(older.get("period_start", 0)) + int(older.get("period_s", 0)),
              int(newer.get("period_start", 0)) + int(newer.get("period_s", 0)))
    return {
        **newer,
        "predictions": min(MAX_COUNT, int(older.get("predictions", 0)) + int(newer.get("predictions", 0))),
        "latency_p50_ms": float(percentile(histogram, 0.5) or 0.0),
        "latency_p95_ms": float(percentile(histogram, 0.95) or 0.0),
        HISTOGRAM_FIELD: histogram_map(histogram),
        "period_start": start,
        "period_s": max(0, end - start),
    }


@dataclass(frozen=True)
class FleetVersion:
    """What the devices that reported a version within the window add up to."""

    devices: int
    predictions: int
    histogram: tuple[int, ...]

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.histogram, 0.5)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.histogram, 0.95)
