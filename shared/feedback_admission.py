"""Whose feedback counts: at most a few reports per user, per version, per window.

Any signed-in user (anonymous sign-in is free) can write reports, so a
decision must not hinge on how much one user writes. Each report is either
*counted* (it enters the success rate and the canary tallies) or not: a user
has at most ``cap`` counted reports on one version in any stretch of
``window`` (``thresholds.feedback_per_user_cap`` per
``thresholds.success_window_s``); the others are kept, and still label the
user's captures, but count toward nothing. Decisions also need a minimum
number of distinct users (``shared.lifecycle``, ``shared.retrain``), so a
handful of accounts cannot decide anything on their own.

``admit`` is the whole rule. ``shared.gcp.tallies.admit_report`` applies it
in one transaction with the user's per-version document, which keeps the
times of the user's newest counted reports (at most ``cap``): keeping more
would change nothing, because a report is refused exactly when ``cap`` counted
reports lie within ``window`` before it, and if the newest ``cap`` do not,
no older one does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable


@dataclass(frozen=True)
class Admission:
    counted: bool
    admitted: tuple[datetime, ...]  # the user's counted report times to keep, oldest first, at most cap

    @property
    def last(self) -> datetime | None:
        """The user's newest counted report (what distinct-user counts query)."""
        return self.admitted[-1] if self.admitted else None


def admit(admitted: Iterable[datetime], at: datetime, cap: int, window: timedelta) -> Admission:
    """Whether a report received ``at`` counts, given the times of the user's counted reports on its version.

    Counted when fewer than ``cap`` of them are later than ``at - window`` (reports handled out of
    order included: any stretch of ``window`` then holds at most ``cap`` counted reports).
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    kept = sorted(admitted)
    recent = sum(1 for time in kept if time > at - window)
    if recent >= cap:
        return Admission(False, tuple(kept[-cap:]))
    return Admission(True, tuple(sorted([*kept, at])[-cap:]))
