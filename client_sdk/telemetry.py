"""Adapter: the device's telemetry — predictions and latency per period, reported through the outbox.

``classify`` records each inference here (in memory, constant time); ``flush``
closes a period that has lasted ``telemetry_period_s`` and queues its report
as one outbox item, sent with the captures and feedback. A report is the
device's own record ``models/{model}/devices/{uid}`` (shared/telemetry.py):
model version in use, SDK version, device class, prediction count, latency
p50/p95 and the latency histogram they come from. At most
``daily_telemetry_bytes`` of reports are queued per UTC day; a period over the
budget is not dropped but stays open, so its numbers reach the next report.
Two reports still queued (the device was offline) merge into one, so an
offline week costs one write when the network returns.

The open period is saved with every flush (one small file, written
atomically), so a restarted app continues it; inferences after the last flush
of a killed app are lost, which telemetry can afford.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Callable

from client_sdk.budget import utc_today
from client_sdk.outbox import Outbox
from client_sdk.store import write_atomically
from shared import layout
from shared.config import Client
from shared.registry import SDK_CONTRACT_VERSION
from shared.telemetry import PeriodStats, merge_documents


def _package_version() -> str:
    try:
        return metadata.version("edgeloop")
    except metadata.PackageNotFoundError:  # vendored into an app without its metadata
        return "0"


# What reports say the device runs: the library's version and the model contract it implements.
SDK_VERSION = f"py-{_package_version()}+c{SDK_CONTRACT_VERSION}"


class Telemetry:
    def __init__(self, model: str, uid: str, path: str | Path, settings: Client, device_class: str = "",
                 clock: Callable[[], float] = time.time, today: Callable[[], date] = utc_today):
        self.model, self.uid, self.path, self.settings = model, uid, Path(path), settings
        self.device_class, self.clock, self.today = device_class, clock, today
        self._lock = threading.Lock()
        self._period: PeriodStats | None = None
        self._budget_day, self._budget_spent = today().isoformat(), 0
        try:
            saved = json.loads(self.path.read_text())
            self._period = PeriodStats(**saved["period"]) if saved.get("period") else None
            self._budget_day, self._budget_spent = saved["budget_day"], int(saved["budget_spent"])
        except (FileNotFoundError, KeyError, TypeError, ValueError):
            pass

    @property
    def period(self) -> PeriodStats | None:
        return self._period

    def record(self, model_version: str, latency_ms: float) -> None:
        """One inference by ``model_version`` that took ``latency_ms``. A new version starts a new period:
        the record says what the device runs now."""
        with self._lock:
            if self._period is None or self._period.model_version != model_version:
                self._period = PeriodStats(model_version, self.clock())
            self._period.add(latency_ms)

    def budget_left(self) -> int:
        with self._lock:
            return self._left()

    def queue(self, outbox: Outbox, force: bool = False) -> bool:
        """Queue the open period's report if it has lasted a period (or ``force``) and today's budget allows
        it; True if queued. The open period is saved either way."""
        with self._lock:
            try:
                period, now = self._period, self.clock()
                if period is None or (not force and now - period.start < self.settings.telemetry_period_s):
                    return False
                values = period.document(SDK_VERSION, self.device_class, now)
                size = len(json.dumps(values, separators=(",", ":")).encode())
                if size > self._left():
                    return False  # over today's budget: the period stays open and reaches the next report
                outbox.add_telemetry(layout.devices_collection(self.model), self.uid, values, merge_documents)
                self._budget_spent += size
                self._period = None
                return True
            finally:
                self._save()

    # --- internals ----------------------------------------------------------------------

    def _left(self) -> int:
        today = self.today().isoformat()
        if today != self._budget_day:
            self._budget_day, self._budget_spent = today, 0
        return max(0, self.settings.daily_telemetry_bytes - self._budget_spent)

    def _save(self) -> None:
        state = {"period": asdict(self._period) if self._period else None,
                 "budget_day": self._budget_day, "budget_spent": self._budget_spent}
        write_atomically(self.path, json.dumps(state).encode())
