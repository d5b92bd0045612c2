"""The naive baseline bench ingest compares on_upload with counts each object exactly once, duplicates included."""

from shared.config import Settings
from tests.integration.helpers import bucket


def test_the_naive_handler_counts_every_stored_object_once_though_some_notifications_come_twice(local_stack):
    from edgeloop.bench_naive import run_naive, stored_notifications

    prefix = "naive-probe/"  # outside the product's layout: on_upload quarantines these, the naive handler counts them
    for index in range(30):
        bucket(local_stack).blob(f"{prefix}{index}.bin").upload_from_string(b"x" * (index + 1))
    messages = stored_notifications(Settings(), prefix, duplicate_every=5)
    assert len(messages) == 36

    result = run_naive(local_stack, Settings(), messages, timeout_s=120)

    assert (result["distinct"], result["counted"], result["exact"]) == (30, 30, True)
    assert result["per_s"] > 0
