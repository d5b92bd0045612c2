"""What a cloud backend's word about a run's execution means for the run (pure).

The scheduler's tick asks Cloud Run or Vertex AI for the state of each running run's execution
(``shared.gcp.watch``); this module decides, from the run document and that state, whether the run
goes on or ends now as failed, with the backend's reason. A trainer that ends normally records its
own outcome, so the backend's word only matters for a run without one: an execution that failed or
was cancelled (killed, out of memory, timed out, cancelled by an operator), that no longer exists,
or that succeeded yet left the run unfinished for longer than a grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from shared.launch_rules import RunStatus


class Phase(str, Enum):
    RUNNING = "running"  # queued, starting, running, or being cancelled: wait
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GONE = "gone"  # the backend does not know the execution (deleted, or never created)


ENDED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED, Phase.GONE})


@dataclass(frozen=True)
class BackendState:
    """One backend answer about one execution."""

    execution: str  # how the backend names it, e.g. "Cloud Run execution projects/.../executions/x"
    phase: Phase
    reason: str = ""  # the backend's own words (condition message, job error)
    ended_at: float | None = None  # epoch seconds, when the backend says it ended

    def record(self, checked_at: float) -> dict[str, Any]:
        """How the run document keeps what the backend said."""
        return {"execution": self.execution, "phase": self.phase.value, "reason": self.reason,
                "ended_at": self.ended_at, "checked_at": checked_at}


@dataclass(frozen=True)
class Verdict:
    fail: bool
    error: str | None = None


KEEP = Verdict(False)


def judge(run: dict[str, Any], state: BackendState, now: float, outcome_grace_s: float) -> Verdict:
    """Keep the run, or fail it now with the backend's reason.

    A run that already has an outcome is never touched. An execution that succeeded is given
    ``outcome_grace_s`` after its end for the trainer's own outcome to arrive (it is written just before
    the process exits); after that the run failed without saying why, and its lock is freed.
    """
    if run.get("status") in RunStatus.FINAL or state.phase not in ENDED:
        return KEEP
    reason = f": {state.reason}" if state.reason else ""
    if state.phase is Phase.FAILED:
        return Verdict(True, f"{state.execution} failed{reason}")
    if state.phase is Phase.CANCELLED:
        return Verdict(True, f"{state.execution} was cancelled{reason}")
    if state.phase is Phase.GONE:
        return Verdict(True, f"{state.execution} no longer exists{reason}")
    waited = now - state.ended_at if state.ended_at is not None else outcome_grace_s
    if waited < outcome_grace_s:
        return KEEP
    return Verdict(True, f"{state.execution} succeeded {waited:.0f}s ago but the run recorded no outcome "
                         f"(published, rejected or failed){reason}")
