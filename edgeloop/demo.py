"""``edgeloop demo``: the closed loop on the embedded stack, start to finish, with no human step.

Stages: start a fresh local stack → seed the digits through on_upload → train
and publish v1 (no dim examples in training) → a simulated fleet classifies
clean digits → the room goes dark (field drift) → success falls, captured and
user-confirmed images flow in, drift checks (the demo plays Cloud Scheduler)
and thresholds ask for a retrain → launch_training runs the trainer → v2 passes
its gate and becomes a canary → on_feedback advances and promotes it → every
device updates itself → success recovers. The demo only drives devices and the
scheduler tick; every decision is the product's own.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from edgeloop.loop_timing import LATENCY, POLICY, WORK, Timeline, loop_timeline, request_to_start_s

DEMO_MODEL = "digits"
# The loop's knobs for a fleet of tens of devices and a run of minutes (production keeps the defaults).
DEMO_ENV = {
    "EDGELOOP_THRESHOLDS__NEW_DATA_IMAGES": "250",
    "EDGELOOP_THRESHOLDS__DRIFT_MIN_SAMPLES": "80",
    "EDGELOOP_THRESHOLDS__MIN_FEEDBACK_SAMPLES": "120",
    "EDGELOOP_TRAINING__COOLDOWN_S": "20",
    "EDGELOOP_RELEASE__ROLLOUT_STEPS": "[50, 100]",
    # A floor only: the canary's sequential test still decides when the evidence says "not worse".
    "EDGELOOP_RELEASE__CANARY_MIN_SAMPLES": "15",
    # A retrain for the dark room waits (at most 3 minutes) until 20 confirmed captures taken on production are
    # held out to judge it on, and the gate gates on them: counted in captures, not seconds, so a fleet of any
    # size, on any machine, trains v2 on the dark room and judges it on it (shared/field_evidence.py).
    "EDGELOOP_TRAINING__FIELD_HOLDOUT_WAIT_S": "180",
    "EDGELOOP_GATE__MIN_FIELD_HOLDOUT": "20",
    # A day of field traffic compressed into a minute: a drift check (and the field success that says whether
    # the drift hurts) looks at the last minute, so the dark room is not diluted by the clean rounds before it.
    "EDGELOOP_THRESHOLDS__DRIFT_WINDOW_S": "60",
    # Tens of devices, one user each, a few on the canary: every report counts, one user is enough.
    "EDGELOOP_THRESHOLDS__FEEDBACK_PER_USER_CAP": "1000",
    "EDGELOOP_THRESHOLDS__MIN_DISTINCT_USERS": "1",
    "EDGELOOP_RELEASE__CANARY_MIN_USERS": "1",
}
DARK_ROOM = 0.12  # brightness kept once the drift starts: trainer_job.augment.DRIFT_BRIGHTNESS_KEPT
CLEAN_ROUNDS = 2
ROUND_PAUSE_S = 2.5  # lets the functions keep up on two cores: a round's events are handled before the next
FEEDBACK_RATE = 0.3  # share of predictions users report on (a fleet round then writes a few dozen reports)
CAPTURE_BELOW = 0.8  # devices capture predictions less confident than this (the product default is 0.5) …
# … plus a random sample of every prediction, the only captures drift checks read: 0.25 gives the check
# its DRIFT_MIN_SAMPLES within the first dark round (the product default, 0.02, suits fleets of thousands).
CAPTURE_SAMPLE = 0.25


@dataclass
class Round:
    index: int
    phase: str  # clean | drift
    ended_s: float  # since the demo started
    versions: Counter = field(default_factory=Counter)  # devices per model version
    predictions: Counter = field(default_factory=Counter)  # per version
    correct: Counter = field(default_factory=Counter)
    captured: int = 0
    confirmed: int = 0
    errors: list[str] = field(default_factory=list)

    def success(self, version: str | None = None) -> float | None:
        total = self.predictions[version] if version else sum(self.predictions.values())
        right = self.correct[version] if version else sum(self.correct.values())
        return right / total if total else None


@dataclass
class DemoResult:
    rounds: list[Round]
    versions: dict[str, dict[str, Any]]  # version -> registry record
    runs: list[dict[str, Any]]
    loop_close_s: float | None  # the fixing version's run launched → every device running it
    seconds: float
    stage_seconds: dict[str, float]
    report: Path | None
    closed: bool
    fixed_by: str | None = None  # the version every device ran when the loop closed
    timeline: Timeline | None = None  # the room going dark → every device on the fixing version, step by step


def _fleet_round(index: int, phase: str, devices: int, images: int, base_args: dict, started: float) -> Round:
    from edgeloop.device import DeviceTally, run_fleet

    args = {**base_args, "seed": index, "brightness": DARK_ROOM if phase == "drift" else 1.0, "images": images}
    tallies = [DeviceTally(f"demo-device-{i:03d}") for i in range(devices)]
    run_fleet(args, tallies)
    result = Round(index, phase, time.monotonic() - started)
    for tally in tallies:
        result.versions[tally.version] += 1
        result.predictions[tally.version] += tally.predictions
        result.correct[tally.version] += tally.correct
        result.captured += tally.captured
        result.confirmed += tally.confirmed
        if tally.error:
            result.errors.append(f"{tally.device_id}: {tally.error}")
    return result



def _status_line(round_: Round, pointer, control: dict) -> str:
    success = ", ".join(f"{v} {round_.correct[v] / round_.predictions[v]:.0%}" for v in sorted(round_.predictions) if round_.predictions[v])
    rollout = pointer.rollout
    canary = f" · canary {rollout.candidate.version} at {rollout.percent:g}%" if rollout.candidate else ""
    active = control.get("active_run")
    training = f" · training {active['run_id'][-6:]} ({active['reason']})" if active else ""
    pending = f" · {len(control.get('pending') or [])} request(s) pending" if control.get("pending") else ""
    fleet = ", ".join(f"{n}×{v}" for v, n in sorted(round_.versions.items()))
    return (f"round {round_.index:>2} [{round_.phase:>5}] {round_.ended_s:5.0f}s · success {success} · fleet {fleet} · "
            f"production {pointer.production.version}{canary}{training}{pending} · +{round_.captured} captures, "
            f"{round_.confirmed} confirmed")


def run_demo(console: Console, devices: int = 10, images: int = 8, timeout_s: float = 420.0,
             directory: Path | None = None, keep: bool = False, report_path: Path = Path("edgeloop-demo-report.png")) -> DemoResult:
    from client_sdk import Endpoints
    from edgeloop import report as report_png
    from edgeloop.device import load_public_key
    from edgeloop.localstack import stack
    from edgeloop.registry_views import recent_runs
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared import layout
    from shared.config import Settings
    from shared.digits import load_digits_rgb
    from shared.gcp import launch, model_registry, training_lock
    from shared.gcp.bus import request_drift_check
    from shared.gcp.clients import firestore_client, reset_clients
    from shared.registry import VersionRecord
    from shared.retrain import manual_request
    from trainer_job import AugmentConfig, Hyperparameters, TrainConfig, save_train_config

    from edgeloop.target import command_logs

    started = time.monotonic()
    stage_seconds: dict[str, float] = {}
    directory = Path(directory or tempfile.mkdtemp(prefix="edgeloop-demo-")).resolve()
    saved_env = dict(os.environ)
    os.environ.update({**DEMO_ENV, "EDGELOOP_STACK_DIR": str(directory)})
    quiet = ExitStack()  # what the product code logs in this process goes to the stack's logs, not between our lines
    log_file = quiet.enter_context(command_logs(directory))

    def stage(name: str, since: float) -> None:
        stage_seconds[name] = time.monotonic() - since
        console.print(f"[green]✓[/] {name} [dim]({stage_seconds[name]:.1f} s)[/]")

    try:
        settings = Settings(stack_dir=directory)
        console.rule("[bold]Edgeloop demo[/]: the closed loop on the local stack")
        t = time.monotonic()
        with console.status("starting the local stack…"):
            state, _ = stack.up(settings, directory)
        os.environ.update(state.client_env())
        reset_clients()  # this process may have talked to another stack before
        stage("local stack up", t)

        t = time.monotonic()
        seed_dataset(DEMO_MODEL, settings, console, train=False)
        # v1 learns from the clean dataset only: whatever it needs for the dark room must come from the field.
        # One trial of the grid: a run of the demo's minutes, not a search.
        save_train_config(DEMO_MODEL, TrainConfig(augment=AugmentConfig.off(), grid=(Hyperparameters(),)), settings)
        stage("dataset seeded through on_upload", t)

        t = time.monotonic()
        launched = launch.launch(manual_request(DEMO_MODEL, who="edgeloop demo", note="first version"), settings)
        v1_run = wait_for_outcome(launched.run_id, settings, console)
        if v1_run["status"] != "published":
            raise RuntimeError(f"v1 was not published: {v1_run.get('status')} {v1_run.get('error') or ''}")
        stage("v1 trained, gated and published", t)
        # The fleet runs v1 in a clean room at least until the cooldown after v1's run is over: the drift comes
        # long after the last training in the field, not during the quiet time that follows it.
        clean_until = time.monotonic() + settings.training.cooldown_s

        db = firestore_client(settings.project_id)
        base_args = {
            "model": DEMO_MODEL, "feedback_rate": FEEDBACK_RATE, "confirm_rate": 1.0, "confirm_correct": True,
            "project_id": state.project_id, "public_key": load_public_key(state.path / "signing-key.pem"),
            "settings": settings.client.model_copy(update={
                "capture_below_confidence": CAPTURE_BELOW, "capture_sample_rate": CAPTURE_SAMPLE,
                "daily_capture_count": 10_000, "daily_capture_bytes": 64 * 1024 * 1024}),
            "endpoints": Endpoints.from_client_env(state.client_env()), "devices_dir": state.path / "devices",
            "digits": load_digits_rgb(),
        }
        rounds: list[Round] = []
        t = time.monotonic()
        closed_at = None
        dark_since: datetime | None = None
        console.print(f"[bold]fleet[/]: {devices} devices × {images} images per round; the room goes dark after {CLEAN_ROUNDS} rounds, once v1's cooldown ({settings.training.cooldown_s} s) is over")
        while time.monotonic() - started < timeout_s:
            phase = "clean" if len(rounds) < CLEAN_ROUNDS or time.monotonic() < clean_until else "drift"
            if phase == "drift" and dark_since is None:
                dark_since = datetime.now(timezone.utc)
            round_ = _fleet_round(len(rounds) + 1, phase, devices, images, base_args, started)
            rounds.append(round_)
            request_drift_check(DEMO_MODEL, settings)  # what Cloud Scheduler does in production
            pointer = model_registry.load_pointer(DEMO_MODEL, settings)
            control = training_lock.training_state(DEMO_MODEL, settings)
            console.print(_status_line(round_, pointer, control))
            for error in round_.errors[:3]:
                console.print(f"  [red]{error}[/]")
            new = pointer.production.version
            if new != "v1" and set(round_.versions) == {new} and not pointer.rollout.candidate:
                closed_at = time.monotonic()
                break
            time.sleep(ROUND_PAUSE_S)
        stage("fleet: drift, retrain, canary, promotion" if closed_at else "fleet (loop not closed in time)", t)

        versions = {s.id: s.to_dict() for s in db.collection(layout.versions_collection(DEMO_MODEL)).stream()}
        runs = recent_runs(db, DEMO_MODEL, limit=100)[::-1]  # oldest first; a demo starts a handful
        loop_close = timeline = None
        if closed_at is not None:
            promoted = versions[pointer.production.version]
            index = next(i for i, r in enumerate(runs) if r["run_id"] == promoted["run_id"])
            fleet_at = datetime.fromtimestamp(time.time() - (time.monotonic() - closed_at), timezone.utc)
            loop_close = (fleet_at - datetime.fromisoformat(runs[index]["created"])).total_seconds()
            if dark_since is not None:
                drift_reports = [s.to_dict() for s in db.collection(layout.drift_reports_collection(DEMO_MODEL)).stream()]
                timeline = loop_timeline(dark_since, drift_reports, runs[index],
                                         VersionRecord.model_validate(promoted), runs[:index], fleet_at)

        t = time.monotonic()
        data = report_png.collect(DEMO_MODEL, settings)
        if dark_since is not None:
            data.events.append(report_png.Event(dark_since, "the room goes dark", "marker"))
        report_file = report_png.draw(data, report_path)
        stage("report written", t)
        console.print(f"  report: [bold]{report_file}[/]")
        console.print(f"  logs: {log_file.parent}")
        result = DemoResult(rounds, versions, runs, loop_close, time.monotonic() - started, stage_seconds, report_file,
                            closed_at is not None, pointer.production.version if closed_at is not None else None,
                            timeline)
        console.print(summary_table(result))
        return result
    finally:
        try:
            if not keep:
                stack.down(directory)
        finally:
            quiet.close()
        os.environ.clear()
        os.environ.update(saved_env)
        reset_clients()


def _field_holdout(metrics: dict[str, Any]) -> str:
    """The version and its production on the confirmed captures no run trained on (shared.gate), and how many."""
    images = int(metrics.get("field_holdout_images", 0))
    if not images:
        return "-"
    production = metrics.get("production_int8_field_accuracy")
    versus = f" vs {production:.1%}" if production is not None else ""
    return f"{metrics['int8_field_accuracy']:.1%}{versus} ({images})"


def _by_number(versions: dict[str, Any]) -> list[str]:
    return sorted(versions, key=lambda v: int(v[1:]))


def versions_table(result: DemoResult) -> Table:
    """Each version the demo made: its stage, training set and int8 accuracies (fits 80 columns)."""
    table = Table(title="versions")
    table.add_column("version", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("images", justify="right", no_wrap=True)
    table.add_column("clean", justify="right", no_wrap=True)
    table.add_column("dark", justify="right", no_wrap=True)
    # Confirmed field captures no run trained on, beside production's score on them then, and how many.
    table.add_column("field holdout vs prod. (n)", justify="right", no_wrap=True)
    for version in _by_number(result.versions):
        record = result.versions[version]
        metrics = record.get("metrics", {})
        table.add_row(version, record["stage"], str(record.get("manifest", {}).get("objects", "?")),
                      f"{metrics.get('int8_accuracy', 0):.1%}", f"{metrics.get('int8_drifted_accuracy', 0):.1%}",
                      _field_holdout(metrics))
    return table


def stage_paths(result: DemoResult) -> Table:
    """How each version got its stage, and by whom; long paths wrap under themselves."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for version in _by_number(result.versions):
        history = result.versions[version].get("history", [])[1:]
        grid.add_row(f"{version}:", "; ".join(f"{h['target']} by {h['actor'].split(':')[0]}" for h in history) or "-")
    return grid


def loop_table(result: DemoResult) -> Table:
    """Field success, runs, the loop's close and each stage's time (fits 80 columns)."""
    table = Table(title=f"Edgeloop demo: {'loop closed' if result.closed else 'loop NOT closed'} in {result.seconds:.0f} s")
    table.add_column("what")  # a label may wrap; a number never does
    table.add_column("measured", justify="right", no_wrap=True)
    clean = [r for r in result.rounds if r.phase == "clean"]
    dark_v1 = [r for r in result.rounds if r.phase == "drift" and set(r.versions) == {"v1"}]
    last = result.rounds[-1] if result.rounds else None

    def mean_success(rounds: list[Round]) -> str:
        total = sum(sum(r.predictions.values()) for r in rounds)
        return f"{sum(sum(r.correct.values()) for r in rounds) / total:.1%} of {total}" if total else "-"

    table.add_row("field success, clean room, v1", mean_success(clean))
    table.add_row("field success, dark room, v1 only", mean_success(dark_v1))
    if last is not None:
        table.add_row(f"field success, last round ({', '.join(sorted(last.versions))})", mean_success([last]))
    reasons = Counter(r.get("reason") for r in result.runs)
    for reason, n in reasons.items():
        table.add_row(f"training runs: {reason}", str(n))
    folded = sum(len(r.get("folded") or []) for r in result.runs)
    table.add_row("requests folded into runs", str(folded))
    fixed_by = result.fixed_by
    table.add_row(f"loop close: {fixed_by}'s run launched → fleet on {fixed_by}" if fixed_by
                  else "loop close: a new version's run launched → fleet on it",
                  f"{result.loop_close_s:.0f} s" if result.loop_close_s is not None else "not closed")
    if result.timeline is not None and result.timeline.total_s is not None:
        table.add_row("room dark → fleet: policy / work / latency",
                      " / ".join(f"{result.timeline.seconds(kind):.1f} s" for kind in (POLICY, WORK, LATENCY)))
    starts = request_to_start_s(result.runs)
    if starts:
        table.add_row(f"retrain request → trainer started, runs not kept waiting (n={len(starts)}), slowest",
                      f"{max(starts):.1f} s")
    for name, seconds in result.stage_seconds.items():
        table.add_row(f"stage: {name}", f"{seconds:.1f} s")
    return table


def timeline_table(timeline: Timeline) -> Table:
    """The room going dark → every device on the fixing version, step by step (fits 80 columns)."""
    table = Table(title=f"loop timeline: {timeline.total_s:.0f} s from the room going dark to the whole fleet"
                  if timeline.total_s is not None else "loop timeline")
    table.add_column("step", no_wrap=True)
    table.add_column("at", justify="right", no_wrap=True)
    table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("why it waited")  # wraps under itself
    for step, since, wait in timeline.rows():
        table.add_row(step.name, f"{since:.0f} s", f"{wait:.1f} s", step.kind, step.why)
    return table


def summary_table(result: DemoResult) -> Group:
    """What the demo printed at its end: the versions, how each got its stage, the loop's steps and numbers."""
    parts: list[Any] = [versions_table(result), "[bold]how each version got its stage[/]", stage_paths(result)]
    if result.timeline is not None:
        parts.append(timeline_table(result.timeline))
    return Group(*parts, loop_table(result))
