"""``edgeloop report``: one PNG with field success per version over time, drift scores, and accuracy per version.

Reading (``collect``) and drawing (``draw``) are separate so the drawing is a
plain function of plain data. Feedback documents carry no client time; the
time of a report is the server's create time of its document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

from shared import layout
from shared.config import Settings
from shared.gcp.clients import firestore_client
from shared.registry import VersionRecord, version_number

WINDOW = 40  # feedback reports per point of a version's success-rate curve
# Accuracy bars per version: the clean holdout, the dark-room stress, the field holdout (confirmed captures).
HOLDOUTS = (("int8_accuracy", "clean holdout"), ("int8_drifted_accuracy", "dark stress"),
            ("int8_field_accuracy", "field holdout"))


@dataclass(frozen=True)
class Event:
    at: datetime
    label: str
    kind: str  # transition | drift | marker (e.g. the demo's "room goes dark")


@dataclass
class ReportData:
    model: str
    feedback: dict[str, list[tuple[datetime, bool]]] = field(default_factory=dict)  # version -> (time, correct), in time order
    drift: list[tuple[datetime, float, bool]] = field(default_factory=list)  # (time, largest test statistic, drifted)
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)  # version -> metric -> value
    events: list[Event] = field(default_factory=list)


def collect(model: str, settings: Settings) -> ReportData:
    db = firestore_client(settings.project_id)
    data = ReportData(model)
    for snapshot in db.collection(layout.feedback_collection(model)).stream():
        value = snapshot.to_dict()
        if isinstance(value.get("model_version"), str) and isinstance(value.get("correct"), bool):
            data.feedback.setdefault(value["model_version"], []).append((snapshot.create_time, value["correct"]))
    for series in data.feedback.values():
        series.sort()
    reports = db.collection(layout.drift_reports_collection(model)).order_by("created").stream()
    drifting: set[str] = set()  # versions already found drifting: one marker each, not one per check
    for snapshot in reports:
        report = snapshot.to_dict()
        statistics = [t.get("statistic", 0.0) for t in report.get("tests", [])]
        if report.get("created") and statistics:
            data.drift.append((report["created"], max(statistics), report.get("status") == "drift"))
            if report.get("status") == "drift" and report.get("version") not in drifting:
                drifting.add(report.get("version"))
                data.events.append(Event(report["created"], f"drift ({report.get('version')})", "drift"))
    records = [VersionRecord.model_validate(s.to_dict()) for s in db.collection(layout.versions_collection(model)).stream()]
    for record in sorted(records, key=lambda r: version_number(r.version)):
        data.accuracy[record.version] = {k: record.metrics[k] for k, _ in HOLDOUTS if k in record.metrics}
        for transition in record.history:
            if transition.source is not None:
                data.events.append(Event(transition.at, f"{record.version} → {transition.target.value}", "transition"))
    data.events.sort(key=lambda e: e.at)
    return data


def success_curve(series: list[tuple[datetime, bool]], window: int = WINDOW) -> tuple[list[datetime], list[float]]:
    """Success rate over the last ``window`` reports, at each report from the window-th on (or all, if fewer)."""
    if not series:
        return [], []
    window = min(window, len(series))
    times, rates, correct = [], [], 0
    for i, (at, ok) in enumerate(series):
        correct += ok
        if i >= window:
            correct -= series[i - window][1]
        if i >= window - 1:
            times.append(at)
            rates.append(correct / window)
    return times, rates


def draw(data: ReportData, path: Path) -> Path:
    figure = Figure(figsize=(11, 11))
    grid = figure.add_gridspec(3, 1, height_ratios=[3, 1.4, 1.6])
    success = figure.add_subplot(grid[0])
    drift = figure.add_subplot(grid[1], sharex=success)  # one time axis for success and drift
    accuracy = figure.add_subplot(grid[2])
    figure.suptitle(f"Edgeloop report: {data.model}")
    for version in sorted(data.feedback, key=version_number):
        times, rates = success_curve(data.feedback[version])
        success.plot(times, rates, marker=".", markersize=3, label=f"{version} ({len(data.feedback[version])} reports)")
    for axis in (success, drift):
        for event in data.events:
            color = {"drift": "tab:red", "marker": "tab:purple"}.get(event.kind, "tab:gray")
            axis.axvline(event.at, color=color, linestyle="--" if event.kind == "marker" else ":", linewidth=1)
    for event in data.events:
        if event.kind in ("transition", "marker"):
            color = "tab:purple" if event.kind == "marker" else "tab:gray"
            success.annotate(event.label, (event.at, 1.0), rotation=90, fontsize=7, va="top", ha="right", color=color)
    first_drift = next((e for e in data.events if e.kind == "drift"), None)
    if first_drift:
        success.annotate(" drift detected", (first_drift.at, 0.02), fontsize=8, color="tab:red", ha="left")
    success.set_ylim(0, 1.02)
    success.set_ylabel(f"field success (last {WINDOW} reports)")
    success.legend(loc="lower left", fontsize=8)
    success.grid(alpha=0.3)

    if data.drift:
        times, scores, drifted = zip(*data.drift)
        drift.plot(times, scores, color="tab:blue", linewidth=1)
        drift.scatter(times, scores, c=["tab:red" if d else "tab:blue" for d in drifted], s=14, zorder=3)
    drift.set_ylabel("largest drift statistic")
    drift.grid(alpha=0.3)

    versions = list(data.accuracy)
    positions = range(len(versions))
    width = 0.8 / len(HOLDOUTS)
    for offset, (metric, label) in enumerate(HOLDOUTS):
        measured = [(p, data.accuracy[v][metric]) for p, v in zip(positions, versions) if metric in data.accuracy[v]]
        if not measured:
            continue  # e.g. no version had a field holdout yet
        bars = accuracy.bar([p + (offset - (len(HOLDOUTS) - 1) / 2) * width for p, _ in measured],
                            [value for _, value in measured], width=width, label=label)
        accuracy.bar_label(bars, fmt="%.3f", fontsize=7)
    accuracy.set_xticks(list(positions), versions)
    accuracy.set_ylim(0, 1.1)
    accuracy.set_ylabel("int8 accuracy")
    accuracy.legend(loc="lower right", fontsize=8)

    success.tick_params(labelbottom=False)
    drift.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
    drift.set_xlabel("time (UTC)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def summary(data: ReportData) -> dict[str, Any]:
    """The numbers behind the picture, for tables and tests."""
    return {
        "versions": {v: {"reports": len(s), "success": sum(ok for _, ok in s) / len(s)} for v, s in data.feedback.items() if s},
        "drift_checks": len(data.drift), "drift_detected": sum(d for *_, d in data.drift), "events": len(data.events),
    }
