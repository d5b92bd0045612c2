"""Benchmarks that need a running local stack: ingest throughput and the client's update check.

Each function takes a stack that is already up (and this process pointed at
it) and returns plain numbers; ``edgeloop.bench`` formats them into BENCHMARKS.md.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

from google.cloud import firestore
from rich.console import Console

from edgeloop.localstack.function_logs import log_entries
from edgeloop.localstack.processes import cpu_spent
from edgeloop.localstack.state import StackState
from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client, storage_client

FEEDBACK_BURST = 300  # reports written at once, in batches of 100
FEEDBACK_RATE = 35.0  # reports/s: issue 21's target rate
FEEDBACK_PACED = 350  # reports written at FEEDBACK_RATE: ten seconds of traffic
REPORTS_PER_USER = 5  # each user far below thresholds.feedback_per_user_cap: every report is counted and judged
WRONG_EVERY = 20  # one report in 20 says the prediction was wrong: a healthy version, no retrain asked
WRITERS = 8  # concurrent writers: a slow write must not hold the schedule back
COUNTED_REPORTS = 50  # reports whose operations are counted, in process
POLLS = 30


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _timed(action: Callable[[], Any], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def _report(run: str, index: int) -> dict[str, Any]:
    """One device's report: users of their own, REPORTS_PER_USER reports each, as an honest fleet writes them."""
    return {"uid": f"bench-{run}-{index // REPORTS_PER_USER}", "model_version": "v1", "predicted_label": str(index % 10),
            "confidence": 0.9, "correct": index % WRONG_EVERY != 0, "sent_at": firestore.SERVER_TIMESTAMP}


def _handled(model: str, state: StackState, written: dict[str, float], timeout_s: float) -> dict[str, float]:
    """id → when on_feedback logged it handled, for each of ``written`` handled before the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        handled = {e["document"].rsplit("/", 1)[-1]: datetime.fromisoformat(e["time"]).timestamp()
                   for e in log_entries(state, "on_feedback")
                   if e.get("event") == "feedback_handled" and str(e.get("document", "")).startswith(f"models/{model}/")}
        done = {k: v for k, v in handled.items() if k in written}
        if len(done) >= len(written) or time.monotonic() > deadline:
            return done
        time.sleep(0.5)


def feedback_burst(model: str, count: int, state: StackState, settings: Settings, console: Console,
                   timeout_s: float = 120.0) -> tuple[float, dict[str, float], dict[str, float]]:
    """Write ``count`` feedback reports in batches of 100 and wait until on_feedback handled each (or the time
    runs out): (start, written: id → time written, handled: id → time handled), times in epoch seconds."""
    db = firestore_client(settings.project_id)
    run = uuid.uuid4().hex[:6]
    written: dict[str, float] = {}
    with console.status(f"{count} feedback documents at once → on_feedback…"):
        start = time.time()
        for first in range(0, count, 100):
            batch = db.batch()
            ids = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(first, min(first + 100, count))]
            for offset, feedback_id in enumerate(ids):
                batch.set(db.document(layout.feedback_doc(model, feedback_id)), _report(run, first + offset))
            committed = batch.commit()[0].update_time.timestamp()  # one commit time for the whole batch
            written.update({feedback_id: committed for feedback_id in ids})
        # far beyond the burst's p95: what is not handled by then is reported
        return start, written, _handled(model, state, written, timeout_s)


def paced_writes(db: firestore.Client, count: int, rate: float, writers: int, document: Callable[[str], str],
                 fields: Callable[[int], dict[str, Any]], prefix: str = "bench") -> dict[str, float]:
    """``count`` documents written one by one at ``rate`` per second, each at its time on a fixed schedule, from
    ``writers`` writers (a slow write must not hold the schedule back): id → commit time, in epoch seconds."""
    written: dict[str, float] = {}

    def write(index: int) -> None:
        document_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        written[document_id] = db.document(document(document_id)).set(fields(index)).update_time.timestamp()

    with ThreadPoolExecutor(max_workers=writers) as pool:
        start = time.monotonic()
        pending = []
        for index in range(count):
            time.sleep(max(0.0, start + index / rate - time.monotonic()))
            pending.append(pool.submit(write, index))
        for future in pending:
            future.result()
    return written


def feedback_paced(model: str, count: int, rate: float, state: StackState, settings: Settings, console: Console,
                   timeout_s: float = 120.0) -> tuple[dict[str, float], dict[str, float]]:
    """Write ``count`` reports one by one at ``rate`` per second (``paced_writes``, ``WRITERS`` writers) and wait
    until on_feedback handled each: (written: id → commit time, handled: id → time handled), epoch seconds."""
    run = uuid.uuid4().hex[:6]
    with console.status(f"{count} feedback documents at {rate:g}/s → on_feedback…"):
        written = paced_writes(firestore_client(settings.project_id), count, rate, WRITERS,
                               lambda feedback_id: layout.feedback_doc(model, feedback_id),
                               lambda index: _report(run, index))
        return written, _handled(model, state, written, timeout_s)


def serve_placeholder_v1(model: str, settings: Settings) -> None:
    """v1 in production, as reports are judged in the field (the release rules read its pointer and record): its
    record is published through the registry's own path; its model file is a placeholder no device downloads."""
    from shared import integrity
    from shared.gcp import model_registry, training_lock
    from shared.registry import ModelInput, ModelRef, Stage, VersionRecord
    from shared.retrain import manual_request

    created = training_lock.create_run(manual_request(model, who="edgeloop bench"), settings)
    placeholder = b"bench placeholder"
    labels = model_registry.load_pointer(model, settings).labels
    ref = ModelRef(version=created.version, path=layout.model_object(model, created.version),
                   sha256=integrity.sha256_hex(placeholder), size=len(placeholder), signature="", labels=labels,
                   input=ModelInput(height=8, width=8))
    record = VersionRecord(model=model, version=created.version, run_id=created.run_id, created=datetime.now(timezone.utc),
                           stage=Stage.CANDIDATE, ref=ref, gate={"passed": True, "checks": []}, metrics={})
    model_registry.publish_version(record, {}, settings)


def _latency(written: dict[str, float], done: dict[str, float], start: float) -> dict[str, float]:
    latencies = [done[k] - written[k] for k in done]
    elapsed = max(done.values()) - start if done else float("nan")
    return {"handled": len(done), "written": len(written), "seconds": elapsed,
            "per_s": len(done) / elapsed if done else 0.0,
            "p50_s": percentile(latencies, 50) if latencies else float("nan"),
            "p95_s": percentile(latencies, 95) if latencies else float("nan"),
            "max_s": max(latencies) if latencies else float("nan")}


def report_events(model: str, state, settings, count: int) -> list:
    """Reports from distinct users, written as devices write them; their trigger events as Firestore sends them."""
    import requests
    from cloudevents.http import CloudEvent

    db = firestore_client(settings.project_id)
    rest = f"{state.url('firestore')}/v1/projects/{state.project_id}/databases/(default)/documents"
    events = []
    for i in range(count):
        path = layout.feedback_doc(model, f"capacity-{uuid.uuid4().hex[:16]}")
        db.document(path).set({"uid": f"capacity-user-{i}", "model_version": "v1", "predicted_label": str(i % 10),
                               "confidence": 0.9, "correct": i % 4 != 0, "sent_at": datetime.now(timezone.utc)})
        document = requests.get(f"{rest}/{path}", headers={"Authorization": "Bearer owner"}, timeout=30).json()
        events.append(CloudEvent({"type": "google.cloud.firestore.document.v1.created", "id": uuid.uuid4().hex,
                                  "source": f"//firestore.googleapis.com/projects/{state.project_id}/databases/(default)"},
                                 {"value": document}))
    return events


def report_operations(model: str, state: StackState, settings: Settings, count: int = COUNTED_REPORTS) -> dict[str, float]:
    """Firestore and Pub/Sub operations per report, counted at the clients (edgeloop.opcount) while on_feedback's
    handler runs in this process, one report at a time, as functions-framework calls it; the stack's on_feedback
    process is stopped first (its trigger deliveries then fail, unanswered)."""
    from edgeloop.localstack.faults import kill_component
    from edgeloop.opcount import counting
    from functions import main

    kill_component(state.path, "on_feedback")
    events = report_events(model, state, settings, count)
    deltas, seconds = [], []
    with counting(settings.project_id) as counter:
        for event in events:
            before = counter.snapshot()
            started = time.perf_counter()
            main.on_feedback(event)
            seconds.append(time.perf_counter() - started)
            deltas.append(counter.snapshot() - before)

    def mean(*keys: str) -> float:
        return sum(sum(d[key] for key in keys) for d in deltas) / len(deltas)

    return {"reports": len(deltas), "reads": mean("firestore.reads"), "writes": mean("firestore.writes"),
            "aggregations": mean("firestore.aggregations"), "transactions": mean("firestore.rpc.BeginTransaction"),
            "round_trips": sum(sum(n for key, n in d.items() if key.startswith("firestore.rpc.")) for d in deltas) / len(deltas),
            "published": mean("pubsub.messages"), "handler_ms": statistics.median(seconds) * 1000}


CPU_WATCHED = ("firestore", "on_feedback")  # what handles a report on the stack, besides the writer


def feedback(model: str, state: StackState, settings: Settings, console: Console) -> dict[str, Any]:
    """on_feedback at issue 21's rate and in a burst (write → handled on the stack), then its operations per report."""
    serve_placeholder_v1(model, settings)
    load_before = os.getloadavg()[0]
    with cpu_spent(state.pids, CPU_WATCHED) as spent:
        written, done = feedback_paced(model, FEEDBACK_PACED, FEEDBACK_RATE, state, settings, console)
    cpu_ms = {name: 1000 * seconds / max(len(done), 1) for name, seconds in spent.items()}  # per paced report
    load_after = os.getloadavg()[0]
    first_write = min(written.values())
    paced = _latency(written, done, first_write)
    paced["write_rate"] = (len(written) - 1) / (max(written.values()) - first_write) if len(written) > 1 else 0.0
    start, written, done = feedback_burst(model, FEEDBACK_BURST, state, settings, console)
    burst = _latency(written, done, start)
    with console.status(f"{COUNTED_REPORTS} reports through on_feedback's handler, operations counted…"):
        operations = report_operations(model, state, settings)
    return {"paced": paced, "burst": burst, "operations": operations, "rate": FEEDBACK_RATE,
            "load": (load_before, load_after), "cpu_ms_per_report": cpu_ms}


def ingest(model: str, state: StackState, settings: Settings, console: Console) -> dict[str, Any]:
    """on_upload and the naive handler on the same storage notifications (``bench_naive.upload_race``), then
    feedback reports through on_feedback (``feedback``)."""
    from edgeloop.bench_naive import upload_race

    return {"uploads": upload_race(model, state, settings, console), "feedback": feedback(model, state, settings, console)}


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
        "unchanged_p50_ms": percentile(unchanged, 50) * 1000, "unchanged_p95_ms": percentile(unchanged, 95) * 1000,
        "unchanged_reads_per_poll": reads / POLLS, "unchanged_bytes_per_poll": polled_bytes / POLLS,
        "naive_p50_ms": percentile(naive, 50) * 1000, "naive_p95_ms": percentile(naive, 95) * 1000,
        "naive_bytes_per_poll": pointer.production.size, "polls": POLLS,
    }
