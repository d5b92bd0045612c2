"""What an operator reads: versions and their stages, rollout, success rates, runs and drift, as rich tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from rich.table import Table

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.gcp.tallies import version_tally
from shared.lifecycle import Tally
from shared.registry import ModelPointer, VersionRecord, version_number

STAGE_STYLE = {"production": "bold green", "canary": "yellow", "rolled_back": "red", "rejected": "red", "archived": "dim"}


@dataclass(frozen=True)
class ModelView:
    pointer: ModelPointer
    versions: list[VersionRecord]  # oldest first
    tallies: dict[str, Tally]
    runs: list[dict[str, Any]]  # newest first
    drift: dict[str, Any] | None  # the newest drift report


def models(settings: Settings) -> list[str]:
    return sorted(s.id for s in firestore_client(settings.project_id).collection(layout.MODELS_PREFIX).stream())


def recent_runs(db: firestore.Client, model: str, limit: int) -> list[dict[str, Any]]:
    query = (db.collection("runs").where(filter=firestore.FieldFilter("model", "==", model))
             .order_by("created", direction=firestore.Query.DESCENDING).limit(limit))
    return [s.to_dict() for s in query.stream()]


def load_view(model: str, settings: Settings, runs: int = 5) -> ModelView | None:
    db = firestore_client(settings.project_id)
    snapshot = db.document(layout.model_doc(model)).get()
    if not snapshot.exists:
        return None
    versions = sorted((VersionRecord.model_validate(s.to_dict()) for s in db.collection(layout.versions_collection(model)).stream()),
                      key=lambda r: version_number(r.version))
    reports = (db.collection(layout.drift_reports_collection(model))
               .order_by("created", direction=firestore.Query.DESCENDING).limit(1).stream())
    return ModelView(
        pointer=ModelPointer.model_validate(snapshot.to_dict()),
        versions=versions,
        tallies={r.version: version_tally(db, model, r.version) for r in versions if r.ref is not None},
        runs=recent_runs(db, model, runs),
        drift=next((s.to_dict() for s in reports), None),
    )


def _percent(view: ModelView, record: VersionRecord) -> str:
    if view.pointer.production and view.pointer.production.version == record.version:
        return f"{100 - view.pointer.rollout.percent:g}%" if view.pointer.rollout.candidate else "100%"
    if view.pointer.rollout.candidate and view.pointer.rollout.candidate.version == record.version:
        return f"{view.pointer.rollout.percent:g}%"
    return "-"


def _rate(tally: Tally | None) -> str:
    return f"{tally.rate:.1%} ({tally.correct}/{tally.total})" if tally and tally.total else "-"


def _field_holdout(metrics: dict[str, Any]) -> str:
    """Accuracy on the confirmed field captures no run trained on, beside production's then, and how many."""
    images = int(metrics.get("field_holdout_images", 0))
    if not images:
        return "-"
    production = metrics.get("production_int8_field_accuracy")
    return f"{metrics['int8_field_accuracy']:.3f}" + (f" vs {production:.3f}" if production is not None else "") + f" ({images})"


def versions_table(view: ModelView) -> Table:
    table = Table(title=f"{view.pointer.model}: versions")
    for column in ("version", "stage", "devices", "field success", "int8 acc", "drifted acc", "field holdout acc",
                   "size", "last change"):
        table.add_column(column)
    for record in view.versions:
        last = record.history[-1] if record.history else None
        style = STAGE_STYLE.get(record.stage.value, "")
        table.add_row(
            record.version, f"[{style}]{record.stage.value}[/]" if style else record.stage.value, _percent(view, record),
            _rate(view.tallies.get(record.version)),
            f"{record.metrics.get('int8_accuracy', float('nan')):.3f}", f"{record.metrics.get('int8_drifted_accuracy', float('nan')):.3f}",
            _field_holdout(record.metrics),
            f"{record.ref.size / 1024:.0f} KiB" if record.ref else "-",
            f"{last.at:%m-%d %H:%M:%S} {last.actor}: {last.reason[:60]}" if last else "-",
        )
    return table


def runs_table(runs: list[dict[str, Any]], title: str = "runs") -> Table:
    table = Table(title=title)
    for column in ("run", "model", "reason", "status", "version", "stage", "created", "seconds"):
        table.add_column(column)
    for run in runs:
        result = run.get("result") or {}
        seconds = sum(s.get("seconds", 0) for s in (run.get("stages") or {}).values())
        status = run.get("status", "?")
        table.add_row(run.get("run_id", "?"), run.get("model", "?"), run.get("reason", "?"),
                      f"[red]{status}[/]" if status in ("failed", "rejected") else status,
                      result.get("version") or run.get("version", "-"), result.get("stage", "-"),
                      str(run.get("created", ""))[:19], f"{seconds:.0f}" if seconds else "-")
    return table


def drift_line(view: ModelView) -> str:
    report = view.drift
    if not report:
        return "drift: no check yet"
    drifted = [t["name"] for t in report.get("tests", []) if t.get("drifted")]
    when = report.get("created")
    return (f"drift: {report.get('status')} for {report.get('version')} on {report.get('samples')} inputs"
            + (f" ({', '.join(drifted)})" if drifted else "") + (f", checked {when:%m-%d %H:%M:%S}" if when else ""))
