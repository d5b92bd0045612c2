"""The feedback document a client writes for one prediction, and its validation.

Security rules already restrict what a signed-in user may write; this check is
for everything else that can create a document (admin tools, a future rules
change) so a bad document is recorded with a reason instead of skewing counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, model_validator

from shared.errors import EdgeloopError
from shared.layout import UPLOADS_PREFIX


class InvalidFeedback(EdgeloopError, ValueError):
    """A feedback document that cannot be counted; ``str()`` names the problem."""


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    uid: str = Field(min_length=1, max_length=128)
    model_version: str = Field(pattern=r"^v[0-9]+$")
    predicted_label: str = Field(min_length=1, max_length=64)
    confidence: StrictFloat | StrictInt  # Firestore stores 1.0 as an integer when a client sends 1
    correct: bool
    true_label: str | None = Field(None, min_length=1, max_length=64)
    capture: str | None = Field(None, max_length=1024)  # the user's own upload this prediction was about
    # The server's time of the client's write (a server timestamp firestore.rules require of clients; admin tools
    # may omit it): the scheduler's reconciliation finds reports whose trigger was lost by it.
    sent_at: datetime | None = None
    # Set by on_feedback, never by a client (firestore.rules allow only the fields above): windowed counts use
    # received_at, decisions only reports with counted true.
    received_at: datetime | None = None
    counted: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Feedback":
        if not 0 <= self.confidence <= 1:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")
        if self.true_label is not None and self.correct != (self.true_label == self.predicted_label):
            # As firestore.rules: correct says whether the confirmed label is the predicted one.
            raise ValueError(f"correct={self.correct} contradicts true_label {self.true_label!r} vs "
                             f"predicted_label {self.predicted_label!r}")
        return self


def parse_feedback(model: str, value: dict[str, Any] | None, labels: frozenset[str] | None) -> Feedback:
    """The validated feedback, or InvalidFeedback naming every problem."""
    if value is None:
        raise InvalidFeedback("document has no fields")
    if labels is None:  # firestore.rules accept feedback only for a model that exists
        raise InvalidFeedback(f"model: {model!r} is not registered")
    try:
        feedback = Feedback.model_validate(value)
    except ValidationError as exc:
        raise InvalidFeedback("; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors())) from None
    for name in ("predicted_label", "true_label"):
        label = getattr(feedback, name)
        if label is not None and label not in labels:
            raise InvalidFeedback(f"{name}: {label!r} is not a label of model {model!r}")
    if feedback.capture is not None and not feedback.capture.startswith(f"{UPLOADS_PREFIX}/{model}/{feedback.uid}/"):
        raise InvalidFeedback(f"capture: {feedback.capture!r} is not one of this user's uploads for {model!r}")
    return feedback
