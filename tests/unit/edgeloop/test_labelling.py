"""`edgeloop label`: assignments from the command line and CSV, resolved against the listed captures."""

import io
from pathlib import Path

import pytest
from PIL import Image

from edgeloop.labelling import Capture, LabelInputError, contact_sheet, parse_assignment, parse_csv, resolve

LABELS = frozenset({"circle", "square", "star"})
CAPTURES = [
    Capture(1, "ab" * 3 + "c" * 26, "uploads/m/u1/x.png", 1, "unlabelled", "no label given", "star", 0.4),
    Capture(2, "ab" * 2 + "d" * 28, "uploads/m/u2/y.png", 1, "disputed", "users disagree", "circle", 0.3),
]


def test_assignments_name_a_capture_by_its_sheet_number_or_id_prefix():
    chosen = resolve([parse_assignment("1=circle"), parse_assignment("ababdd=square")], CAPTURES, LABELS)
    assert [(c.number, label) for c, label in chosen] == [(1, "circle"), (2, "square")]


def test_every_bad_assignment_is_named_and_none_applied():
    with pytest.raises(LabelInputError) as refused:
        resolve([("1", "triangle"), ("9", "star"), ("abab", "star"), ("ababab", "star"), ("abababcc", "circle")],
                CAPTURES, LABELS)
    message = str(refused.value)
    assert "1=triangle: unknown label 'triangle'; the model's labels are circle, square, star" in message
    assert "9=star: no capture has this number or id (a labelled capture is named by its full image id" in message
    assert "abab=star: an id needs at least 6 characters" in message
    assert "abababcc=circle: capture abababcccc is also given 'star'" in message


def test_an_ambiguous_id_prefix_is_refused():
    twins = [Capture(3, "ee" * 3 + "1" * 26, "uploads/m/u3/o.png", 1, "unlabelled", "", None, None),
             Capture(4, "ee" * 3 + "2" * 26, "uploads/m/u3/p.png", 1, "unlabelled", "", None, None)]
    with pytest.raises(LabelInputError, match="2 captures match this id; give more characters"):
        resolve([("eeeeee", "star")], twins, LABELS)


@pytest.mark.parametrize("token", ["1", "=star", "1=", "star"])
def test_a_malformed_assignment_says_what_is_expected(token):
    with pytest.raises(LabelInputError, match="expected ID=label"):
        parse_assignment(token)


def test_csv_rows_with_a_header_and_every_bad_row_named_by_line():
    assert parse_csv("id,label\n1,circle\n\na1b2ff,square\n") == [("1", "circle"), ("a1b2ff", "square")]
    with pytest.raises(LabelInputError) as refused:
        parse_csv("1,circle\n2\n3,star,extra\n4,\n")
    assert str(refused.value) == ("line 2: expected two cells id,label, got ['2']; "
                                  "line 3: expected two cells id,label, got ['3', 'star', 'extra']; "
                                  "line 4: expected two cells id,label, got ['4', '']")


def test_the_contact_sheet_has_one_numbered_cell_per_capture(tmp_path: Path):
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (0, 200, 0)).save(buffer, format="PNG")
    path = contact_sheet(CAPTURES, [buffer.getvalue(), b"unreadable"], tmp_path / "sheet.png")
    sheet = Image.open(path)
    assert sheet.size == (2 * 128, 128 + 44)
    assert sheet.getpixel((64, 64)) == (0, 200, 0) and sheet.getpixel((128 + 64, 64)) == (128, 128, 128)


def test_a_token_no_listed_capture_matches_is_looked_up_for_an_already_labelled_capture():
    labelled = Capture(0, "f" * 32, "uploads/m/u1/z.png", 1, "confirmed", "1 user(s) agree", "star", 0.9)
    chosen = resolve([("uploads/m/u1/z.png", "circle")], CAPTURES, LABELS,
                     lambda token: labelled if token == labelled.object else None)
    assert chosen == [(labelled, "circle")]
