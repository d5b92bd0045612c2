"""The offline queue: captures and feedback wait on disk until the backend takes them.

Each item is one JSON file (plus one ``.bin`` file with an upload's bytes),
written atomically; the JSON file is the commit marker, so a crash mid-write
leaves no half item, and everything queued survives an app restart. A flush
sends items oldest first, retrying transient failures with exponential backoff
(tenacity) a few times; an item that still fails waits on disk with its next
attempt time, and the flush stops there (the network is most likely down).
Items the backend refuses for good (security rules, validation) move to
``rejected/`` with the reason instead of blocking the queue.

Sends are idempotent (a feedback document id and a create-only upload are
fixed when the item is queued; a telemetry report sets the device's own record
to the same values), so an item delivered just before a crash and sent again
is not counted twice. At most one telemetry item per record waits: a newer
report merges into the one still queued (``add_telemetry``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from client_sdk.errors import ClientError, Offline
from client_sdk.store import write_atomically
from client_sdk.transport import Transport
from shared import layout
from shared.config import Client


@dataclass
class OutboxItem:
    kind: str  # "upload" | "feedback" | "telemetry"
    target: str  # object name, or the feedback or devices collection
    document_id: str = ""
    values: dict = field(default_factory=dict)  # feedback or telemetry fields
    content_type: str = ""
    metadata: dict = field(default_factory=dict)  # upload custom metadata
    attempts: int = 0
    next_attempt_at: float = 0.0
    created_at: float = 0.0
    key: str = ""  # file stem, also the queue order


@dataclass(frozen=True)
class FlushReport:
    delivered: int
    rejected: int
    waiting: int
    last_error: str | None = None


class Outbox:
    def __init__(self, directory: str | Path, settings: Client, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        (self.directory / "rejected").mkdir(parents=True, exist_ok=True)
        self.settings, self.clock = settings, clock
        self._lock = threading.Lock()
        for orphan in self.directory.glob("*.bin"):  # bytes whose item was never committed
            if not orphan.with_suffix(".json").exists():
                orphan.unlink(missing_ok=True)

    def add_upload(self, object_name: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        item = self._new("upload", object_name, content_type=content_type, metadata=metadata)
        write_atomically(self.directory / f"{item.key}.bin", data)
        self._save(item)

    def add_feedback(self, collection: str, document_id: str, values: dict) -> None:
        self._save(self._new("feedback", collection, document_id=document_id, values=values))

    def add_telemetry(self, collection: str, document_id: str, values: dict,
                      merge: Callable[[dict, dict], dict] | None = None) -> None:
        """Queue a report that sets ``collection/document_id``; with one for that record still queued, the two
        become one (``merge(older, newer)``, or the newer alone) in the older one's place in the queue."""
        with self._lock:
            for item in self.pending():
                if item.kind == "telemetry" and (item.target, item.document_id) == (collection, document_id):
                    item.values = merge(item.values, values) if merge else values
                    self._save(item)
                    return
            self._save(self._new("telemetry", collection, document_id=document_id, values=values))

    def pending(self) -> list[OutboxItem]:
        items = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                items.append(OutboxItem(**json.loads(path.read_text())))
            except FileNotFoundError:
                continue  # delivered by a concurrent flush
        return items

    def rejected(self) -> list[dict]:
        return [json.loads(path.read_text()) for path in sorted((self.directory / "rejected").glob("*.json"))]

    def flush(self, transport: Transport) -> FlushReport:
        with self._lock:
            delivered = rejected = 0
            items = self.pending()
            for position, item in enumerate(items):
                if item.next_attempt_at > self.clock():
                    return FlushReport(delivered, rejected, len(items) - position, "backing off")
                try:
                    self._send_with_retries(transport, item)
                except Offline as exc:
                    item.attempts += 1
                    backoff = self.settings.backoff_initial_s * 2 ** item.attempts
                    item.next_attempt_at = self.clock() + min(self.settings.backoff_max_s, backoff)
                    self._save(item)
                    return FlushReport(delivered, rejected, len(items) - position, str(exc))
                except ClientError as exc:  # refused for good: keep it for inspection, out of the way
                    self._reject(item, str(exc))
                    rejected += 1
                    continue
                self._remove(item)
                delivered += 1
            return FlushReport(delivered, rejected, 0)

    # --- internals ----------------------------------------------------------------------

    def _new(self, kind: str, target: str, **fields) -> OutboxItem:
        now = self.clock()
        return OutboxItem(kind, target, created_at=now, key=f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", **fields)

    def _save(self, item: OutboxItem) -> None:
        write_atomically(self.directory / f"{item.key}.json", json.dumps(asdict(item)).encode())

    def _remove(self, item: OutboxItem) -> None:
        (self.directory / f"{item.key}.json").unlink(missing_ok=True)
        (self.directory / f"{item.key}.bin").unlink(missing_ok=True)

    def _reject(self, item: OutboxItem, reason: str) -> None:
        write_atomically(self.directory / "rejected" / f"{item.key}.json", json.dumps({**asdict(item), "reason": reason}).encode())
        self._remove(item)

    def _send_with_retries(self, transport: Transport, item: OutboxItem) -> None:
        for attempt in Retrying(
            stop=stop_after_attempt(self.settings.send_attempts),
            wait=wait_exponential(multiplier=self.settings.backoff_initial_s, max=self.settings.backoff_max_s),
            retry=retry_if_exception_type(Offline),
            reraise=True,
        ):
            with attempt:
                self._send(transport, item)

    def _send(self, transport: Transport, item: OutboxItem) -> None:
        if item.kind == "upload":
            data = (self.directory / f"{item.key}.bin").read_bytes()
            transport.upload(item.target, data, item.content_type, item.metadata)
        elif item.kind == "feedback":
            transport.create_document(item.target, item.document_id, item.values, server_time=(layout.FEEDBACK_SENT_AT,))
        elif item.kind == "telemetry":
            transport.set_document(item.target, item.document_id, item.values, server_time=(layout.DEVICE_LAST_SEEN,))
        else:
            raise ValueError(f"unknown outbox item kind {item.kind!r}")
