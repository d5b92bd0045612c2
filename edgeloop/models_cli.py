"""``edgeloop model create|list|show``: define a model (its labels, input size and per-model settings) and read it back.

The rules are ``shared.model_settings``'s; the documents ``shared.gcp.model_settings`` writes and reads, on
the local stack or a deployed project alike (``--project``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from edgeloop.target import cloud_errors, console, fail, open_target
from shared.config import get_settings
from shared.model_settings import ModelDefinitionError, check_labels, labels_from_text, parse_assignments, settings_rows

app = typer.Typer(help="Define models: labels, image size and per-model settings.", no_args_is_help=True)

StackDir = typer.Option(None, "--dir", help="State directory of the local stack (default: EDGELOOP_STACK_DIR or .edgeloop)")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def labels_from_folder(folder: Path) -> tuple[str, ...]:
    """The labels of a folder of images: its sub-folders' names, sorted, each holding at least one image."""
    if not folder.is_dir():
        raise ModelDefinitionError(f"--from-folder {folder}: not a directory")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise ModelDefinitionError(f"--from-folder {folder}: no sub-folders; put each label's images in DIR/LABEL/")
    empty = [p.name for p in subfolders
             if not any(f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())]
    if empty:
        raise ModelDefinitionError(f"--from-folder {folder}: no .png or .jpg image in {', '.join(empty)}")
    return check_labels(p.name for p in subfolders)


def _print_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def _overrides_text(overrides: dict, separator: str = ", ") -> str:
    return separator.join(f"{group}.{name}={json.dumps(value)}" for group, fields in overrides.items()
                     for name, value in fields.items()) or "-"


def _training_fields(backbone: str | None, weights: str | None, image_size: int | None) -> dict:
    """The backbone and weights to store, as the trainer's own configuration validates them (its defaults included)."""
    if backbone is None:
        if weights is not None:
            raise ModelDefinitionError("--weights goes with --backbone: name the backbone they are for")
        return {}
    from pydantic import ValidationError

    from trainer_job import TrainConfig

    given = {"backbone": backbone, **({"weights": weights} if weights is not None else {}),
             **({"image_size": image_size} if image_size is not None else {})}
    try:
        config = TrainConfig.model_validate(given)
    except (ValidationError, ValueError) as exc:
        problems = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        raise ModelDefinitionError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in problems)) from None
    return {"backbone": config.backbone, "weights": config.weights}


@app.command()
@cloud_errors("model create")
def create(
    name: str = typer.Argument(..., help="model id: lowercase letters, digits, '_' and '-'"),
    labels: Optional[str] = typer.Option(None, "--labels", help="its labels, comma-separated, in class order: a,b,c"),
    from_folder: Optional[Path] = typer.Option(
        None, "--from-folder", metavar="DIR", help="take the labels from DIR's sub-folders (sorted), one per label"),
    image_size: Optional[int] = typer.Option(
        None, "--image-size", help="square input side in pixels the trainer trains at (default 32; an existing "
                                   "model keeps its own)"),
    backbone: Optional[str] = typer.Option(
        None, "--backbone", help="what the trainer fine-tunes: cnn (the small CNN, the default) or mobilenet_v3_small "
                                 "(inputs of 32 px or more)"),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="with --backbone: imagenet (pretrained, mobilenet's default; the trainer needs them "
                                "in its image or reachable) or none"),
    assignments: Optional[List[str]] = typer.Option(
        None, "--set", metavar="GROUP.FIELD=VALUE", help=(
            "a per-model setting of thresholds, gate, release or client (capture defaults), e.g. "
            "thresholds.new_data_images=50; repeat for more; values are JSON or text")),
    as_json: bool = typer.Option(False, "--json", help="print {model, labels, image_size, production, canary, "
                                                      "canary_percent, overrides, created, changed}"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Create a model (idempotent: an existing model with the same labels is kept, and the image size and settings
    given are applied); refused, with the reason, for an invalid name, label or setting, or other labels."""
    from shared.gcp import model_settings

    try:
        if (labels is None) == (from_folder is None):
            raise ModelDefinitionError("give the labels with --labels a,b,c or --from-folder DIR (one of them)")
        chosen = labels_from_text(labels) if labels is not None else labels_from_folder(from_folder)
        overrides = parse_assignments(assignments or [])
        training = _training_fields(backbone, weights, image_size)
        open_target(directory)
        outcome = model_settings.create_model(name, chosen, get_settings(), image_size, overrides, training)
    except ModelDefinitionError as exc:
        fail(escape(str(exc)), stderr=True)
    info = outcome.info
    if as_json:
        _print_json({**info.json(), "created": outcome.created, "changed": outcome.changed})
        return
    if outcome.created:
        verb = "[bold green]created[/]"
    else:
        verb = f"[bold]updated[/] ({', '.join(outcome.changed)})" if outcome.changed else "[bold]unchanged[/] (exists with these labels)"
    console.print(f"{verb} model {info.model}: {len(info.labels)} labels {escape(', '.join(info.labels))} · image size "
                  f"{info.image_size} · overrides {escape(_overrides_text(info.overrides))}")


@app.command("list")
@cloud_errors("model list")
def list_models(
    as_json: bool = typer.Option(False, "--json", help="print {models: [{model, labels, image_size, production, canary, "
                                                      "canary_percent, overrides}]}"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Every model: labels, image size, what it serves (production, and the canary with its share) and its overrides."""
    from shared.gcp import model_settings

    open_target(directory)
    infos = model_settings.load_models(get_settings())
    if as_json:
        _print_json({"models": [info.json() for info in infos]})
        return
    table = Table(title="models", show_lines=True)
    for column in ("model", "labels", "size", "serving"):
        table.add_column(column, overflow="fold")
    table.add_column("overrides", overflow="fold", ratio=1)
    for info in infos:
        serving = (info.production or "-") + (f"\n{info.canary} at {info.canary_percent:g}%" if info.canary else "")
        serving = f"[red]{escape(info.problem)}[/]" if info.problem else serving
        table.add_row(info.model, f"{len(info.labels)}: {escape(', '.join(info.labels))}", str(info.image_size), serving,
                      escape(_overrides_text(info.overrides, "\n")))
    console.print(table if infos else "no models: create one with `edgeloop model create NAME --labels a,b`")


@app.command()
@cloud_errors("model show")
def show(
    name: str = typer.Argument(..., help="model id"),
    as_json: bool = typer.Option(False, "--json", help=(
        "print {model, labels, image_size, production, canary, canary_percent, overrides, settings: "
        "[{setting, value, override, global}]}")),
    directory: Optional[Path] = StackDir,
) -> None:
    """One model's definition and its effective settings, marking the values it overrides."""
    from shared.gcp import model_settings

    open_target(directory)
    settings = get_settings()
    found = model_settings.load_models(settings, [name])
    if not found:
        fail(f"no model {name!r}: `edgeloop model list` shows the models", stderr=True)
    info = found[0]
    rows = settings_rows(settings, info.overrides)
    if as_json:
        _print_json({**info.json(), "settings": rows})
        return
    console.print(f"[bold]{info.model}[/] · {len(info.labels)} labels: {escape(', '.join(info.labels))} · image size "
                  f"{info.image_size} · production {info.production or '-'}"
                  + (f" · canary {info.canary} at {info.canary_percent:g}%" if info.canary else ""))
    table = Table(title=f"{info.model}: effective settings")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for row in rows:
        source = f"[bold yellow]model[/] (global {json.dumps(row['global'])})" if row["override"] else "global"
        table.add_row(row["setting"], escape(json.dumps(row["value"])), source)
    console.print(table)
