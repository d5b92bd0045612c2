"""Fault injection for handlers running in the test process against the real emulators.

``writes_of`` records every write a handler makes (Firestore commits and batch
writes, Pub/Sub publishes, Storage copies, patches and deletes), in order.
``crash_at`` makes the k-th of those writes die just before or just after it
reaches the emulator, as a killed or raising instance would: everything before
it is durable, nothing after it happens. The real clients do the writing; only
the moment of death is injected.

``paused`` freezes a function's real processes (SIGSTOP) so the stack's own
delivery of an event waits while the test plays the failed attempt and its
retry; on release that delivery arrives late, as one more duplicate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Iterator, Literal

from google.cloud import pubsub_v1, storage
from google.cloud.firestore_v1.services.firestore import client as firestore_gapic

When = Literal["before", "after"]


class InjectedCrash(RuntimeError):
    """The handler 'died' here; raised out of the handler like any other failure."""


# (owner, method name, label): every call that changes state in a service.
WRITE_METHODS = (
    (firestore_gapic.FirestoreClient, "commit", "firestore.commit"),
    (firestore_gapic.FirestoreClient, "batch_write", "firestore.batch_write"),
    (pubsub_v1.PublisherClient, "publish", "pubsub.publish"),
    (storage.Bucket, "copy_blob", "storage.copy"),
    (storage.Blob, "patch", "storage.patch"),
    (storage.Bucket, "delete_blob", "storage.delete"),
)


@dataclass
class _Plan:
    crash_at: int | None = None  # 1-based ordinal of the write to die at
    when: When = "before"
    seen: list[str] = field(default_factory=list)
    # Only the handler's own thread: background threads of earlier work (a trainer's reaper) are not its writes.
    thread: int = field(default_factory=threading.get_ident)


def _settle(result):
    """A publish is only done once the service acknowledged it."""
    return result.result(timeout=30) if hasattr(result, "result") and callable(result.result) else result


@contextlib.contextmanager
def _intercepted(plan: _Plan) -> Iterator[_Plan]:
    originals = []
    for owner, name, label in WRITE_METHODS:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def wrapper(*args, __original=original, __label=label, **kwargs):
            if threading.get_ident() != plan.thread:
                return __original(*args, **kwargs)
            plan.seen.append(__label)
            ordinal = len(plan.seen)
            if ordinal == plan.crash_at and plan.when == "before":
                raise InjectedCrash(f"died before write {ordinal} ({__label})")
            result = __original(*args, **kwargs)
            if ordinal == plan.crash_at:
                _settle(result)
                raise InjectedCrash(f"died after write {ordinal} ({__label})")
            return result

        setattr(owner, name, wrapper)
    try:
        yield plan
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@contextlib.contextmanager
def writes_of() -> Iterator[list[str]]:
    """The labels of the writes made inside the block, in order."""
    plan = _Plan()
    with _intercepted(plan):
        yield plan.seen


@contextlib.contextmanager
def crash_at(ordinal: int, when: When) -> Iterator[list[str]]:
    """Writes before ``ordinal`` happen; the handler dies before or after that one."""
    plan = _Plan(crash_at=ordinal, when=when)
    with _intercepted(plan):
        yield plan.seen


def fault_points(writes: list[str]) -> list[tuple[int, When]]:
    """Every place a handler with these writes can die: before and after each write."""
    return [(ordinal, when) for ordinal in range(1, len(writes) + 1) for when in ("before", "after")]


@contextlib.contextmanager
def paused(stack, function: str) -> Iterator[None]:
    """Freeze the function's real process; its deliveries wait (or time out and are redelivered) until the end."""
    group = stack.pids[function]  # the stack starts each component in its own process group (server + workers)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)
