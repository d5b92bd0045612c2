"""Which label a capture gets when users (and operators) have said different things about it.

Every label given to one capture is a ``Vote``: a user's confirmation through a
feedback report, the label an app put in the upload's own metadata, or an
operator's label from ``edgeloop label``. ``decide`` turns all of a capture's
votes into one ``Decision``; whatever order they arrived in, the same votes give
the same decision (no "last writer wins"):

1. An operator's label overrides every user: the most recent operator vote
   decides (an operator correcting their own label is the one case where the
   later label wins, by its time, not by its arrival).
2. Otherwise each user counts once: a user who named two different labels for
   the capture counts for neither. The label named by the most users wins if it
   has at least ``min_agreeing`` of them and strictly more than any other label.
3. Otherwise the capture stays unlabelled: ``disputed`` when users named
   different labels (a tie, or a self-contradicting user), ``pending`` when they
   agree but are fewer than ``min_agreeing``. Operators see both in
   ``edgeloop label``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping


class LabelSource(str, Enum):
    USER = "user"  # the capture's user: a confirming feedback report, or the upload's own ``label`` metadata
    OPERATOR = "operator"  # ``edgeloop label``: overrides users


class LabelStatus(str, Enum):
    CONFIRMED = "confirmed"  # users agree (rule 2)
    OPERATOR = "operator"  # an operator labelled it (rule 1)
    DISPUTED = "disputed"  # users disagree: unlabelled until more agree or an operator decides
    PENDING = "pending"  # users agree, but fewer than the minimum
    UNLABELLED = "unlabelled"  # nobody labelled it


OPERATOR_PREFIX = "operator:"


@dataclass(frozen=True)
class Vote:
    source: LabelSource
    who: str  # a Firebase uid, or the operator's name
    label: str
    at: str = ""  # ISO 8601 UTC time the label was given ("" if unknown: older records)

    @property
    def key(self) -> str:
        """One entry per (source, who, label): a redelivered report records the same vote once."""
        return hashlib.sha256(f"{self.source.value}\0{self.who}\0{self.label}".encode()).hexdigest()[:24]

    @property
    def actor(self) -> str:
        return f"{OPERATOR_PREFIX}{self.who}" if self.source is LabelSource.OPERATOR else self.who

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source.value, "who": self.who, "label": self.label, "at": self.at}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> "Vote":
        return cls(LabelSource(value["source"]), str(value["who"]), str(value["label"]), str(value.get("at") or ""))


@dataclass(frozen=True)
class Decision:
    label: str | None
    status: LabelStatus
    by: str | None  # who decided: ``operator:NAME``, or the agreeing users' uids joined by commas
    at: str | None  # when the deciding label was given (the latest agreeing vote)
    detail: str

    @property
    def labelled(self) -> bool:
        return self.label is not None


def decide(votes: Iterable[Vote], labels: frozenset[str] | None, min_agreeing: int) -> Decision:
    """The capture's label under the rule above; votes for a label the model does not have are ignored."""
    if min_agreeing < 1:
        raise ValueError(f"min_agreeing must be at least 1, got {min_agreeing}")
    valid = [vote for vote in votes if labels is None or vote.label in labels]
    operators = [vote for vote in valid if vote.source is LabelSource.OPERATOR]
    if operators:
        latest = max(operators, key=lambda vote: (vote.at, vote.who, vote.label))
        return Decision(latest.label, LabelStatus.OPERATOR, latest.actor, latest.at or None,
                        f"labelled {latest.label!r} by {latest.actor}")
    named: dict[str, set[str]] = {}
    for vote in valid:
        named.setdefault(vote.who, set()).add(vote.label)
    if not named:
        return Decision(None, LabelStatus.UNLABELLED, None, None, "no label given")
    contradicting = sorted(uid for uid, given in named.items() if len(given) > 1)
    counts = Counter(next(iter(given)) for given in named.values() if len(given) == 1)
    summary = ", ".join(f"{label}: {count}" for label, count in sorted(counts.items()))
    if contradicting:
        summary += f"{'; ' if summary else ''}{len(contradicting)} user(s) named two labels: {', '.join(contradicting)}"
    ranked = counts.most_common()
    if ranked:
        label, top = ranked[0]
        unique = len(ranked) == 1 or ranked[1][1] < top
        if unique and top >= min_agreeing:
            agreeing = sorted(uid for uid, given in named.items() if given == {label})
            at = max((vote.at for vote in valid if vote.who in agreeing and vote.label == label), default="")
            return Decision(label, LabelStatus.CONFIRMED, ",".join(agreeing), at or None,
                            f"{top} user(s) agree on {label!r} ({summary})")
    if len({label for given in named.values() for label in given}) > 1:
        return Decision(None, LabelStatus.DISPUTED, None, None, f"users disagree ({summary})")
    top = ranked[0][1] if ranked else 0
    return Decision(None, LabelStatus.PENDING, None, None, f"{top} of {min_agreeing} agreeing users ({summary})")


def votes_of(confirmation: Mapping[str, Any] | None) -> dict[str, Vote]:
    """The votes recorded in a confirmation document, by key (documents written before votes hold one user's label)."""
    if not confirmation:
        return {}
    votes = {key: Vote.from_dict(value) for key, value in (confirmation.get("votes") or {}).items()}
    if not votes and confirmation.get("true_label") and confirmation.get("uid"):
        legacy = Vote(LabelSource.USER, str(confirmation["uid"]), str(confirmation["true_label"]))
        votes[legacy.key] = legacy
    return votes
