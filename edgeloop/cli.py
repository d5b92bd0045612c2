"""The ``edgeloop`` command: run the local stack and operate the loop, locally or on a deployed project."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console, Group
from rich.table import Table

from edgeloop import datasets_cli, device, labelling, models_cli
from edgeloop.bench import bench_app
from edgeloop.localstack import stack
from edgeloop.web import command as web_command
from edgeloop.target import (
    LOCAL_ONLY,
    TargetError,
    cloud_errors,
    command_started,
    connect,
    console,
    fail,
    open_target,
    resolve_target,
    set_target_options,
    stack_directory,
    use_target,
)
from shared.config import get_settings
from shared.errors import ConfigurationError, EdgeloopError

app = typer.Typer(help="Edgeloop: on-device image models that keep improving by themselves.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(device.app, name="device")
app.command("web")(web_command)  # the browser app against the local stack (edgeloop/web.py)
app.add_typer(models_cli.app, name="model")
app.add_typer(datasets_cli.app, name="dataset")  # bring your own images: a folder per label in and out
app.command("label")(labelling.command)  # an operator labels unlabelled and disputed captures


@app.callback()
def _command(
    context: typer.Context,
    project: Optional[str] = typer.Option(
        None, "--project", metavar="P", help=(
            "operate the Edgeloop deployed in Google Cloud project P with Application Default Credentials "
            "(default: EDGELOOP_PROJECT_ID or GOOGLE_CLOUD_PROJECT if set, else the local stack); on the "
            "emulators instead when FIRESTORE_, PUBSUB_ and STORAGE_EMULATOR_HOST are set")),
    bucket: Optional[str] = typer.Option(
        None, "--bucket", metavar="B", help="its data bucket (default: EDGELOOP_BUCKET, else P-edgeloop as Terraform names it)"),
) -> None:
    command_started(context)
    set_target_options(project, bucket)
    if project and context.invoked_subcommand in LOCAL_ONLY:
        Console(stderr=True).print(f"[yellow]note:[/] `{context.invoked_subcommand}` works on the local stack "
                                   f"only; --project {project} is not used")


StackDir = typer.Option(None, "--dir", help="State directory of the local stack (default: EDGELOOP_STACK_DIR or .edgeloop)")


def _status_table(directory: Path) -> tuple[Table, bool]:
    components = stack.status(directory)
    table = Table(title=f"local stack ({directory})")
    for column in ("component", "pid", "state", "url"):
        table.add_column(column)
    for c in components:
        state = "[green]healthy[/]" if c.running and c.healthy else ("[yellow]unhealthy[/]" if c.running else "[red]stopped[/]")
        table.add_row(c.name, str(c.pid or "-"), state, c.url)
    return table, bool(components) and all(c.running and c.healthy for c in components)


@app.command()
def up(directory: Optional[Path] = StackDir, timeout: float = typer.Option(stack.STARTUP_TIMEOUT_S, help="seconds to wait for health")) -> None:
    """Start the embedded local stack (emulators, storage notifier, functions)."""
    directory = stack_directory(directory)
    started = time.monotonic()
    try:
        with console.status("starting the local stack…") as spinner:
            state, started_now = stack.up(
                get_settings(), directory, timeout,
                on_ready=lambda name: console.print(f"  [green]✓[/] {name} ready ({time.monotonic() - started:.1f}s)"),
            )
            spinner.update("checking health…")
    except (EdgeloopError, ConfigurationError) as exc:
        fail(exc)
    if started_now:
        console.print(f"[bold green]stack up[/] in {time.monotonic() - started:.1f}s")
    else:
        console.print("[bold]stack already running[/] (nothing started)")
    console.print(_status_table(directory)[0])
    console.print("Point clients at it with:")
    for key, value in state.client_env().items():
        console.print(f"  export {key}={value}")


@app.command()
def down(directory: Optional[Path] = StackDir) -> None:
    """Stop the local stack; fails if any of its processes survive."""
    report = stack.down(stack_directory(directory))
    if report.leftover_pids:
        fail(stack.StackError(f"processes left behind: {report.leftover_pids}"))
    console.print(f"stopped: {', '.join(report.stopped) or 'nothing was running'}")


STATUS_JSON_HELP = (
    "print one JSON document instead of tables: {target: {project, bucket, google_cloud, emulators}, "
    "stack: {directory, healthy, components: [{name, pid, state, url}]} (null on a deployed project), "
    "models: [{model, production, canary: {version, percent} | null, versions: [{version, stage, devices_percent, "
    "fleet: {devices, predictions, latency_p50_ms, latency_p95_ms} (devices seen in 24 h), field: {correct, total}, "
    "int8_accuracy, int8_dark_accuracy, field_holdout: {accuracy, production_accuracy, images}, "
    "size_bytes, last_change: {at, source, target, actor, reason}}], runs: [run as in `runs --json`], "
    "drift: {status, version, samples, drifted, checked}}]}; absent values are null"
)


def _components_json(directory: Path) -> dict:
    components = stack.status(directory)
    return {
        "directory": str(directory),
        "healthy": bool(components) and all(c.running and c.healthy for c in components),
        "components": [{"name": c.name, "pid": c.pid, "url": c.url,
                        "state": "healthy" if c.running and c.healthy else ("unhealthy" if c.running else "stopped")}
                       for c in components],
    }


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


@app.command()
@cloud_errors("status")
def status(
    model: Optional[str] = typer.Argument(None, help="only this model (default: every registered model)"),
    as_json: bool = typer.Option(False, "--json", help=STATUS_JSON_HELP),
    directory: Optional[Path] = StackDir,
) -> None:
    """The target (a deployed project, or the local stack and its components), then per model: versions, stages,
    rollout, devices seen in 24 h and their latency, success rates, accuracies, each version's last change, the last
    runs, drift. On the local stack, exit code 1 unless every component is healthy."""
    from edgeloop import registry_views

    try:
        target = resolve_target(directory, healthy=False)
    except TargetError as exc:
        if as_json:
            _print_json({"target": None, "stack": {"directory": str(stack_directory(directory)), "healthy": False,
                                                   "components": []}, "models": []})
        else:
            console.print(f"no target: {exc}")
        raise typer.Exit(1)
    components = None
    if target.stack is not None:
        if as_json:
            components = _components_json(target.stack.path)
            if not components["healthy"]:
                _print_json({"target": target.json(), "stack": components, "models": []})
                raise typer.Exit(1)
        else:
            table, healthy = _status_table(target.stack.path)
            console.print(table)
            if not healthy:
                raise typer.Exit(1)
    elif not as_json:
        console.print(f"[bold]target[/]: {target.describe()}")
    use_target(target, directory)
    settings = get_settings()
    views = []
    for name in [model] if model else registry_views.models(settings):
        view = registry_views.load_view(name, settings, runs=3)
        if view is None:
            fail(KeyError(f"model {name!r} is not registered"), stderr=as_json)
        if as_json:
            views.append(registry_views.view_json(view))
        else:
            for renderable in registry_views.model_renderables(view):
                console.print(renderable)
    if as_json:
        _print_json({"target": target.json(), "stack": components, "models": views})


@app.command()
@cloud_errors("promote")
def promote(
    model: str = typer.Argument(..., help="model id"),
    version: str = typer.Argument(..., help="version to promote, e.g. v3"),
    percent: Optional[float] = typer.Option(None, "--percent", help="offer it to this share of devices as the canary (omit or 100: production)"),
    reason: str = typer.Option("", help="why (kept in the version's history)"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Promote a version to production, or set the canary's rollout percentage (refused if the move is illegal)."""
    import getpass

    from shared.gcp import release
    from shared.lifecycle import IllegalTransition

    open_target(directory)
    try:
        plan = release.promote(model, version, percent, getpass.getuser(), get_settings(), reason)
    except IllegalTransition as exc:
        fail(exc)
    console.print(f"[bold green]{plan.summary}[/]")


@app.command()
@cloud_errors("rollback")
def rollback(
    model: str = typer.Argument(..., help="model id"),
    reason: str = typer.Option("", help="why (kept in the version's history)"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Roll back the canary in rollout, or else production to the version it replaced."""
    import getpass

    from shared.gcp import release
    from shared.lifecycle import IllegalTransition

    open_target(directory)
    try:
        plan = release.rollback(model, getpass.getuser(), get_settings(), reason)
    except IllegalTransition as exc:
        fail(exc)
    console.print(f"[bold yellow]{plan.summary}[/]")


@app.command()
@cloud_errors("runs")
def runs(
    model: Optional[str] = typer.Argument(None, help="only this model (default: every registered model)"),
    limit: int = typer.Option(10, help="newest runs per model"),
    as_json: bool = typer.Option(False, "--json", help=(
        "print one JSON document instead of tables: {runs: [{run_id, model, reason, status, version, stage, created, "
        "seconds, error}]}, each model's newest first; absent values are null")),
    directory: Optional[Path] = StackDir,
) -> None:
    """Training runs, newest first: why each started, how it ended, what it published."""
    from edgeloop import registry_views
    from shared.gcp.clients import firestore_client

    open_target(directory)
    settings = get_settings()
    db = firestore_client(settings.project_id)
    found = []
    for name in [model] if model else registry_views.models(settings):
        recent = registry_views.recent_runs(db, name, limit)
        if as_json:
            found += [registry_views.run_json(run) for run in recent]
        else:
            console.print(registry_views.runs_table(recent, title=f"{name}: runs", model=name))
    if as_json:
        _print_json({"runs": found})


@app.command()
@cloud_errors("report")
def report(
    model: str = typer.Argument("digits", help="model id"),
    output: Path = typer.Option(Path("edgeloop-report.png"), "--output", "-o", help="PNG to write"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Write a PNG: field success per version over time (actions and drift marked), drift scores, accuracy per version."""
    from edgeloop import report as report_png

    open_target(directory)
    data = report_png.collect(model, get_settings())
    path = report_png.draw(data, output)
    numbers = report_png.summary(data)
    for version, row in sorted(numbers["versions"].items()):
        console.print(f"  {version}: {row['success']:.1%} of {row['reports']} reports correct")
    console.print(f"  {numbers['drift_checks']} drift checks ({numbers['drift_detected']} detected), {numbers['events']} events")
    console.print(f"report written to [bold]{path}[/]")


@app.command()
def demo(
    devices: int = typer.Option(10, "--devices", "-n", min=2, max=200, help="simulated devices in the fleet"),
    images: int = typer.Option(8, min=1, help="images each device classifies per round"),
    timeout: float = typer.Option(420.0, help="give up if the loop has not closed after this many seconds"),
    report_path: Path = typer.Option(Path("edgeloop-demo-report.png"), "--report", help="PNG to write"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="stack directory (default: a fresh temporary one)"),
    keep: bool = typer.Option(False, help="leave the demo's stack running afterwards"),
) -> None:
    """The whole loop with no human step: seed, v1, a fleet, a dark room, retrain, canary, promotion, recovery."""
    from edgeloop.demo import run_demo

    try:
        result = run_demo(console, devices=devices, images=images, timeout_s=timeout, directory=directory, keep=keep,
                          report_path=report_path)
    except (EdgeloopError, TimeoutError, RuntimeError) as exc:
        fail(exc)
    if not result.closed:
        fail(TimeoutError(f"the loop did not close within {timeout:.0f} s; see the report and `edgeloop status --dir`"))


@app.command()
def smoke(
    directory: Optional[Path] = StackDir,
    keep: bool = typer.Option(False, help="leave the stack running afterwards"),
) -> None:
    """Upload an image and write a feedback document; show each event reaching its function."""
    from edgeloop.smoke import run_smoke

    directory = stack_directory(directory)
    try:
        with console.status("starting the local stack…"):
            state, started_now = stack.up(get_settings(), directory)
        try:
            with console.status("smoke run: upload → on_upload, feedback → on_feedback…"):
                steps = run_smoke(state)
        finally:
            if started_now and not keep:
                stack.down(directory)
    except (EdgeloopError, TimeoutError) as exc:
        fail(exc)
    console.print(smoke_view(steps))
    console.print("[bold green]smoke run passed[/]")


def smoke_view(steps: list) -> Table:
    """Each step: the function that observed it, how long it took, what was done and the event's id; an object
    name or event id too long for the line folds under itself (fits 80 columns)."""
    table = Table(title="smoke run")
    table.add_column("observed at", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("action and event id", overflow="fold")
    for step in steps:
        table.add_row(step.function, f"{step.seconds:.2f}", f"{step.what}\n[dim]event {step.event_id}[/]")
    return table


@app.command()
@cloud_errors("retrain")
def retrain(
    model: str = typer.Argument(..., help="model id, e.g. digits"),
    note: str = typer.Option("", help="why (kept with the run)"),
    wait: float = typer.Option(30.0, help="seconds to wait for launch_training to pick the request up (0: don't wait)"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Request a training run now, through the same path as every automatic trigger."""
    import getpass

    from shared.gcp import retrain_requests, runs, training_lock
    from shared.retrain import manual_request

    open_target(directory)
    settings = get_settings()
    request = manual_request(model, who=f"operator:{getpass.getuser()}", note=note)
    message_id = retrain_requests.publish_request(request, settings)
    console.print(f"retrain requested for [bold]{model}[/] (message {message_id}, cause {request.cause})")
    deadline = time.monotonic() + wait
    with console.status("waiting for launch_training…"):
        while time.monotonic() < deadline:
            state = training_lock.training_state(model, settings)
            run_id = (state.get("causes") or {}).get(request.cause)
            if run_id:
                run = runs.load_run(run_id, settings)
                console.print(f"run [bold]{run_id}[/] ({run['status']}, trains {run['version']})")
                return
            if any(p["cause"] == request.cause for p in state.get("pending") or []):
                console.print("a run is active: the request is recorded and will be served after it")
                return
            time.sleep(0.5)
    if wait:
        fail(TimeoutError(f"launch_training did not pick the request up within {wait:.0f}s"))


@app.command("dead-letters")
@cloud_errors("dead-letters")
def dead_letters(
    replay: bool = typer.Option(False, help="publish messages whose deliveries ran out to their topic again"),
    directory: Optional[Path] = StackDir,
) -> None:
    """What the dead-letter topics hold: malformed messages (kept, with the reason) and messages whose
    deliveries ran out while a function was down (replayable once it is back)."""
    from shared.gcp.dead_letters import drain

    open_target(directory)
    console.print(dead_letters_view(drain(get_settings(), replay=replay), replay))


def dead_letters_view(letters: list, replay: bool) -> Group:
    """One row per message (fits 80 columns), then why each malformed one was refused, in full."""
    table = Table(title=f"dead letters ({len(letters)})")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("topic", overflow="fold")
    table.add_column("message", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("action", no_wrap=True)
    reasons = Table.grid(padding=(0, 1))
    reasons.add_column(justify="right", no_wrap=True)
    reasons.add_column()
    for number, letter in enumerate(letters, 1):
        action = "replayed" if replay and not letter.malformed else "kept"
        table.add_row(str(number), letter.topic, letter.message_id, "malformed" if letter.malformed else "ran out", action)
        if letter.malformed:
            reasons.add_row(f"{number}", f"malformed: {letter.malformed}")
    shown: list = [table]
    if reasons.row_count:
        shown += ["[bold]why each malformed message was refused[/]", reasons]
    if any(not letter.malformed for letter in letters):
        shown.append("[dim]ran out: its deliveries ran out while a function was down (--replay publishes it again)[/]")
    return Group(*shown)


@app.command()
def seed(
    model: str = typer.Argument("digits", help="model id to seed"),
    train: bool = typer.Option(True, help="request a training run once every image is registered, and follow it"),
    limit: Optional[int] = typer.Option(None, help="seed only the first N digits (quick checks)"),
    directory: Optional[Path] = StackDir,
) -> None:
    """Load the embedded digits dataset through the normal upload path and train the first version."""
    from edgeloop.seed import seed_dataset, wait_for_outcome

    connect(directory)
    settings = get_settings()
    outcome = seed_dataset(model, settings, console, train=train, limit=limit)
    console.print(f"seeded [bold]{model}[/]: {outcome.images} images ({outcome.uploaded} uploaded, "
                  f"{outcome.registered} registered) in {outcome.seconds:.1f} s")
    if outcome.run_id:
        run = wait_for_outcome(outcome.run_id, settings, console)
        result = run.get("result") or {}
        console.print(f"run [bold]{outcome.run_id}[/]: {run['status']} {result.get('version', '')} "
                      f"{result.get('stage', '')} {run.get('error') or ''}")
        if run["status"] == "failed":
            raise typer.Exit(1)


if __name__ == "__main__":
    app()
