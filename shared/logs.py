"""Structured log lines that Cloud Logging parses (and log-based alerts match).

A JSON object on stdout with ``severity`` and ``message`` becomes a structured
entry in Cloud Logging; locally the same line lands in the function's log file.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any


def log(severity: str, event: str, message: str, **fields: Any) -> None:
    """Write one structured entry; ``event`` is the machine-readable kind (alerts match on it)."""
    entry = {
        "severity": severity,
        "event": event,
        "message": message,
        "time": datetime.now(timezone.utc).isoformat(),
        **fields,
    }
    sys.stdout.write(json.dumps(entry, default=str) + "\n")
    sys.stdout.flush()
