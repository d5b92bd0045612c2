"""The dataset manifest: exactly which object generations a run trains on."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, strategies as st
from PIL import Image

from trainer_job.snapshot import EmptySnapshotError, Manifest, build_manifest, decode_rgb

LABELS = ["0", "1"]


def doc(name, generation=1, label="0", status="new", labelled=True):
    return {"object": name, "generation": generation, "label": label, "status": status, "labelled": labelled}


def test_only_live_labelled_images_of_known_labels_are_listed_in_a_stable_order():
    documents = [
        ("b", doc("dataset/m/1/b.png", label="1")),
        ("a", doc("dataset/m/0/a.png")),
        ("u", doc("uploads/m/u1/c.png", status="used")),  # confirmed capture, already trained on once
        ("s", doc("dataset/m/0/old.png", status="superseded")),
        ("n", doc("uploads/m/u1/d.png", label=None, labelled=False)),
        ("x", doc("dataset/m/cat/x.png", label="cat")),
    ]
    manifest = build_manifest("m", documents, LABELS)
    assert [e["image_id"] for e in manifest.entries] == ["a", "b", "u"]
    assert manifest.counts_per_label == {"0": 2, "1": 1}


@given(st.permutations(range(6)))
def test_the_manifest_and_its_digest_do_not_depend_on_query_order(order):
    documents = [(f"id{i}", doc(f"dataset/m/{i % 2}/{i}.png", generation=i + 1, label=str(i % 2))) for i in range(6)]
    shuffled = build_manifest("m", [documents[i] for i in order], LABELS)
    assert shuffled.sha256 == build_manifest("m", documents, LABELS).sha256


def test_a_manifest_round_trips_through_its_stored_json():
    manifest = build_manifest("m", [("a", doc("dataset/m/0/a.png")), ("b", doc("dataset/m/1/b.png", label="1"))], LABELS)
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest and again.summary("p")["sha256"] == manifest.sha256


def test_a_label_without_images_is_a_clear_error():
    with pytest.raises(EmptySnapshotError, match=r"no images for labels \['1'\]"):
        build_manifest("m", [("a", doc("dataset/m/0/a.png"))], LABELS)


def test_an_unknown_manifest_format_is_refused():
    with pytest.raises(ValueError, match="format"):
        Manifest.from_json(b'{"format": 99, "model": "m", "entries": []}')


@pytest.mark.parametrize("mode, size", [("L", (32, 32)), ("RGBA", (64, 48)), ("RGB", (8, 8))])
def test_any_accepted_image_becomes_uint8_rgb_of_the_model_size(mode, size):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    rgb = decode_rgb(buffer.getvalue(), 32)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8


def test_the_manifest_marks_which_entries_are_field_captures():
    documents = [("a", doc("dataset/m/0/a.png")), ("b", doc("uploads/m/alice/b.png")), ("c", doc("dataset/m/1/c.png", label="1"))]
    manifest = build_manifest("m", documents, LABELS)
    assert [e["object"] for e in manifest.entries] == ["dataset/m/0/a.png", "dataset/m/1/c.png", "uploads/m/alice/b.png"]
    assert manifest.field_mask().tolist() == [False, False, True]


def test_the_field_holdout_is_a_share_of_the_captures_only_and_the_same_in_every_run():
    captures = [(f"u{i}", doc(f"uploads/m/alice/{i:04d}.png", label=str(i % 2))) for i in range(400)]
    curated = [(f"d{i}", doc(f"dataset/m/{i % 2}/{i}.png", label=str(i % 2))) for i in range(100)]
    manifest = build_manifest("m", captures + curated, LABELS)
    held = manifest.field_holdout_mask(0.2)
    assert not (held & ~manifest.field_mask()).any()  # never a curated image
    assert 0.15 < held.sum() / 400 < 0.25
    # a later run sees more captures (and newer generations): every capture held out before still is
    later = build_manifest("m", captures + curated + [(f"v{i}", doc(f"uploads/m/bob/{i}.png")) for i in range(50)]
                           + [("u7b", doc("uploads/m/alice/0007.png", generation=2))], LABELS)
    before = {e["object"] for e, h in zip(manifest.entries, held) if h}
    after = {e["object"] for e, h in zip(later.entries, later.field_holdout_mask(0.2)) if h}
    assert before <= after and all(o.startswith("uploads/m/bob/") for o in after - before)
