"""Adapter: the per-day capture budget (``capture.BudgetDay``), kept on disk across restarts."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from client_sdk.capture import BudgetDay
from client_sdk.store import write_atomically
from shared.config import Client


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


class CaptureBudget:
    def __init__(self, path: str | Path, settings: Client, today: Callable[[], date] = utc_today):
        self.path, self.settings, self.today = Path(path), settings, today
        self._lock = threading.Lock()
        try:
            self._day = BudgetDay(**json.loads(self.path.read_text()))
        except (FileNotFoundError, TypeError, ValueError):
            self._day = BudgetDay(today().isoformat())

    @property
    def spent(self) -> BudgetDay:
        return self._day

    def try_spend(self, size: int, reason: str) -> bool:
        """Record one capture of ``size`` bytes taken for ``reason`` if today's budget allows it."""
        with self._lock:
            after = self._day.spend(self.today(), size, self.settings, reason)
            if after is None:
                return False
            write_atomically(self.path, json.dumps(after.__dict__).encode())
            self._day = after
            return True
