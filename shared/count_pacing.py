"""When an instance runs a deciding count query again: not after every event, yet never later than needed.

Two count queries decide a retrain: the new-data count (on_upload, after each labelled image) and a
version's windowed success-rate sum (on_feedback, after each counted report). Run after every event, each
was the largest stage of its function's hot path. An instance keeps, per key, when it last counted, the
*slack* that count left (how many more events, each the worst case for the decision, it takes before the
decision could change: for the new-data count, the threshold minus the count) and how many events it
handled toward that key since. It counts again when those events could have used the slack up, or when
the last count is ``interval_s`` old (other instances handle events too). With one instance the decision
is therefore made at the very event that makes it possible, as before; with several, at most
``interval_s`` later while events go on, and at the scheduler's next tick (which counts for every model)
when they stop. Pure: the adapters (``shared.gcp.retrain_requests``, ``shared.gcp.feedback``) run the
queries and keep one pacer each per instance.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable


@dataclass
class _LastCount:
    at: float
    slack: float
    events_since: int = 0


class CountPacer:
    """Thread-safe: the threads of one instance share what it counted (at most ``max_entries`` keys)."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._last: OrderedDict[Hashable, _LastCount] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._clock = clock

    def should_count(self, key: Hashable, interval_s: float) -> bool:
        """One more event toward ``key``: must the count run now? (``interval_s`` 0: always.)"""
        with self._lock:
            last = self._last.get(key)
            if last is None or interval_s <= 0:
                return True
            last.events_since += 1
            if self._clock() - last.at >= interval_s:
                return True
            return last.events_since >= last.slack

    def counted(self, key: Hashable, slack: float) -> None:
        """The count for ``key`` ran (the events so far are in it): ``slack`` more events could not change
        its decision (``math.inf``: none could, until the count is ``interval_s`` old)."""
        with self._lock:
            self._last.pop(key, None)
            self._last[key] = _LastCount(self._clock(), slack)
            while len(self._last) > self._max_entries:
                self._last.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._last.clear()
