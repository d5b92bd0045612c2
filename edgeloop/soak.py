"""A bounded soak of the local stack: mixed uploads, overwrites, redeliveries, captures, feedback and retrain
triggers for a few minutes, then the invariants.

``run_soak`` drives a stack that is up (with this process pointed at it) and returns plain numbers;
``edgeloop bench soak`` formats them into BENCHMARKS.md. The invariant checks are pure functions of what was
written and what the stack holds afterwards, unit-tested in tests/unit/edgeloop/test_soak.py.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

import psutil
from google.cloud import firestore
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgeloop.localstack.function_logs import log_entries
from edgeloop.localstack.gcs_notification import notification_message
from edgeloop.localstack.state import EMULATORS, FUNCTIONS, StackState
from shared import launch_rules, layout
from shared.config import Settings
from shared.digits import load_digits_rgb
from shared.gcp import retrain_requests, training_lock
from shared.gcp.bus import request_drift_check
from shared.gcp.clients import firestore_client, publisher_client, storage_client, topic_path
from shared.gcp.dead_letters import drain
from shared.retrain import manual_request

SOAK_MODEL = "soak"
# Settings the soak's stack runs with: thresholds a few minutes of traffic crosses more than once.
SOAK_ENV = {
    "EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES": "120",
    "EDGELOOP_THRESHOLDS__MIN_FEEDBACK_SAMPLES": "60",
    "EDGELOOP_TRAINING__COOLDOWN_S": "20",
    "EDGELOOP_GATE__MIN_ACCURACY": "0.6",
    "EDGELOOP_THRESHOLDS__RECONCILE_AFTER_S": "30",
}
SEED_IMAGES = 400
TICK_EVERY_S = 20.0  # what Cloud Scheduler does every few minutes, compressed
MANUAL_EVERY_S = 75.0
SAMPLE_EVERY_S = 2.0
FINAL_STATUSES = launch_rules.RunStatus.FINAL


@dataclass
class Ledger:
    """What the soak wrote, with times, and what it saw while it ran (appended to from several threads)."""

    live: dict[str, int] = field(default_factory=dict)  # object name -> its live generation
    uploaded_at: dict[tuple[str, int], float] = field(default_factory=dict)
    feedback_at: dict[str, float] = field(default_factory=dict)  # feedback document path -> write time
    redeliveries: int = 0
    overwrites: int = 0
    manual_requests: int = 0
    ticks: int = 0
    active_run_samples: list[int] = field(default_factory=list)  # unfinished runs seen at each sample
    pointer_problems: list[str] = field(default_factory=list)
    rss_mib: dict[str, float] = field(default_factory=dict)  # component -> highest resident memory seen
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- invariants: pure ------------------------------------------------------------------------------------

def uploads_counted_once(live: dict[str, int], images: Iterable[dict]) -> list[str]:
    """Each live object is exactly one counted (new or used) image document, of its live generation."""
    counted = Counter(d["object"] for d in images if d.get("status") in ("new", "used"))
    generations = {d["object"]: d["generation"] for d in images if d.get("status") in ("new", "used")}
    problems = [f"{name}: counted {counted[name]} times" for name in live if counted[name] != 1]
    problems += [f"{name}: counts generation {generations[name]}, live is {gen}"
                 for name, gen in live.items() if counted[name] == 1 and generations[name] != gen]
    problems += [f"{name}: counted but not one of the soak's objects" for name in counted if name not in live]
    return problems


def feedback_lost(written: Iterable[str], handled: Iterable[str], tally_total: int) -> list[str]:
    """Every report was handled by on_feedback, and every one is in its version's count."""
    missing = sorted(set(written) - set(handled))
    problems = [f"{len(missing)} reports never handled, e.g. {missing[:3]}"] if missing else []
    expected = len(set(written))
    if tally_total != expected:
        problems.append(f"the version's count says {tally_total} reports, {expected} were written")
    return problems


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


# --- the stack side ---------------------------------------------------------------------------------------

def _component_rss_mib(state: StackState) -> dict[str, float]:
    """Resident memory of each component: its process and every descendant (workers, a trainer)."""
    sizes = {}
    for name, pid in state.pids.items():
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
            sizes[name] = sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20
        except psutil.Error:
            continue
    return sizes


def _pointer_problems(db: firestore.Client, bucket, model: str) -> list[str]:
    """A version a client can be pointed at has its record, its model file and its signature."""
    pointer = db.document(layout.model_doc(model)).get().to_dict() or {}
    problems = []
    for role in ("production", "canary"):
        target = pointer.get(role) or {}
        version, path = target.get("version"), target.get("path")
        if not version:
            continue
        if not db.document(layout.version_doc(model, version)).get().exists:
            problems.append(f"{role} {version}: no version record")
        if path and (bucket.get_blob(path) is None or bucket.get_blob(f"{path}.sig") is None):
            problems.append(f"{role} {version}: model file or signature missing")
    return problems


def _handled_times(state: StackState, function: str, event: str, key: Callable[[dict], Any]) -> dict[Any, float]:
    return {key(e): datetime.fromisoformat(e["time"]).timestamp()
            for e in log_entries(state, function) if e.get("event") == event}


class Soak:
    def __init__(self, state: StackState, settings: Settings, duration_s: float, seed: int = 0):
        self.state, self.settings, self.duration_s = state, settings, duration_s
        self.db = firestore_client(settings.project_id)
        self.bucket = storage_client(settings.project_id).bucket(settings.bucket)
        self.digits = load_digits_rgb()
        self.random = random.Random(seed)
        self.ledger = Ledger()
        self.stop = threading.Event()

    # Each worker runs until ``stop``; sleeping through ``stop.wait`` so the soak ends on time.

    def uploads(self) -> None:
        index = 0
        while not self.stop.wait(0.25):
            index += 1
            digit = self.digits[self.random.randrange(len(self.digits))]
            names = list(self.ledger.live)
            if names and self.random.random() < 0.1:  # an app replaces an image it sent earlier
                name = self.random.choice([n for n in names if n.startswith("dataset/")] or names)
                self.ledger.overwrites += 1
            else:
                name = layout.dataset_object(SOAK_MODEL, digit.label, f"soak-{index}-{uuid.uuid4().hex[:6]}.png")
            blob = self.bucket.blob(name)
            blob.upload_from_string(digit.png(), content_type="image/png")
            with self.ledger.lock:
                self.ledger.live[name] = blob.generation
                self.ledger.uploaded_at[(name, blob.generation)] = time.time()
            if self.random.random() < 0.1:  # Pub/Sub delivers some notifications twice
                data, attributes = notification_message(blob._properties)
                publisher_client().publish(topic_path(self.settings.topics.storage_events, self.settings.project_id),
                                           data, **attributes).result(timeout=30)
                self.ledger.redeliveries += 1

    def feedback(self) -> None:
        """Devices report; one in five reports a capture the user labelled, which makes it training data."""
        while not self.stop.wait(0.2):
            digit = self.digits[self.random.randrange(len(self.digits))]
            correct = self.random.random() < 0.9
            predicted = digit.label if correct else str((int(digit.label) + 1) % 10)
            report = {"uid": "soak", "model_version": "v1", "predicted_label": predicted,
                      "confidence": round(self.random.uniform(0.3, 1.0), 3), "correct": correct}
            if self.random.random() < 0.2:
                capture = layout.upload_object(SOAK_MODEL, "soak", uuid.uuid4().hex, "png")
                blob = self.bucket.blob(capture)
                blob.metadata = {"predicted_label": predicted, "confidence": str(report["confidence"]),
                                 "model_version": "v1"}
                blob.upload_from_string(digit.png(), content_type="image/png")
                with self.ledger.lock:
                    self.ledger.live[capture] = blob.generation
                    self.ledger.uploaded_at[(capture, blob.generation)] = time.time()
                report |= {"capture": capture, "true_label": digit.label}
            document = layout.feedback_doc(SOAK_MODEL, uuid.uuid4().hex)
            self.db.document(document).set(report)
            with self.ledger.lock:
                self.ledger.feedback_at[document] = time.time()

    def triggers(self) -> None:
        """The scheduler's tick, and now and then an operator's manual retrain, sent twice."""
        started = time.monotonic()
        next_manual = MANUAL_EVERY_S
        while not self.stop.wait(TICK_EVERY_S):
            self.tick()
            if time.monotonic() - started >= next_manual:
                request = manual_request(SOAK_MODEL, who="edgeloop bench soak")
                for _ in range(2):
                    retrain_requests.publish_request(request, self.settings)
                self.ledger.manual_requests += 1
                next_manual += MANUAL_EVERY_S

    def tick(self) -> None:
        request_drift_check(SOAK_MODEL, self.settings)
        self.ledger.ticks += 1

    def sampler(self) -> None:
        runs = self.db.collection("runs").where(filter=firestore.FieldFilter("model", "==", SOAK_MODEL))
        while not self.stop.wait(SAMPLE_EVERY_S):
            unfinished = sum(1 for s in runs.stream() if s.get("status") not in FINAL_STATUSES)
            problems = _pointer_problems(self.db, self.bucket, SOAK_MODEL)
            sizes = _component_rss_mib(self.state)
            with self.ledger.lock:
                self.ledger.active_run_samples.append(unfinished)
                self.ledger.pointer_problems.extend(problems)
                for name, mib in sizes.items():
                    self.ledger.rss_mib[name] = max(self.ledger.rss_mib.get(name, 0.0), mib)

    def run(self, console: Console) -> None:
        workers = [threading.Thread(target=target, name=target.__name__, daemon=True)
                   for target in (self.uploads, self.feedback, self.triggers, self.sampler)]
        for worker in workers:
            worker.start()
        columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("soak", total=self.duration_s)
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < self.duration_s:
                progress.update(task, completed=elapsed, description=(
                    f"soak: {len(self.ledger.uploaded_at)} uploads, {len(self.ledger.feedback_at)} reports, "
                    f"{self.ledger.ticks} ticks"))
                time.sleep(1.0)
            progress.update(task, completed=self.duration_s)
        self.stop.set()
        for worker in workers:
            worker.join(timeout=60)


def _quiesce(soak: Soak, console: Console, timeout_s: float = 420.0) -> float:
    """Wait until every upload and report was handled and no run is left; seconds it took."""
    started = time.monotonic()
    soak.tick()  # the tick after the traffic: anything an event never brought in is done now
    runs = soak.db.collection("runs").where(filter=firestore.FieldFilter("model", "==", SOAK_MODEL))
    with console.status("draining: every event handled, every run finished…"):
        while time.monotonic() - started < timeout_s:
            ingested = set(_handled_times(soak.state, "on_upload", "object_ingested",
                                          lambda e: (e["object"], e["generation"])))
            ingested |= {(d.get("object"), d.get("generation")) for d in (
                s.to_dict() for s in soak.db.collection(layout.images_collection(SOAK_MODEL)).stream())}  # reconciled
            handled = _handled_times(soak.state, "on_feedback", "feedback_handled", lambda e: e.get("document"))
            state = training_lock.training_state(SOAK_MODEL, soak.settings)
            unfinished = [s for s in runs.stream() if s.get("status") not in FINAL_STATUSES]
            if (set(soak.ledger.uploaded_at) <= ingested and set(soak.ledger.feedback_at) <= set(handled)
                    and not state.get("active_run") and not unfinished):
                break
            time.sleep(2.0)
    return time.monotonic() - started


def run_soak(state: StackState, settings: Settings, console: Console, duration_s: float = 180.0) -> dict[str, Any]:
    """Seed and train v1, soak for ``duration_s``, drain, and check the invariants."""
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared.gcp.tallies import version_tally

    console.rule("soak: seeding v1")
    seeded = seed_dataset(SOAK_MODEL, settings, console, train=True, limit=SEED_IMAGES)
    wait_for_outcome(seeded.run_id, settings, console)
    soak = Soak(state, settings, duration_s)
    dataset = {b.name: b.generation for b in soak.bucket.list_blobs(prefix=f"{layout.DATASET_PREFIX}/{SOAK_MODEL}/")}
    soak.ledger.live.update(dataset)

    console.rule(f"soak: {duration_s:.0f} s of mixed traffic")
    soak.run(console)
    drain_s = _quiesce(soak, console)

    ledger = soak.ledger
    images = [s.to_dict() for s in soak.db.collection(layout.images_collection(SOAK_MODEL)).stream()]
    ingested = _handled_times(state, "on_upload", "object_ingested", lambda e: (e["object"], e["generation"]))
    handled = _handled_times(state, "on_feedback", "feedback_handled", lambda e: e.get("document"))
    upload_latency = [ingested[k] - t for k, t in ledger.uploaded_at.items() if k in ingested]
    feedback_latency = [handled[k] - t for k, t in ledger.feedback_at.items() if k in handled]
    runs = [s.to_dict() for s in soak.db.collection("runs")
            .where(filter=firestore.FieldFilter("model", "==", SOAK_MODEL)).stream()]
    letters = drain(settings, replay=False)
    invariants = {
        "every accepted upload counted once": uploads_counted_once(ledger.live, images),
        # every report stored (one soak user writes them all: past the per-user cap they are kept, not counted)
        "no lost feedback": feedback_lost(ledger.feedback_at, handled, version_tally(soak.db, SOAK_MODEL, "v1", counted_only=False).total),
        "at most one active run": [f"{n} unfinished runs at once" for n in ledger.active_run_samples if n > 1],
        "no partial model visible": sorted(set(ledger.pointer_problems)),
        "lock released": (["the training lock is still held"]
                          if training_lock.training_state(SOAK_MODEL, settings).get("active_run") else []),
        "nothing dead-lettered": [f"{len(letters)} dead letters"] if letters else [],
    }
    return {
        "duration_s": duration_s, "drain_s": drain_s, "seed_images": seeded.images,
        "uploads": len(ledger.uploaded_at), "overwrites": ledger.overwrites, "redeliveries": ledger.redeliveries,
        "reports": len(ledger.feedback_at), "ticks": ledger.ticks, "manual_requests": ledger.manual_requests,
        "upload_rate": len(ledger.uploaded_at) / duration_s, "report_rate": len(ledger.feedback_at) / duration_s,
        "upload_latency": percentiles(upload_latency), "feedback_latency": percentiles(feedback_latency),
        "runs": Counter(r["status"] for r in runs), "run_reasons": Counter(r["reason"] for r in runs),
        "rss_mib": {name: ledger.rss_mib.get(name, float("nan")) for name in (*EMULATORS, *FUNCTIONS)},
        "samples": len(ledger.active_run_samples), "invariants": invariants,
    }
