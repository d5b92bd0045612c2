"""When an instance runs the new-data count query again: not after every upload, yet never later than needed.

The count query decides a new-data retrain, and it was the largest stage of on_upload's hot path. An
instance keeps, per cause, the last count it ran, when, and how many images it registered toward that
cause since. It counts again when the count it knows of could have reached the threshold (the last count
plus its own registrations since), or when the last count is ``interval_s`` old (other instances register
images too). With one instance the crossing is therefore counted at the very upload that makes it, as
before; with several, at most ``interval_s`` later while uploads go on, and at the scheduler's next tick
(which counts for every model) when they stop. Pure: the adapter (``shared.gcp.retrain_requests``) runs the
query and keeps one pacer per instance.
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
    count: int
    registered_since: int = 0


class CountPacer:
    """Thread-safe: the threads of one instance share what it counted (at most ``max_entries`` causes)."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._last: OrderedDict[Hashable, _LastCount] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._clock = clock

    def should_count(self, cause: Hashable, threshold: int, interval_s: float) -> bool:
        """One image was registered toward ``cause``: must the count run now? (``interval_s`` 0: always.)"""
        with self._lock:
            last = self._last.get(cause)
            if last is None or interval_s <= 0:
                return True
            last.registered_since += 1
            if self._clock() - last.at >= interval_s:
                return True
            return last.count + last.registered_since >= threshold

    def counted(self, cause: Hashable, count: int) -> None:
        """The count query for ``cause`` returned ``count`` (the images registered so far are in it)."""
        with self._lock:
            self._last.pop(cause, None)
            self._last[cause] = _LastCount(self._clock(), count)
            while len(self._last) > self._max_entries:
                self._last.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._last.clear()
