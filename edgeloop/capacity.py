"""The capacity model: instances, operations per second and a monthly bill for a given load, from the operations
one event costs (counted on the local stack by ``edgeloop bench capacity``, edgeloop.opcount) and the public
price list below. Pure: numbers in, numbers out.

Model (each assumption is a parameter or a named constant):

* A function's instances follow Little's law: events/s × seconds per event ÷ requests per instance.
  Request-based billing charges an instance's vCPU and memory while it holds a request; concurrent requests
  share it, so the billed instance-seconds are the same busy time.
* Firestore reads, writes and deletes per event are the counted ones. An aggregation (count or sum) query is
  billed one read per 1,000 index entries it scans, at least one: on_feedback's success-rate sum scans the
  version's tally bucket documents in its window (``shared.tally_buckets``): one per report at first, then at
  most ``tally_documents`` (buckets in the window x shards) however high the report rate. Were the reports
  themselves counted (``tally_documents`` infinite), the scan, and so the cost per report, would grow with the
  rate. on_upload's count scans at most one threshold's worth of new images (< 1,000: one read).
* Pub/Sub: each upload's storage notification is published once and pushed once (two throughput charges of at
  least ``PUBSUB_MIN_BYTES``), plus what the handlers publish. Firestore triggers reach on_feedback through
  Eventarc, not a Pub/Sub topic.
* A device's update check reads one document (counted by ``edgeloop bench client``); devices poll hourly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

SECONDS_PER_MONTH = 30 * 24 * 3600
DAYS_PER_MONTH = 30
INDEX_ENTRIES_PER_READ = 1_000  # an aggregation is billed one read per batch of up to 1,000 index entries
PUBSUB_MIN_BYTES = 1_000  # a message is billed at least 1,000 bytes per publish and per delivery
TIB = 2**40
GIB = 2**30


@dataclass(frozen=True)
class Prices:
    """USD list prices, and where and when they were read."""

    run_vcpu_second: float = 0.000024  # Cloud Run, request-based billing, tier 1 region
    run_gib_second: float = 0.0000025
    run_million_requests: float = 0.40
    run_free_vcpu_seconds: float = 180_000  # per month
    run_free_gib_seconds: float = 360_000
    run_free_requests: float = 2_000_000
    firestore_100k_reads: float = 0.06  # multi-region (nam5)
    firestore_100k_writes: float = 0.18
    firestore_100k_deletes: float = 0.02
    firestore_free_reads_per_day: float = 50_000
    firestore_free_writes_per_day: float = 20_000
    firestore_free_deletes_per_day: float = 20_000
    pubsub_tib: float = 40.0  # throughput, Message Delivery Basic
    pubsub_free_gib: float = 10.0  # per month
    storage_1k_class_a: float = 0.005  # Standard, regional
    storage_1k_class_b: float = 0.0004
    sources: tuple[str, ...] = (
        "Cloud Run: cloud.google.com/run/pricing (request-based billing, tier 1, free tier per month)",
        "Firestore: cloud.google.com/firestore/pricing (free quota per day); the per-100,000 prices are the "
        "multi-region ones of an older copy of that page: the current per-location table could not be read",
        "Pub/Sub: cloud.google.com/pubsub/pricing ($40 per TiB, first 10 GiB free), as transcribed 2026-09-20; "
        "the 1,000-byte minimum per message is not confirmed from the page",
        "Cloud Storage: class A $0.005 and class B $0.0004 per 1,000 from a third-party summary, not confirmed "
        "on cloud.google.com/storage/pricing",
    )
    read_on: str = "2026-12-02"


@dataclass(frozen=True)
class EventCost:
    """What one event of a function costs, as counted (averages over the counted events)."""

    seconds: float  # the handler's time per event
    firestore_reads: float = 0.0  # documents looked up or returned by queries
    firestore_writes: float = 0.0
    firestore_deletes: float = 0.0
    aggregations: float = 0.0  # count queries
    storage_class_a: float = 0.0
    storage_class_b: float = 0.0
    messages_published: float = 0.0


@dataclass(frozen=True)
class Sizing:
    """A function's instance size, as Terraform deploys it."""

    concurrency: int
    vcpu: float
    memory_gib: float


# What infra/terraform deploys by default (var.function_limits; tests/infra holds the two equal).
DEPLOYED = {
    "on_upload": Sizing(concurrency=3, vcpu=1.0, memory_gib=1.0),
    "on_feedback": Sizing(concurrency=8, vcpu=1.0, memory_gib=0.25),
}


@dataclass(frozen=True)
class Load:
    name: str
    uploads_per_s: float = 0.0
    reports_per_s: float = 0.0
    devices: int = 0
    polls_per_device_per_hour: float = 1.0


@dataclass(frozen=True)
class Capacity:
    load: Load
    instances: dict[str, int]
    firestore_reads_per_s: float
    firestore_writes_per_s: float
    pubsub_messages_per_s: float
    monthly_usd: dict[str, float] = field(default_factory=dict)

    @property
    def total_usd(self) -> float:
        return sum(self.monthly_usd.values())


def aggregation_reads(entries: float) -> float:
    """Reads billed for one aggregation query scanning ``entries`` index entries."""
    return max(1.0, math.ceil(entries / INDEX_ENTRIES_PER_READ))


def _billable(used: float, free: float) -> float:
    return max(0.0, used - free)


def capacity(load: Load, upload: EventCost, report: EventCost, reads_per_poll: float, sizing: dict[str, Sizing],
             window_s: float, notification_bytes: float, prices: Prices = Prices(),
             tally_documents: float = math.inf) -> Capacity:
    """Instances, operation rates and the monthly bill of ``load``; a report's aggregations scan the reports in
    ``window_s``, at most ``tally_documents`` index entries."""
    traffic = {"on_upload": (load.uploads_per_s, upload), "on_feedback": (load.reports_per_s, report)}
    instances, busy_seconds = {}, {}
    for name, (rate, cost) in traffic.items():
        busy_seconds[name] = rate * cost.seconds  # instance-seconds per second, had each request an instance
        instances[name] = math.ceil(busy_seconds[name] / sizing[name].concurrency) if rate else 0
    window_entries = min(load.reports_per_s * window_s, tally_documents)
    reads = (load.uploads_per_s * (upload.firestore_reads + upload.aggregations)
             + load.reports_per_s * (report.firestore_reads + report.aggregations * aggregation_reads(window_entries))
             + load.devices * load.polls_per_device_per_hour / 3600 * reads_per_poll)
    writes = load.uploads_per_s * upload.firestore_writes + load.reports_per_s * report.firestore_writes
    deletes = load.uploads_per_s * upload.firestore_deletes + load.reports_per_s * report.firestore_deletes
    published = load.uploads_per_s * upload.messages_published + load.reports_per_s * report.messages_published
    pubsub_per_s = 2 * load.uploads_per_s + 2 * published  # each published once and pushed once

    month = SECONDS_PER_MONTH
    vcpu_s = sum(busy_seconds[n] / sizing[n].concurrency * sizing[n].vcpu for n in traffic) * month
    gib_s = sum(busy_seconds[n] / sizing[n].concurrency * sizing[n].memory_gib for n in traffic) * month
    requests = (load.uploads_per_s + load.reports_per_s) * month
    free_days = DAYS_PER_MONTH
    pubsub_bytes = pubsub_per_s * max(notification_bytes, PUBSUB_MIN_BYTES) * month
    storage_a = (load.uploads_per_s * upload.storage_class_a + load.reports_per_s * report.storage_class_a) * month
    storage_b = (load.uploads_per_s * upload.storage_class_b + load.reports_per_s * report.storage_class_b) * month
    cost = {
        "Cloud Run functions": (_billable(vcpu_s, prices.run_free_vcpu_seconds) * prices.run_vcpu_second
                                + _billable(gib_s, prices.run_free_gib_seconds) * prices.run_gib_second
                                + _billable(requests, prices.run_free_requests) / 1e6 * prices.run_million_requests),
        "Firestore": (_billable(reads * month, prices.firestore_free_reads_per_day * free_days) / 1e5 * prices.firestore_100k_reads
                      + _billable(writes * month, prices.firestore_free_writes_per_day * free_days) / 1e5 * prices.firestore_100k_writes
                      + _billable(deletes * month, prices.firestore_free_deletes_per_day * free_days) / 1e5 * prices.firestore_100k_deletes),
        "Pub/Sub": _billable(pubsub_bytes, prices.pubsub_free_gib * GIB) / TIB * prices.pubsub_tib,
        "Cloud Storage operations": storage_a / 1e3 * prices.storage_1k_class_a + storage_b / 1e3 * prices.storage_1k_class_b,
    }
    return Capacity(load, instances, reads, writes, pubsub_per_s, cost)


STANDARD_LOADS = (
    Load("10 uploads/s, 10 reports/s", uploads_per_s=10, reports_per_s=10),
    Load("100 uploads/s, 100 reports/s", uploads_per_s=100, reports_per_s=100),
    Load("1,000 uploads/s, 1,000 reports/s", uploads_per_s=1_000, reports_per_s=1_000),
    Load("10⁴ devices polling hourly", devices=10_000),
    Load("10⁶ devices polling hourly", devices=1_000_000),
)


def markdown_table(rows: list[Capacity]) -> str:
    """The capacity table, one row per load."""
    lines = ["| load | instances on_upload / on_feedback | Firestore reads/s | Firestore writes/s | Pub/Sub messages/s "
             "| USD per month: Cloud Run · Firestore · Pub/Sub · Storage ops | total USD per month |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        parts = " · ".join(f"{usd:,.0f}" for usd in row.monthly_usd.values())
        lines.append(f"| {row.load.name} | {row.instances['on_upload']} / {row.instances['on_feedback']} | "
                     f"{row.firestore_reads_per_s:,.1f} | {row.firestore_writes_per_s:,.1f} | "
                     f"{row.pubsub_messages_per_s:,.1f} | {parts} | {row.total_usd:,.0f} |")
    return "\n".join(lines)
