"""``edgeloop label M``: an operator labels the captures users left unlabelled or disputed.

It lists the model's captures without a label (none given, users disagreeing, or fewer agreeing users than
``thresholds.min_agreeing_labellers``), writes a contact sheet of numbered thumbnails to look at, and applies
labels given as ``--set ID=label`` or in a CSV (``id,label`` rows). Each label is an operator's vote through
``shared.gcp.images.apply_confirmation``, the path a user's confirmation takes: recorded on the capture's
confirmation document with who gave it and when, and, by the rule in ``shared.labelling``, overriding the
users' labels. The image then counts as new labelled data, as a confirmed capture does.
"""

from __future__ import annotations

import csv
import getpass
import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import typer
from PIL import Image, ImageDraw, ImageFont
from rich.table import Table

from shared import layout

NUMBER_MAX_DIGITS = 5  # a token of at most this many digits is a number on the contact sheet, longer ones an id
MIN_ID_PREFIX = 6  # shortest id prefix accepted
SHOWN_ID_CHARS = 10  # of an image id, on the sheet and in the table
THUMBNAIL_PX = 128
CAPTION_PX = 44  # three lines of PIL's default font: number and id, why listed, prediction
CAPTION_LINE_PX = 14
SHEET_COLUMNS = 8
GCLOUD_TIMEOUT_S = 10.0
DEFAULT_LIMIT = 64


class LabelInputError(ValueError):
    """A label assignment that cannot be applied; the message names the token or CSV line and why."""


@dataclass(frozen=True)
class Capture:
    number: int  # its place on the contact sheet, from 1
    image_id: str
    object: str
    generation: int
    status: str  # unlabelled | disputed | pending (shared.labelling.LabelStatus)
    detail: str
    predicted_label: str | None
    confidence: float | None

    @property
    def short_id(self) -> str:
        return self.image_id[:SHOWN_ID_CHARS]


def to_capture(number: int, image_id: str, document: dict[str, Any]) -> Capture:
    return Capture(number, image_id, document["object"], int(document["generation"]),
                   document.get("label_status") or "unlabelled", document.get("label_detail") or "no label given",
                   document.get("predicted_label"), document.get("confidence"))


def parse_assignment(token: str) -> tuple[str, str]:
    """``ID=label`` (or ``NUMBER=label``) → (id or number, label)."""
    key, separator, label = token.partition("=")
    if not separator or not key.strip() or not label.strip():
        raise LabelInputError(f"{token!r}: expected ID=label, e.g. 3=star or a1b2c3d4e5=star")
    return key.strip(), label.strip()


def parse_csv(text: str) -> list[tuple[str, str]]:
    """Rows ``id,label`` (a header row ``id,label`` is skipped); every bad row is named with its line number."""
    pairs, problems = [], []
    for line, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or (line == 1 and [c.lower() for c in cells[:2]] == ["id", "label"]):
            continue
        if len(cells) != 2 or not all(cells):
            problems.append(f"line {line}: expected two cells id,label, got {row!r}")
            continue
        pairs.append((cells[0], cells[1]))
    if problems:
        raise LabelInputError("; ".join(problems))
    return pairs


def resolve(pairs: Sequence[tuple[str, str]], captures: Sequence[Capture], labels: frozenset[str],
            lookup: Callable[[str], Capture | None] = lambda token: None) -> list[tuple[Capture, str]]:
    """Each (token, label) to the capture it names; every problem (unknown label, no such capture, an ambiguous
    id, one capture given two labels) is collected and raised together, so nothing is applied from a bad batch.
    A token matching no listed capture is given to ``lookup``: a full image id or object name may name a capture
    that is already labelled (an operator correcting a user)."""
    by_number = {capture.number: capture for capture in captures}
    chosen: dict[str, tuple[Capture, str]] = {}
    problems = []
    for token, label in pairs:
        if label not in labels:
            problems.append(f"{token}={label}: unknown label {label!r}; the model's labels are {', '.join(sorted(labels))}")
            continue
        if token.isdigit() and len(token) <= NUMBER_MAX_DIGITS:
            found = [by_number[int(token)]] if int(token) in by_number else []
        elif len(token) < MIN_ID_PREFIX:
            problems.append(f"{token}={label}: an id needs at least {MIN_ID_PREFIX} characters")
            continue
        else:
            found = [c for c in captures if c.image_id.startswith(token) or c.object == token]
            if not found and (elsewhere := lookup(token)) is not None:
                found = [elsewhere]
        if len(found) != 1:
            problems.append(f"{token}={label}: " + ("no capture has this number or id (a labelled capture is named by its "
                                                    "full image id or object name)" if not found
                                                    else f"{len(found)} captures match this id; give more characters"))
            continue
        capture = found[0]
        if capture.image_id in chosen and chosen[capture.image_id][1] != label:
            problems.append(f"{token}={label}: capture {capture.short_id} is also given {chosen[capture.image_id][1]!r}")
            continue
        chosen[capture.image_id] = (capture, label)
    if problems:
        raise LabelInputError("\n".join(problems))
    return list(chosen.values())


def operator_identity(given: str | None) -> str:
    """``--by``, else the gcloud account (the one Application Default Credentials were made with, usually),
    else the local user name."""
    if given:
        return given
    if shutil.which("gcloud"):
        try:
            account = subprocess.run(["gcloud", "config", "get-value", "account"], capture_output=True, text=True,
                                     timeout=GCLOUD_TIMEOUT_S).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            account = ""
        if account and "@" in account:
            return account
    return getpass.getuser()


def contact_sheet(captures: Sequence[Capture], contents: Sequence[bytes], path: Path) -> Path:
    """A PNG of numbered thumbnails: number, id, prediction and why each is listed, under each image."""
    columns = min(SHEET_COLUMNS, max(1, len(captures)))
    rows = max(1, -(-len(captures) // columns))
    cell_h = THUMBNAIL_PX + CAPTION_PX
    sheet = Image.new("RGB", (columns * THUMBNAIL_PX, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (capture, content) in enumerate(zip(captures, contents)):
        x, y = (index % columns) * THUMBNAIL_PX, (index // columns) * cell_h
        try:
            with Image.open(io.BytesIO(content)) as image:
                thumbnail = image.convert("RGB")
                thumbnail.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        except (OSError, ValueError):
            thumbnail = Image.new("RGB", (THUMBNAIL_PX, THUMBNAIL_PX), "grey")
        sheet.paste(thumbnail, (x + (THUMBNAIL_PX - thumbnail.width) // 2, y + (THUMBNAIL_PX - thumbnail.height) // 2))
        guess = f"{capture.predicted_label} {capture.confidence:.0%}" if capture.predicted_label and capture.confidence is not None else "-"
        lines = ((f"{capture.number} · {capture.short_id}", "black"),
                 (capture.status, "firebrick" if capture.status == "disputed" else "dimgray"),
                 (f"predicted {guess}", "dimgray"))
        for row, (text, colour) in enumerate(lines):
            draw.text((x + 2, y + THUMBNAIL_PX + 1 + row * CAPTION_LINE_PX), text, fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


# --- against a project ---------------------------------------------------------------------------------------

def unlabelled_captures(model: str, settings, limit: int) -> list[Capture]:
    """The model's registered captures without a label, oldest first."""
    from google.cloud import firestore

    from shared.gcp.clients import firestore_client

    query = (firestore_client(settings.project_id).collection(layout.images_collection(model))
             .where(filter=firestore.FieldFilter("kind", "==", layout.ObjectKind.UPLOAD.value))
             .where(filter=firestore.FieldFilter("labelled", "==", False)))
    found = sorted(((s.id, s.to_dict()) for s in query.stream() if (s.to_dict() or {}).get("status") in ("new", "used")),
                   key=lambda item: (str(item[1].get("created")), item[0]))
    return [to_capture(number, image_id, document) for number, (image_id, document) in enumerate(found[:limit], 1)]


def find_capture(model: str, token: str, settings) -> Capture | None:
    """A registered capture named by its full image id or its object name (``uploads/...``), labelled or not."""
    from shared.gcp.clients import firestore_client

    db = firestore_client(settings.project_id)
    image_id = token
    if token.startswith(f"{layout.UPLOADS_PREFIX}/{model}/"):
        head = db.document(layout.object_head_doc(model, token)).get()
        if not head.exists:
            return None
        image_id = head.get("image_id")
    elif len(token) != len(layout.image_id("", 0)) or "/" in token:
        return None
    snapshot = db.document(layout.image_doc(model, image_id)).get()
    document = snapshot.to_dict() if snapshot.exists else None
    if not document or document.get("kind") != layout.ObjectKind.UPLOAD.value or document.get("status") not in ("new", "used"):
        return None
    status = document.get("label_status") or ("confirmed" if document.get("labelled") else "unlabelled")
    return to_capture(0, image_id, {**document, "label_status": status})


def download(captures: Iterable[Capture], settings) -> list[bytes]:
    from shared.gcp.clients import storage_client

    bucket = storage_client(settings.project_id).bucket(settings.bucket)
    return [bucket.blob(c.object, generation=c.generation).download_as_bytes() for c in captures]


def apply_labels(model: str, chosen: Sequence[tuple[Capture, str]], who: str, labels: frozenset[str], settings) -> int:
    """Each label as an operator's vote, through the path users' confirmations take; returns images labelled."""
    from shared.gcp import images, model_settings, retrain_requests
    from shared.gcp.clients import firestore_client

    settings = model_settings.for_model(model, settings)  # the model's own min_agreeing_labellers and new-data threshold
    db = firestore_client(settings.project_id)
    labelled = sum(images.apply_confirmation(db, model, capture.object, images.operator_vote(who, label), labels,
                                             settings.thresholds.min_agreeing_labellers) for capture, label in chosen)
    if labelled:  # as on_feedback does after a confirmation: the labels may complete a new-data run
        retrain_requests.new_data(model, settings)
    return labelled


def captures_table(captures: Sequence[Capture], title: str) -> Table:
    table = Table(title=title)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("predicted", no_wrap=True)
    table.add_column("why listed", overflow="fold")
    for c in captures:
        guess = f"{c.predicted_label} {c.confidence:.0%}" if c.predicted_label and c.confidence is not None else "-"
        table.add_row(str(c.number), c.short_id, guess, f"{c.status}: {c.detail}")
    return table


def command(
    model: str = typer.Argument(..., help="model id"),
    assignments: Optional[list[str]] = typer.Option(None, "--set", help="ID=label or NUMBER=label (the contact "
                                                    "sheet's number); repeatable"),
    csv_file: Optional[Path] = typer.Option(None, "--csv", help="a CSV of id,label rows (ids or sheet numbers)"),
    by: Optional[str] = typer.Option(None, "--by", help="who labels (default: the gcloud account, else the local user)"),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="contact sheet PNG to write (default: "
                                         "edgeloop-label-MODEL.png)"),
    limit: int = typer.Option(DEFAULT_LIMIT, min=1, help="captures listed and drawn"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="State directory of the local stack"),
) -> None:
    """List unlabelled and disputed captures with a contact sheet of numbered thumbnails, and label them
    (--set / --csv): an operator's label overrides users' and becomes training data as a confirmation does."""
    from edgeloop.target import console, fail, open_target
    from shared.config import get_settings
    from shared.gcp import model_registry

    open_target(directory)
    settings = get_settings()
    labels = model_registry.model_labels(model, settings)
    if labels is None:
        fail(LookupError(f"model {model!r} is not registered"))
    captures = unlabelled_captures(model, settings, limit)
    try:
        pairs = [parse_assignment(token) for token in assignments or []]
        if csv_file is not None:
            pairs += parse_csv(csv_file.read_text())
        chosen = resolve(pairs, captures, labels, lambda token: find_capture(model, token, settings))
    except (LabelInputError, OSError) as exc:
        fail(f"nothing labelled:\n{exc}")
    if chosen:
        who = operator_identity(by)
        labelled = apply_labels(model, chosen, who, labels, settings)
        table = Table(title=f"labelled by operator:{who}")
        for column in ("#", "id", "label"):
            table.add_column(column, no_wrap=True)
        for capture, label in chosen:
            table.add_row(str(capture.number), capture.short_id, label)
        console.print(table)
        console.print(f"{labelled} capture(s) now labelled training data; train with [bold]edgeloop retrain {model}[/]")
        return
    if not captures:
        console.print(f"{model}: no unlabelled or disputed captures")
        return
    path = contact_sheet(captures, download(captures, settings), sheet or Path(f"edgeloop-label-{model}.png"))
    console.print(captures_table(captures, f"{model}: {len(captures)} captures to label"))
    console.print(f"contact sheet: [bold]{path}[/]; label with --set NUMBER=label or --csv FILE "
                  f"(labels: {', '.join(sorted(labels))})")
