import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import layout
from shared.errors import InvalidObjectNameError

segment = st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda s: s not in (".", "..")
)


def test_storage_names_follow_the_bucket_layout():
    assert layout.dataset_object("digits", "3", "a.png") == "dataset/digits/3/a.png"
    assert layout.upload_object("digits", "uid1", "abc", "jpg") == "uploads/digits/uid1/abc.jpg"
    assert layout.model_object("digits", "v2") == "models/digits/v2/model.tflite"
    assert layout.quarantine_object("uploads/digits/u/x.png") == "quarantine/uploads/digits/u/x.png"


def test_firestore_paths_follow_the_document_layout():
    assert layout.model_doc("digits") == "models/digits"
    assert layout.version_doc("digits", "v2") == "models/digits/versions/v2"
    assert layout.image_doc("digits", "i") == "models/digits/images/i"
    assert layout.feedback_doc("digits", "f") == "models/digits/feedback/f"
    assert layout.run_doc("r1") == "runs/r1"


@given(model=segment, label=segment, filename=segment)
def test_dataset_names_parse_back_to_their_parts(model, label, filename):
    ref = layout.parse_object_name(layout.dataset_object(model, label, filename))
    assert (ref.kind, ref.model, ref.label, ref.filename) == (layout.ObjectKind.DATASET, model, label, filename)


@given(model=segment, uid=segment, upload_id=segment)
def test_upload_names_parse_back_to_their_parts(model, uid, upload_id):
    ref = layout.parse_object_name(layout.upload_object(model, uid, upload_id, "png"))
    assert (ref.kind, ref.model, ref.uid, ref.filename) == (layout.ObjectKind.UPLOAD, model, uid, f"{upload_id}.png")


@pytest.mark.parametrize(
    "name, reason",
    [
        ("", "empty object name"),
        ("dataset/digits/3", "expected dataset/{model}/{label}/{file}"),
        ("dataset/digits/3/a/b.png", "expected dataset/{model}/{label}/{file}"),
        ("dataset/digits/../a.png", "'..' segment"),
        ("uploads//u/a.png", "empty"),
        ("dataset/digits/./a.png", "'.'"),
        ("secrets/digits/3/a.png", "unknown prefix 'secrets'"),
        ("dataset/digits/3/" + "x" * 1100, "longer than 1024 bytes"),
    ],
)
def test_names_outside_the_layout_are_refused_with_a_reason(name, reason):
    with pytest.raises(InvalidObjectNameError, match=None) as error:
        layout.parse_object_name(name)
    assert reason in str(error.value)


def test_image_id_is_stable_per_generation_and_differs_across_generations():
    assert layout.image_id("dataset/d/3/a.png", 7) == layout.image_id("dataset/d/3/a.png", 7)
    assert layout.image_id("dataset/d/3/a.png", 7) != layout.image_id("dataset/d/3/a.png", 8)
    assert layout.image_id("dataset/d/3/a.png", 7) != layout.image_id("dataset/d/3/b.png", 7)
