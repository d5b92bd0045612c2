"""The naive baseline bench ingest compares on_upload with counts each object exactly once, duplicates included."""

from shared.config import Settings
from tests.integration.helpers import bucket


def test_the_naive_handler_counts_every_stored_object_once_though_some_notifications_come_twice(local_stack):
    from edgeloop.bench_naive import DOWNLOADING, naive_served, run_naive, stored_notifications

    prefix = "naive-probe/"  # outside the product's layout: on_upload quarantines these, the naive handler counts them
    for index in range(30):
        bucket(local_stack).blob(f"{prefix}{index}.bin").upload_from_string(b"x" * (index + 1))
    messages = stored_notifications(Settings(), prefix, duplicate_every=5)
    assert len(messages) == 36
    for index in range(10):
        bucket(local_stack).blob(f"{prefix}more/{index}.bin").upload_from_string(b"y" * (index + 1))
    with naive_served(local_stack, Settings()) as served:
        result = run_naive(served, Settings(), messages, timeout_s=120)
        # More objects through the same server: counted from where the first run left off.
        again = run_naive(served, Settings(), stored_notifications(Settings(), f"{prefix}more/"), timeout_s=120)
    with naive_served(local_stack, Settings(), DOWNLOADING) as downloading:  # reads each object first: counts its own
        downloaded = run_naive(downloading, Settings(), messages, timeout_s=120)

    assert (result["distinct"], result["counted"], result["exact"]) == (30, 30, True)
    assert (again["distinct"], again["counted"], again["exact"]) == (10, 10, True)
    assert (downloaded["distinct"], downloaded["counted"], downloaded["exact"]) == (30, 30, True)
    assert result["per_s"] > 0 and result["cpu_ms_per_image"]["handler"] > 0
    assert downloaded["cpu_ms_per_image"]["storage"] > 0 == result["cpu_ms_per_image"]["storage"]


def test_objects_uploaded_while_on_uploads_delivery_is_paused_are_registered_once_each_when_announced(local_stack):
    """bench ingest's input for on_upload: objects in the bucket that on_upload has not seen, then their
    notifications (some twice) through the storage-events topic, timed until the image count is exact."""
    import uuid

    from edgeloop.bench_naive import run_on_upload, stored_notifications, upload_undelivered
    from edgeloop.localstack.function_logs import log_entries
    from shared import layout
    from shared.digits import load_digits_rgb
    from tests.integration.helpers import fresh_model, image_docs

    model = fresh_model(local_stack, "race")
    digits = load_digits_rgb()[:20]
    upload_undelivered(local_stack, Settings(), [
        (layout.dataset_object(model, d.label, f"{uuid.uuid4().hex[:8]}.png"), d.png()) for d in digits])
    assert image_docs(local_stack, model) == []  # on_upload saw none of them
    assert not [e for e in log_entries(local_stack, "on_upload") if f"/{model}/" in str(e.get("object", ""))]
    messages = stored_notifications(Settings(), f"{layout.DATASET_PREFIX}/{model}/", duplicate_every=5)
    assert len(messages) == 24

    result = run_on_upload(model, local_stack, Settings(), messages, timeout_s=180)

    assert (result["distinct"], result["counted"], result["exact"]) == (20, 20, True)
    assert sorted(d["object"] for d in image_docs(local_stack, model)) == sorted(m[1]["objectId"] for m in messages[:20])
