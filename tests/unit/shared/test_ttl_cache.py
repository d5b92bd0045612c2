"""shared.ttl_cache: what a function instance keeps between events expires when its time is up, and never before."""

from __future__ import annotations

import threading

import pytest

from shared.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_its_time_is_up_then_read_again():
    clock, reads = Clock(), []
    cache: TtlCache[str] = TtlCache(clock=clock)

    def load() -> str:
        reads.append(clock.now)
        return f"v{len(reads)}"

    assert cache.get_or_load("m", load, ttl_s=30) == "v1"
    clock.now += 29.9
    assert cache.get_or_load("m", load, ttl_s=30) == "v1"
    clock.now += 0.1
    assert cache.get_or_load("m", load, ttl_s=30) == "v2"
    assert reads == [1000.0, 1030.0]


def test_a_ttl_of_zero_keeps_nothing():
    cache: TtlCache[int] = TtlCache(clock=Clock())
    cache.put("k", 1, ttl_s=0)
    assert cache.get("k") is None and len(cache) == 0


def test_a_negative_answer_is_not_kept_when_keep_says_so():
    clock, reads = Clock(), []
    cache: TtlCache[tuple] = TtlCache(clock=clock)

    def load() -> tuple:
        reads.append(1)
        return (None,) if len(reads) == 1 else ("labels",)

    assert cache.get_or_load("m", load, 30, keep=lambda v: v[0] is not None) == (None,)
    assert cache.get_or_load("m", load, 30, keep=lambda v: v[0] is not None) == ("labels",)  # read again at once
    assert cache.get_or_load("m", load, 30, keep=lambda v: v[0] is not None) == ("labels",)
    assert len(reads) == 2


def test_the_oldest_entries_go_first_beyond_the_bound_and_forget_drops_one():
    cache: TtlCache[int] = TtlCache(max_entries=2, clock=Clock())
    for key in "abc":
        cache.put(key, ord(key), 60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, ord("b"), ord("c"))
    cache.forget("b")
    assert cache.get("b") is None and len(cache) == 1
    with pytest.raises(ValueError):
        TtlCache(max_entries=0)


def test_threads_share_one_cache_safely():
    cache: TtlCache[int] = TtlCache(max_entries=64)
    errors = []

    def work(offset: int) -> None:
        try:
            for i in range(2000):
                key = (offset + i) % 100
                cache.put(key, i, 60)
                value = cache.get(key)
                assert value is None or isinstance(value, int)
                if i % 7 == 0:
                    cache.forget(key)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 13,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(cache) <= 64
