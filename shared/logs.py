"""Structured log lines that Cloud Logging parses (and log-based alerts match).

A JSON object on stdout with ``severity`` and ``message`` becomes a structured
entry in Cloud Logging; locally the same line lands in the function's log file.
A command line that runs product code in its own process (the ``edgeloop`` CLI)
sends the lines to a file instead (``to_file``), so they never interleave with
what the command prints.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

_sink: TextIO | None = None  # None: this process's stdout (a function's, a trainer's)


def log(severity: str, event: str, message: str, **fields: Any) -> None:
    """Write one structured entry; ``event`` is the machine-readable kind (alerts match on it)."""
    entry = {
        "severity": severity,
        "event": event,
        "message": message,
        "time": datetime.now(timezone.utc).isoformat(),
        **fields,
    }
    stream = _sink or sys.stdout
    stream.write(json.dumps(entry, default=str) + "\n")
    stream.flush()


@contextmanager
def to_file(path: Path) -> Iterator[Path]:
    """Within the block, every entry is appended to ``path`` (its directory created) instead of stdout."""
    global _sink
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = _sink
    with path.open("a", encoding="utf-8") as stream:
        _sink = stream
        try:
            yield path
        finally:
            _sink = previous
