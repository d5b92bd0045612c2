"""Benchmarks that need a running local stack: ingest throughput and the client's update check.

Each function takes a stack that is already up (and this process pointed at
it) and returns plain numbers; ``edgeloop.bench`` formats them into BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime
from typing import Any, Callable

from rich.console import Console

from edgeloop.localstack.function_logs import log_entries
from edgeloop.localstack.state import StackState
from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client, storage_client

FEEDBACK_BURST = 300
POLLS = 30


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _timed(action: Callable[[], Any], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def feedback_burst(model: str, count: int, state: StackState, settings: Settings, console: Console,
                   timeout_s: float = 120.0) -> tuple[float, dict[str, float], dict[str, float]]:
    """Write ``count`` feedback reports in batches of 100 and wait until on_feedback handled each (or the time
    runs out): (start, written: id → time written, handled: id → time handled), times in epoch seconds."""
    db = firestore_client(settings.project_id)
    written: dict[str, float] = {}
    with console.status(f"{count} feedback documents → on_feedback…"):
        start = time.time()
        for first in range(0, count, 100):
            batch = db.batch()
            for i in range(first, min(first + 100, count)):
                feedback_id = f"bench-{uuid.uuid4().hex[:12]}"
                batch.set(db.document(layout.feedback_doc(model, feedback_id)), {
                    "uid": "bench", "model_version": "v1", "predicted_label": str(i % 10), "confidence": 0.9,
                    "correct": i % 4 != 0})
                written[feedback_id] = time.time()
            batch.commit()
        deadline = time.monotonic() + timeout_s  # far beyond the burst's p95: what is not handled by then is reported
        while True:
            handled = {e["document"].rsplit("/", 1)[-1]: datetime.fromisoformat(e["time"]).timestamp()
                       for e in log_entries(state, "on_feedback")
                       if e.get("event") == "feedback_handled" and str(e.get("document", "")).startswith(f"models/{model}/")}
            done = {k: v for k, v in handled.items() if k in written}
            if len(done) >= count or time.monotonic() > deadline:
                return start, written, done
            time.sleep(0.5)


def ingest(model: str, state: StackState, settings: Settings, console: Console) -> dict[str, Any]:
    """on_upload and the naive handler on the same storage notifications (``bench_naive.upload_race``), then a
    burst of feedback documents through on_feedback."""
    from edgeloop.bench_naive import upload_race

    uploads = upload_race(model, state, settings, console)
    start, written, done = feedback_burst(model, FEEDBACK_BURST, state, settings, console)
    latencies = [done[k] - written[k] for k in done]
    elapsed = max(done.values()) - start if done else float("nan")
    return {
        "uploads": uploads,
        "feedback": len(done), "written": len(written), "feedback_seconds": elapsed, "feedback_per_s": len(done) / elapsed if done else 0.0,
        "feedback_p50_s": _percentile(latencies, 50) if latencies else float("nan"),
        "feedback_p95_s": _percentile(latencies, 95) if latencies else float("nan"),
    }


def client_poll(model: str, state: StackState, settings: Settings, directory) -> dict[str, Any]:
    """The SDK's update check (one pointer read, download only on change) vs downloading the model every poll."""
    from client_sdk import EdgeloopClient, Endpoints
    from client_sdk.auth import AuthEndpoints
    from edgeloop.device import load_public_key
    from edgeloop.identities import signed_in_device
    from shared.registry import ModelPointer

    session = signed_in_device("bench-device", model, state.project_id, AuthEndpoints.from_client_env(state.client_env()))

    def client() -> EdgeloopClient:
        return EdgeloopClient(model, uid=session.uid, device_id="bench-device", directory=directory,
                              public_key_pem=load_public_key(state.path / "signing-key.pem"),
                              endpoints=Endpoints.from_client_env(state.client_env()),
                              id_token=session.id_token, settings=settings.client)

    device = client()
    first = _timed(lambda: device.check_for_update(), 1)[0]
    install_bytes = device.transport.stats.model_bytes
    before = (device.transport.stats.document_reads, device.transport.stats.model_bytes)
    unchanged = _timed(lambda: device.check_for_update(), POLLS)
    reads = device.transport.stats.document_reads - before[0]
    polled_bytes = device.transport.stats.model_bytes - before[1]

    pointer = ModelPointer.model_validate(firestore_client(settings.project_id).document(layout.model_doc(model)).get().to_dict())
    blob = storage_client(settings.project_id).bucket(settings.bucket).blob(pointer.production.path)
    naive = _timed(lambda: blob.download_as_bytes(), POLLS)
    return {
        "model_bytes": pointer.production.size, "first_install_s": first, "install_bytes": install_bytes,
        "unchanged_p50_ms": _percentile(unchanged, 50) * 1000, "unchanged_p95_ms": _percentile(unchanged, 95) * 1000,
        "unchanged_reads_per_poll": reads / POLLS, "unchanged_bytes_per_poll": polled_bytes / POLLS,
        "naive_p50_ms": _percentile(naive, 50) * 1000, "naive_p95_ms": _percentile(naive, 95) * 1000,
        "naive_bytes_per_poll": pointer.production.size, "polls": POLLS,
    }
