"""``edgeloop dataset import DIR --model M`` and ``edgeloop dataset export M DIR [--version vN]``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeloop.datasets import ImportReport, Verdict, export_dataset, import_dataset, SHOWN_PROBLEMS
from edgeloop.target import cloud_errors, console, fail, open_target
from shared.config import get_settings

app = typer.Typer(help="Bring your own images: a folder per label in, a version's training images out.",
                  no_args_is_help=True)

StackDir = typer.Option(None, "--dir", help="State directory of the local stack (default: EDGELOOP_STACK_DIR or .edgeloop)")
VERDICT_STYLES = {Verdict.ACCEPTED: "green", Verdict.DUPLICATE: "cyan", Verdict.QUARANTINED: "red",
                  Verdict.REFUSED: "red", Verdict.WAITING: "yellow"}


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def import_view(report: ImportReport) -> Group:
    """One line per verdict with its count, then every file not accepted with the reason (fits 80 columns)."""
    counts = Table(title=f"import into {report.model}")
    counts.add_column("verdict")
    counts.add_column("files", justify="right")
    for verdict in Verdict:
        counts.add_row(f"[{VERDICT_STYLES[verdict]}]{verdict.value}[/]", str(report.counts[verdict.value]))
    problems = [row for row in report.rows if row.verdict is not Verdict.ACCEPTED]
    shown: list = [counts]
    if problems:
        table = Table(title="not accepted")
        table.add_column("file", overflow="fold", ratio=2)
        table.add_column("verdict", no_wrap=True)
        table.add_column("reason", overflow="fold", ratio=3)
        for row in problems[:SHOWN_PROBLEMS]:
            table.add_row(row.source, f"[{VERDICT_STYLES[row.verdict]}]{row.verdict.value}[/]", row.reason)
        shown.append(table)
        if len(problems) > SHOWN_PROBLEMS:
            shown.append(f"[dim]… and {len(problems) - SHOWN_PROBLEMS} more not accepted[/]")
    return Group(*shown)


@app.command("import")
@cloud_errors("dataset import")
def import_(
    folder: Path = typer.Argument(..., help="a folder with one sub-folder per label (PNG, JPEG, WebP, any size)"),
    model: str = typer.Option(..., "--model", "-m", help="the model whose dataset the images join"),
    timeout: float = typer.Option(300.0, help="seconds to wait for on_upload's verdicts"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Upload a folder's images as labelled training data through the normal upload path; each file once, ever.

    Object names are the images' content hashes: a rerun uploads only what is missing. Ends with on_upload's
    verdict on every file: accepted, duplicate (imported before) or quarantined with its reason; sub-folders that
    are not a label of the model and files that are not images are refused before upload, with the reason."""
    open_target(directory)
    try:
        with progress_bar() as progress:
            report = import_dataset(model, folder, get_settings(), progress, timeout)
    except (LookupError, FileNotFoundError) as exc:
        fail(exc)
    console.print(import_view(report))
    console.print(f"{report.uploaded} uploaded in {report.seconds:.1f} s; train on them with "
                  f"[bold]edgeloop retrain {model}[/]")
    if report.counts[Verdict.WAITING.value]:
        raise typer.Exit(1)


@app.command("export")
@cloud_errors("dataset export")
def export(
    model: str = typer.Argument(..., help="model id"),
    folder: Path = typer.Argument(..., help="where to write one sub-folder per label"),
    version: Optional[str] = typer.Option(None, "--version", help="the version whose training images to export "
                                          "(default: the production version)"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Write exactly the images a version was trained on (its manifest's object generations) into FOLDER/{label}/."""
    open_target(directory)
    try:
        with progress_bar() as progress:
            report = export_dataset(model, version, folder, get_settings(), progress)
    except LookupError as exc:
        fail(exc)
    table = Table(title=f"{model} {report.version} → {report.directory}")
    table.add_column("label")
    table.add_column("images", justify="right")
    for label, count in report.counts_per_label.items():
        table.add_row(label, str(count))
    console.print(table)
    console.print(f"{report.images} images written")
