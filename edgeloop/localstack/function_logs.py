"""Reading the structured entries the functions write (shared.logs) from the stack's log files."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from edgeloop.localstack.state import StackState


def log_entries(state: StackState, function: str) -> list[dict[str, Any]]:
    """Every structured (JSON object) line in ``function``'s log, in order."""
    entries = []
    try:
        lines = state.log_file(function).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def wait_for_entry(
    state: StackState, function: str, matches: Callable[[dict[str, Any]], bool], timeout_s: float = 30.0
) -> dict[str, Any]:
    """The first entry of ``function`` that ``matches``; TimeoutError if none appears in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        for entry in log_entries(state, function):
            if matches(entry):
                return entry
        if time.monotonic() > deadline:
            raise TimeoutError(f"no matching log entry from {function} within {timeout_s:.0f}s")
        time.sleep(0.1)
