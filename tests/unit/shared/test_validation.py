"""Which uploads become training images: every rule rejects with its own reason."""

import io
import string

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from PIL import Image

from shared.config import ImageLimits
from shared.events import StorageObjectEvent
from shared.validation import Reason, Rejected, check_name, validate_image

LABELS = frozenset(str(i) for i in range(10))


def png(width=16, height=16, value=128) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def jpeg(width=16, height=16) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(out, format="JPEG")
    return out.getvalue()


def event(name="dataset/digits/3/a.png", content=None, content_type="image/png", metadata=None, size=None):
    content = png() if content is None else content
    return StorageObjectEvent(
        event_id="1", event_type="OBJECT_FINALIZE", bucket="b", name=name, generation=1, metageneration=1,
        size=len(content) if size is None else size, content_type=content_type, md5_hash=None, crc32c=None,
        metadata=metadata or {},
    ), content


def reason_of(obj, content, labels=LABELS, limits=ImageLimits()):
    with pytest.raises(Rejected) as caught:
        validate_image(obj, content, labels, limits)
    return caught.value.reason


def test_a_labelled_dataset_png_is_accepted_with_its_path_label():
    image = validate_image(*event(), LABELS)
    assert image.label == "3" and image.width == 16 and image.rgb.shape == (16, 16, 3)


def test_an_unconfirmed_capture_is_accepted_without_a_label_and_keeps_its_prediction():
    metadata = {"predicted_label": "7", "confidence": "0.31", "model_version": "v2"}
    image = validate_image(*event("uploads/digits/user-1/x.jpg", jpeg(), "image/jpeg", metadata), LABELS)
    assert (image.label, image.predicted_label, image.confidence, image.model_version) == (None, "7", 0.31, "v2")


@pytest.mark.parametrize("reason", ["low_confidence", "random_sample", "user_report"])
def test_a_capture_keeps_why_it_was_taken(reason):
    metadata = {"predicted_label": "7", "confidence": "0.91", "model_version": "v2", "capture_reason": reason}
    assert validate_image(*event("uploads/digits/user-1/x.png", metadata=metadata), LABELS).capture_reason == reason


def test_a_capture_from_an_app_that_does_not_say_why_is_accepted_without_a_reason():
    metadata = {"predicted_label": "7", "confidence": "0.91", "model_version": "v2"}
    assert validate_image(*event("uploads/digits/user-1/x.png", metadata=metadata), LABELS).capture_reason is None


def test_an_unknown_capture_reason_is_quarantined_saying_which_reasons_exist():
    obj, content = event("uploads/digits/user-1/x.png", metadata={"capture_reason": "sample"})
    with pytest.raises(Rejected) as caught:
        validate_image(obj, content, LABELS)
    assert caught.value.reason == Reason.BAD_METADATA
    assert caught.value.detail == "capture_reason 'sample' is not one of ['low_confidence', 'random_sample', 'user_report']"


def test_a_capture_confirmed_at_upload_carries_its_label():
    image = validate_image(*event("uploads/digits/user-1/x.png", metadata={"label": "5"}), LABELS)
    assert image.label == "5"


@pytest.mark.parametrize(
    "name",
    ["dataset/digits/3/../a.png", "dataset//3/a.png", "dataset/digits/3/", "uploads/digits/a.png", "elsewhere/a.png",
     "dataset/Digits/3/a.png", "dataset/digits/3/" + "a" * 200 + ".png", "uploads/digits/u\u202e1/a.png",
     "dataset/digits/3/.hidden.png", "dataset/digits/3/a b.png"],
)
def test_path_tricks_and_odd_segments_are_invalid_names(name):
    assert reason_of(*event(name)) == Reason.INVALID_NAME


@pytest.mark.parametrize(
    "kwargs, labels, reason",
    [
        ({"name": "dataset/cats/3/a.png"}, None, Reason.UNKNOWN_MODEL),
        ({"name": "dataset/digits/x/a.png"}, LABELS, Reason.UNKNOWN_LABEL),
        ({"name": "uploads/digits/u/a.png", "metadata": {"label": "11"}}, LABELS, Reason.UNKNOWN_LABEL),
        ({"content_type": "image/gif"}, LABELS, Reason.BAD_CONTENT_TYPE),
        ({"content_type": "image/jpeg"}, LABELS, Reason.BAD_CONTENT_TYPE),  # .png name declared as jpeg
        ({"content": b""}, LABELS, Reason.EMPTY),
        ({"content": b"GIF89a not really", "name": "dataset/digits/3/a.png"}, LABELS, Reason.NOT_AN_IMAGE),
        ({"content": png()[:40]}, LABELS, Reason.NOT_AN_IMAGE),  # cut inside the header: not identifiable
        ({"content": png()[:60]}, LABELS, Reason.TRUNCATED),  # the pixel data ends early
        ({"name": "dataset/digits/3/a.jpg", "content": jpeg()[:300], "content_type": "image/jpeg"}, LABELS,
         Reason.TRUNCATED),
        ({"name": "dataset/digits/3/a.jpg", "content": jpeg()[:100], "content_type": "image/jpeg"}, LABELS,
         Reason.TRUNCATED),
        ({"name": "dataset/digits/3/a.jpg", "content": png(), "content_type": "image/jpeg"}, LABELS, Reason.FORMAT_MISMATCH),
        ({"content": png(4, 4)}, LABELS, Reason.BAD_DIMENSIONS),
        ({"size": 123}, LABELS, Reason.SIZE_MISMATCH),
        ({"metadata": {"confidence": "1.5"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"confidence": "nan"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"confidence": "high"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"predicted_label": "cat"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"owner": "me"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"label": "4"}}, LABELS, Reason.BAD_METADATA),  # contradicts the path label 3
        ({"metadata": {"model_version": "v1/../x"}}, LABELS, Reason.BAD_METADATA),
        ({"metadata": {"model_version": "v" * 3000}}, LABELS, Reason.METADATA_TOO_LARGE),
    ],
)
def test_each_rule_rejects_with_its_reason(kwargs, labels, reason):
    assert reason_of(*event(**kwargs), labels=labels) == reason


@pytest.mark.parametrize(
    "content, detail",
    [
        (b"definitely not a png", "not a PNG or JPEG image (first bytes 646566696e697465)"),
        (png()[:40], "starts like a PNG but its header cannot be read (corrupt or cut short)"),
        (png()[:60], "PNG data ends early: image file is truncated"),
    ],
)
def test_a_rejection_detail_is_human_and_the_same_every_time(content, detail):
    details = set()
    for _ in range(2):  # Pillow's own message names a BytesIO object at a fresh address each time
        with pytest.raises(Rejected) as caught:
            validate_image(*event(content=content), LABELS)
        details.add(caught.value.detail)
    assert details == {detail}


def test_an_oversized_object_is_rejected_by_its_declared_size_without_its_bytes():
    obj, _ = event(size=10_000_000)
    assert reason_of(obj, b"", limits=ImageLimits(max_bytes=1_000_000)) == Reason.TOO_LARGE


def test_a_decompression_bomb_is_refused_from_its_header():
    bomb = png(3000, 3000, 0)  # tiny file, 9 Mpx
    assert len(bomb) < 100_000
    assert reason_of(*event(content=bomb), limits=ImageLimits(max_pixels=1_000_000)) == Reason.DECOMPRESSION_BOMB


SEGMENT = st.text(alphabet=string.printable + "\u00e9\u202e\u0000/.", max_size=40)


@hsettings(max_examples=300, deadline=None)
@given(st.lists(SEGMENT, min_size=1, max_size=6))
def test_any_name_is_either_well_formed_or_rejected_as_an_invalid_name(segments):
    name = "/".join(segments)
    try:
        ref = check_name(name)
    except Rejected as rejected:
        assert rejected.reason == Reason.INVALID_NAME and rejected.detail
        return
    assert ".." not in name.split("/") and all(segments) and ref.model in name


@hsettings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["label", "predicted_label", "confidence", "model_version", "capture_reason", "extra"]),
                       st.one_of(st.text(max_size=30), st.sampled_from(["low_confidence", "random_sample", "user_report"])),
                       max_size=4))
def test_any_metadata_is_accepted_only_when_every_value_is_valid(metadata):
    obj, content = event("uploads/digits/u1/a.png", metadata=metadata)
    try:
        image = validate_image(obj, content, LABELS)
    except Rejected as rejected:
        assert rejected.reason in (Reason.BAD_METADATA, Reason.UNKNOWN_LABEL)
        return
    assert "extra" not in metadata
    assert image.label in LABELS | {None} and (image.confidence is None or 0 <= image.confidence <= 1)
    assert image.capture_reason == metadata.get("capture_reason")
    assert image.capture_reason in (None, "low_confidence", "random_sample", "user_report")
