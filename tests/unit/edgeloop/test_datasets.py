"""The pure half of `edgeloop dataset import|export`: which files are uploaded, under which name, and why not."""

import io
from pathlib import Path

import pytest
from PIL import Image

from edgeloop.datasets import (
    ImportRow, NotAnImage, Verdict, digest_of, export_path, object_name, plan, prepare, scan,
)
from shared.config import ImageLimits

LIMITS = ImageLimits(max_side=256)
LABELS = frozenset({"circle", "square"})


def encoded(format: str, size=(40, 30), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=format)
    return buffer.getvalue()


def test_png_and_jpeg_go_as_they_are_named_by_their_content():
    for format, content_type, extension in (("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg")):
        data = encoded(format)
        prepared = prepare(data, LIMITS)
        assert (prepared.content, prepared.content_type, prepared.extension, prepared.note) == (data, content_type, extension, "")
        name = object_name("shapes", "circle", prepared)
        assert name == f"dataset/shapes/circle/{prepared.digest}.{extension}" and digest_of(name) == prepared.digest


def test_webp_becomes_png_with_the_same_pixels_size():
    prepared = prepare(encoded("WEBP"), LIMITS)
    assert (prepared.content_type, prepared.note) == ("image/png", "WEBP → PNG")
    assert Image.open(io.BytesIO(prepared.content)).size == (40, 30)


def test_an_image_larger_than_on_upload_accepts_is_scaled_to_fit():
    prepared = prepare(encoded("PNG", size=(1000, 100)), LIMITS)
    assert Image.open(io.BytesIO(prepared.content)).size == (256, 26)
    assert "scaled 1000×100 → 256×26" in prepared.note


@pytest.mark.parametrize("data", [b"just some text\n", b"", b"\x00" * 64])
def test_a_file_that_is_not_an_image_is_refused_with_what_it_is(data):
    with pytest.raises(NotAnImage, match="not an image"):
        prepare(data, LIMITS)


def test_scan_refuses_unknown_labels_loose_files_and_nested_folders(tmp_path: Path):
    for relative in ("circle/a.png", "square/b.jpg", "triangle/c.png", "readme.txt", "square/deeper/d.png"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    rows = {row.source: row for row in scan(tmp_path, LABELS)}
    assert rows["circle/a.png"].verdict is None and rows["square/b.jpg"].label == "square"
    assert rows["triangle/c.png"].verdict is Verdict.REFUSED
    assert rows["triangle/c.png"].reason == "unknown label 'triangle': the model's labels are circle, square"
    assert rows["readme.txt"].reason == "not in a label folder"
    assert "nested folder" in rows["square/deeper/d.png"].reason


def test_plan_uploads_each_image_once_and_never_under_two_labels():
    red, blue, green = encoded("PNG"), encoded("PNG", colour=(0, 0, 255)), encoded("PNG", colour=(0, 255, 0))
    files = {"circle/red.png": red, "circle/red-again.png": red, "square/red.png": red, "square/blue.png": blue,
             "square/green.png": green, "square/notes.png": b"not an image at all"}
    rows = [ImportRow(source, source.split("/")[0]) for source in sorted(files)]
    already = object_name("shapes", "square", prepare(green, LIMITS))
    to_upload = plan("shapes", rows, files.__getitem__, LIMITS, {already: ("md5", 1)})
    by_source = {row.source: row for row in rows}
    assert [row.source for row in to_upload] == ["circle/red-again.png", "square/blue.png"]  # the first of two copies
    assert by_source["square/green.png"].verdict is Verdict.DUPLICATE and by_source["square/green.png"].reason == "imported before"
    first, second = sorted(["circle/red.png", "circle/red-again.png"])
    assert by_source[second].verdict is Verdict.DUPLICATE and by_source[second].reason == f"same bytes as {first}"
    assert by_source["square/red.png"].verdict is Verdict.REFUSED
    assert by_source["square/red.png"].reason == f"the same image is already labelled 'circle' ({first})"
    assert by_source["square/notes.png"].verdict is Verdict.REFUSED and "not an image" in by_source["square/notes.png"].reason


def test_plan_refuses_bytes_the_dataset_already_holds_under_another_label():
    red = encoded("PNG")
    other = object_name("shapes", "circle", prepare(red, LIMITS))
    rows = [ImportRow("square/red.png", "square")]
    assert plan("shapes", rows, lambda _: red, LIMITS, {other: ("md5", 3)}) == []
    assert rows[0].reason == "the same image is already labelled 'circle' in the dataset"


def test_export_paths_follow_the_label_layout_and_never_collide(tmp_path: Path):
    taken: set[Path] = set()
    first = export_path(tmp_path, {"object": "dataset/m/circle/a.png", "label": "circle", "image_id": "1" * 32}, taken)
    second = export_path(tmp_path, {"object": "uploads/m/u1/a.png", "label": "circle", "image_id": "2" * 32}, taken)
    assert first == tmp_path / "circle" / "a.png" and second == tmp_path / "circle" / f"{'2' * 12}-a.png"
