"""Which registrations on_upload may commit without a transaction (shared.gcp.images.register's one-commit path).

The integration tests (tests/integration/test_functions.py, test_concurrency.py, test_own_images.py) run both
paths against the emulator; here, the rule that chooses between them."""

from __future__ import annotations

import numpy as np
import pytest

from shared.events import StorageObjectEvent
from shared.gcp.images import first_generation_without_votes
from shared.validation import AcceptedImage, check_name


def event(name: str, overwrote: int | None) -> StorageObjectEvent:
    return StorageObjectEvent(event_id="e", event_type="OBJECT_FINALIZE", bucket="b", name=name, generation=7,
                              metageneration=1, size=10, content_type="image/png", md5_hash=None, crc32c=None,
                              overwrote_generation=overwrote)


def accepted(name: str) -> AcceptedImage:
    return AcceptedImage(ref=check_name(name), label="3", predicted_label=None, confidence=None, model_version=None,
                         width=8, height=8, rgb=np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(("name", "overwrote", "one_commit"), [
    ("dataset/m/3/a.png", None, True),  # a new dataset object: nothing to supersede, nobody votes on it
    ("dataset/m/3/a.png", 5, False),  # an overwrite retires the generation it replaced: the transaction
    ("uploads/m/u1/a.png", None, False),  # a capture's votes may have come first: read with the write
    ("uploads/m/u1/a.png", 5, False),
])
def test_only_a_first_generation_nobody_votes_on_is_committed_without_a_transaction(name, overwrote, one_commit):
    assert first_generation_without_votes(event(name, overwrote), accepted(name)) is one_commit
