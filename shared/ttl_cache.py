"""A small thread-safe cache whose entries expire: what a function instance may keep between events.

Pure (no cloud client): the adapters decide what they keep and for how long (``config.Caching``). An entry is
served until ``ttl_s`` after it was stored, then read again; two threads missing at once may both read, and
either value is kept (both are equally fresh). A ``ttl_s`` of 0 keeps nothing: every call reads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Up to ``max_entries`` values, each served for ``ttl_s`` seconds after it was stored (oldest evicted first)."""

    def __init__(self, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._clock = clock

    def get(self, key: Hashable) -> V | None:
        """The value stored under ``key`` if it has not expired, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            return value

    def put(self, key: Hashable, value: V, ttl_s: float) -> None:
        """Keep ``value`` for ``ttl_s`` seconds (not at all for 0)."""
        if ttl_s <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (self._clock() + ttl_s, value)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def get_or_load(self, key: Hashable, load: Callable[[], V], ttl_s: float,
                    keep: Callable[[V], bool] = lambda _: True) -> V:
        """The cached value, or ``load()``'s (kept only when ``keep`` says so: e.g. not a negative answer)."""
        value = self.get(key)
        if value is not None:
            return value
        value = load()  # outside the lock: a slow read must not hold other keys' readers
        if value is not None and keep(value):
            self.put(key, value, ttl_s)
        return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
