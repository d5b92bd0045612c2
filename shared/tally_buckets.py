"""Where a counted report is tallied, so a version's success rate reads bucket documents, not reports.

Each counted report adds one to ``total`` (and to ``correct`` when it says the prediction was right) of one
document of its version: the time bucket of ``thresholds.tally_bucket_s`` seconds that holds the time it was
received, and one of ``thresholds.tally_shards`` shards picked by a hash of the report's document path (so no
document takes more than about 1/shards of a version's reports). ``shared.gcp.tallies.admit_report`` adds
it in the transaction that admits the report, which decides each report exactly once: a redelivery changes
no tally. A windowed tally is one sum over the version's bucket documents that start at or after
``window_start``: it reads at most ``bucket_documents`` index entries, however many reports there are.

Windowing is whole buckets: the window reaches back to the start of the bucket that holds ``now - window``,
so every report received within the window counts, and so do those received up to one bucket before it.
Pure: no cloud client.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def bucket_start(at: datetime, bucket_s: int) -> datetime:
    """The start of the bucket that holds ``at`` (buckets are aligned on the Unix epoch, in UTC)."""
    if bucket_s < 1:
        raise ValueError(f"bucket_s must be at least 1, got {bucket_s}")
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    seconds = math.floor((at - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=seconds - seconds % bucket_s)


def shard_of(report: str, shards: int) -> int:
    """The shard of the report at document path ``report`` (stable: the same report, the same shard)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return int.from_bytes(hashlib.sha256(report.encode()).digest()[:8], "big") % shards


def bucket_id(start: datetime, shard: int) -> str:
    """The document id of one (bucket, shard): the bucket's start in Unix seconds, then the shard."""
    return f"{int((start - EPOCH).total_seconds())}-{shard}"


def window_start(now: datetime, window: timedelta, bucket_s: int) -> datetime:
    """The first bucket a window of ``window`` ending ``now`` sums: the one holding ``now - window``."""
    return bucket_start(now - window, bucket_s)


def bucket_documents(window_s: float, bucket_s: int, shards: int) -> int:
    """At most how many bucket documents a windowed tally sums (what its aggregation scans)."""
    return (math.ceil(window_s / bucket_s) + 1) * shards
