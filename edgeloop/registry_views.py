"""What an operator reads: versions and their stages, rollout, devices seen, success rates, runs and drift, as rich tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore
from rich.table import Table

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.gcp.tallies import fleet_by_version, version_tally
from shared.lifecycle import Tally
from shared.registry import ModelPointer, VersionRecord, version_number
from shared.telemetry import FleetVersion

STAGE_STYLE = {"production": "bold green", "canary": "yellow", "rolled_back": "red", "rejected": "red", "archived": "dim"}


@dataclass(frozen=True)
class ModelView:
    pointer: ModelPointer
    versions: list[VersionRecord]  # oldest first
    tallies: dict[str, Tally]
    runs: list[dict[str, Any]]  # newest first
    drift: dict[str, Any] | None  # the newest drift report
    fleet: dict[str, FleetVersion] = field(default_factory=dict)  # devices seen per published version in 24 h


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
        fleet=fleet_by_version(db, model, [r.version for r in versions if r.ref is not None]),
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


def _stage(record: VersionRecord) -> str:
    style = STAGE_STYLE.get(record.stage.value, "")
    return f"[{style}]{record.stage.value}[/]" if style else record.stage.value


def _accuracy(metrics: dict[str, Any], key: str) -> str:
    return f"{metrics[key]:.3f}" if key in metrics else "-"


def versions_table(view: ModelView) -> Table:
    """Where each version stands: stage, share of devices, field success, size (fits 80 columns; each version's
    accuracies are ``accuracy_table``, its last change ``changes_grid``)."""
    table = Table(title=f"{view.pointer.model}: versions")
    table.add_column("version", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("rollout", justify="right", no_wrap=True)
    table.add_column("field success", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for record in view.versions:
        table.add_row(record.version, _stage(record), _percent(view, record), _rate(view.tallies.get(record.version)),
                      f"{record.ref.size / 1024:.0f} KiB" if record.ref else "-")
    return table


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def fleet_table(view: ModelView) -> Table:
    """Devices whose last report in the last 24 h was on each published version: how many, their predictions in
    the period they reported, and the latency percentiles of those predictions (from the summed histograms)."""
    table = Table(title=f"{view.pointer.model}: devices seen in 24 h",
                  caption="latency over each device's last reported period")
    table.add_column("version", no_wrap=True)
    table.add_column("devices", justify="right", no_wrap=True)
    table.add_column("predictions", justify="right", no_wrap=True)
    table.add_column("p50 ms", justify="right", no_wrap=True)
    table.add_column("p95 ms", justify="right", no_wrap=True)
    for record in view.versions:
        fleet = view.fleet.get(record.version)
        if fleet is None:
            continue
        table.add_row(record.version, str(fleet.devices), str(fleet.predictions), _ms(fleet.p50_ms), _ms(fleet.p95_ms))
    return table


def _fleet_json(fleet: FleetVersion | None) -> dict[str, Any] | None:
    if fleet is None:
        return None
    return {"devices": fleet.devices, "predictions": fleet.predictions,
            "latency_p50_ms": fleet.p50_ms, "latency_p95_ms": fleet.p95_ms}


def accuracy_table(view: ModelView) -> Table:
    """Each version's int8 accuracy on the clean holdout, the dark stress set and the field holdout."""
    table = Table(title=f"{view.pointer.model}: int8 accuracy")
    table.add_column("version", no_wrap=True)
    table.add_column("clean", justify="right", no_wrap=True)
    table.add_column("dark", justify="right", no_wrap=True)
    # Confirmed field captures no run trained on, beside production's score on them then, and how many.
    table.add_column("field holdout vs prod. (n)", justify="right", no_wrap=True)
    for record in view.versions:
        table.add_row(record.version, _accuracy(record.metrics, "int8_accuracy"),
                      _accuracy(record.metrics, "int8_drifted_accuracy"), _field_holdout(record.metrics))
    return table


def changes_grid(view: ModelView) -> Table:
    """Each version's last stage change in full, one entry per version; long reasons wrap under themselves."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for record in view.versions:
        if record.history:
            last = record.history[-1]
            source = f"{last.source.value} → " if last.source else ""
            grid.add_row(record.version, f"{last.at:%m-%d %H:%M:%S}",
                         f"{source}{last.target.value} by {last.actor}" + (f": {last.reason}" if last.reason else ""))
    return grid


def _short_run_id(run_id: str, model: str) -> str:
    """The run id without its model prefix (the table's title names the model)."""
    return run_id.removeprefix(f"{model}-") if model else run_id


def _run_seconds(run: dict[str, Any]) -> float:
    return sum(s.get("seconds", 0) for s in (run.get("stages") or {}).values())


def _duration(seconds: float) -> str:
    """At most four characters: 42s, 599s, 10m, 999m."""
    if not seconds:
        return "-"
    return f"{seconds:.0f}s" if seconds < 599.5 else f"{seconds / 60:.0f}m"


def runs_table(runs: list[dict[str, Any]], title: str = "runs", model: str = "") -> Table:
    """Runs, newest first (fits 80 columns); ``model``: the model every run is of, left out of their ids."""
    table = Table(title=title, caption=f"run ids are {model}-<run>" if model else None)
    table.add_column("run", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("ver", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    for run in runs:
        result = run.get("result") or {}
        seconds = _run_seconds(run)
        status = run.get("status", "?")
        table.add_row(_short_run_id(run.get("run_id", "?"), model), run.get("reason", "?"),
                      f"[red]{status}[/]" if status in ("failed", "rejected") else status,
                      result.get("version") or run.get("version", "-"), result.get("stage", "-"), _duration(seconds))
    return table


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    """One run for ``--json``: run_id, model, reason, status, version, stage, created, seconds, error."""
    result = run.get("result") or {}
    seconds = _run_seconds(run)
    return {
        "run_id": run.get("run_id"), "model": run.get("model"), "reason": run.get("reason"), "status": run.get("status"),
        "version": result.get("version") or run.get("version"), "stage": result.get("stage"),
        "created": _iso(run.get("created")), "seconds": round(seconds, 3) if seconds else None, "error": run.get("error"),
    }


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def view_json(view: ModelView) -> dict[str, Any]:
    """One model for ``status --json``: production, canary, versions, runs and the latest drift check."""
    pointer = view.pointer
    candidate = pointer.rollout.candidate
    versions = []
    for record in view.versions:
        tally = view.tallies.get(record.version)
        last = record.history[-1] if record.history else None
        share = _percent(view, record)
        versions.append({
            "version": record.version, "stage": record.stage.value,
            "devices_percent": float(share.rstrip("%")) if share != "-" else None,
            "fleet": _fleet_json(view.fleet.get(record.version)),
            "field": {"correct": tally.correct, "total": tally.total} if tally else None,
            "int8_accuracy": record.metrics.get("int8_accuracy"),
            "int8_dark_accuracy": record.metrics.get("int8_drifted_accuracy"),
            "field_holdout": {
                "accuracy": record.metrics.get("int8_field_accuracy"),
                "production_accuracy": record.metrics.get("production_int8_field_accuracy"),
                "images": int(record.metrics["field_holdout_images"]),
            } if record.metrics.get("field_holdout_images") else None,
            "size_bytes": record.ref.size if record.ref else None,
            "last_change": {
                "at": last.at.isoformat(), "source": last.source.value if last.source else None, "target": last.target.value,
                "actor": last.actor, "reason": last.reason,
            } if last else None,
        })
    drift = view.drift
    return {
        "model": pointer.model,
        "production": pointer.production.version if pointer.production else None,
        "canary": {"version": candidate.version, "percent": pointer.rollout.percent} if candidate else None,
        "versions": versions,
        "runs": [run_json(r) for r in view.runs],
        "drift": {
            "status": drift.get("status"), "version": drift.get("version"), "samples": drift.get("samples"),
            "drifted": [t["name"] for t in drift.get("tests", []) if t.get("drifted")], "checked": _iso(drift.get("created")),
        } if drift else None,
    }


def model_renderables(view: ModelView) -> list:
    """What ``edgeloop status`` prints for one model, top to bottom; every piece fits an 80-column terminal."""
    name = view.pointer.model
    shown: list = [versions_table(view), accuracy_table(view)]
    if view.fleet:
        shown.append(fleet_table(view))
    if any(r.history for r in view.versions):
        shown += [f"[bold]{name}: last change of each version[/]", changes_grid(view)]
    if view.runs:
        shown.append(runs_table(view.runs, title=f"{name}: last runs", model=name))
    shown.append(drift_line(view))
    return shown


def drift_line(view: ModelView) -> str:
    report = view.drift
    if not report:
        return "drift: no check yet"
    drifted = [t["name"] for t in report.get("tests", []) if t.get("drifted")]
    when = report.get("created")
    return (f"drift: {report.get('status')} for {report.get('version')} on {report.get('samples')} inputs"
            + (f" ({', '.join(drifted)})" if drifted else "") + (f", checked {when:%m-%d %H:%M:%S}" if when else ""))
