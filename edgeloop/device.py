"""``edgeloop device simulate``: a fleet of simulated devices running client_sdk against the local stack.

Each device is a thread with its own device id and state directory
(``{stack dir}/devices/{device id}``, kept between runs like a phone's app
data). It is registered the way an operator registers one (a custom token minted
with firebase-admin, claims ``role: device`` and its model) and signs in with it
through the stack's Firebase Auth emulator; its user id is the one Auth gives it. It installs the model its rollout bucket gets, classifies digits
(optionally dimmed: the low-light drift the loop has to learn), captures hard
cases, and reports feedback the way a user would: now and then it says whether
a prediction was right, and for a share of the wrong ones it confirms the true
label, which turns that capture into a labelled training image. At the end of
its session it reports its telemetry (version, predictions, latency) to its own
device record, which ``edgeloop status`` counts.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich import box
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeloop.target import connect

app = typer.Typer(help="Simulated devices running the client SDK.", no_args_is_help=True)


def low_light(pixels: np.ndarray, kept: float) -> np.ndarray:
    """The image as a dim room shows it: every pixel at ``kept`` of its brightness."""
    return np.clip(np.rint(pixels.astype(np.float32) * kept), 0, 255).astype(np.uint8)


@dataclass
class DeviceTally:
    device_id: str
    version: str = "-"
    predictions: int = 0
    correct: int = 0
    captured: int = 0
    feedback: int = 0
    confirmed: int = 0
    delivered: int = 0
    waiting: int = 0
    document_reads: int = 0
    model_bytes: int = 0
    update: str = ""
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def load_public_key(path: Path) -> str:
    from shared import integrity

    try:
        pem = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise typer.BadParameter(f"no key at {path}: pass --public-key with the model signing key's public PEM") from None
    return integrity.public_key_pem(pem) if "PRIVATE KEY" in pem else pem


def run_device(index: int, args: dict, tally: DeviceTally, advance) -> None:
    """One device session: check for an update, classify ``images`` digits, report, flush (errors land on the tally)."""
    from client_sdk import ClientError, DownloadPolicy, EdgeloopClient
    from client_sdk.auth import AuthEndpoints
    from edgeloop import identities

    rng = np.random.default_rng([args["seed"], index])
    try:
        session = identities.signed_in_device(
            tally.device_id, args["model"], args["project_id"],
            args.get("auth_endpoints") or AuthEndpoints.from_client_env(dict(os.environ)))  # connect() set it
        client = EdgeloopClient(
            args["model"], uid=session.uid, device_id=tally.device_id, directory=args["devices_dir"] / tally.device_id,
            public_key_pem=args["public_key"], endpoints=args["endpoints"],
            id_token=session.id_token, settings=args["settings"],
            policy=DownloadPolicy.LATEST, seed=int(rng.integers(2**31)), device_class="edgeloop-simulator",
        )
        tally.update = client.check_for_update().status.value
        if client.active is None:
            raise ClientError("no verified model to run (is one published? try `edgeloop retrain`)")
        tally.version = client.active.version
        for _ in range(args["images"]):
            digit = args["digits"][int(rng.integers(len(args["digits"])))]
            pixels = low_light(digit.rgb, args["brightness"]) if args["brightness"] < 1 else digit.rgb
            prediction = client.classify(pixels)
            right = prediction.label == digit.label
            tally.predictions += 1
            tally.correct += right
            tally.captured += prediction.capture is not None
            if rng.random() < args["feedback_rate"]:
                # A user corrects wrong answers; in a labelling drive (the demo) they also confirm right ones.
                confirms = (not right or args.get("confirm_correct", False)) and rng.random() < args["confirm_rate"]
                client.report(prediction, correct=right, true_label=digit.label if confirms else None)
                tally.feedback += 1
                tally.confirmed += confirms
            advance()
        report = client.flush(end_period=True)  # the session's telemetry too: its version, predictions, latency
        tally.delivered, tally.waiting = report.delivered, report.waiting
        tally.document_reads, tally.model_bytes = client.transport.stats.document_reads, client.transport.stats.model_bytes
    except ClientError as exc:
        tally.error = str(exc)


def run_fleet(args: dict, tallies: list[DeviceTally], advance=lambda: None) -> None:
    """One session per device, all at once (a thread each, as phones run in parallel); returns when all are done."""
    threads = [threading.Thread(target=run_device, args=(i, args, t, advance), daemon=True) for i, t in enumerate(tallies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@app.command()
def simulate(
    devices: int = typer.Option(8, "--devices", "-n", min=1, max=500, help="how many devices"),
    images: int = typer.Option(40, min=1, help="images each device classifies"),
    model: str = typer.Option("digits", help="model id"),
    low_light_brightness: float = typer.Option(1.0, "--low-light", min=0.05, max=1.0,
                                               help="share of brightness kept (e.g. 0.12: a dark room); 1 means no drift"),
    feedback_rate: float = typer.Option(0.3, min=0, max=1, help="share of predictions the user gives feedback on"),
    confirm_rate: float = typer.Option(0.5, min=0, max=1, help="share of reported wrong predictions the user corrects with the true label"),
    public_key: Optional[Path] = typer.Option(None, help="model signing key (public PEM, or the dev private key); default: the stack's signing-key.pem"),
    seed: int = typer.Option(0, help="makes the run repeatable"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="State directory of the local stack"),
) -> None:
    """Run N simulated devices against the local stack and summarise what they saw and sent."""
    from client_sdk import Endpoints
    from client_sdk.auth import AuthEndpoints
    from shared.config import get_settings
    from shared.digits import load_digits_rgb

    console = Console()
    state = connect(directory)
    settings = get_settings()
    args = {
        "model": model, "images": images, "brightness": low_light_brightness, "feedback_rate": feedback_rate,
        "confirm_rate": confirm_rate, "seed": seed, "project_id": state.project_id, "settings": settings.client,
        "public_key": load_public_key(public_key or state.path / "signing-key.pem"),
        "endpoints": Endpoints.from_client_env(state.client_env()), "devices_dir": state.path / "devices",
        "auth_endpoints": AuthEndpoints.from_client_env(state.client_env()),
        "digits": load_digits_rgb(),
    }
    tallies = [DeviceTally(f"sim-device-{i:03d}") for i in range(devices)]
    drift = f", low light {low_light_brightness:.0%}" if low_light_brightness < 1 else ""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"{devices} devices × {images} images{drift}", total=devices * images)
        lock = threading.Lock()

        def advance() -> None:
            with lock:
                progress.advance(task)

        run_fleet(args, tallies, advance)
    console.print(_summary(tallies))
    failed = [t for t in tallies if t.error]
    for tally in failed:
        console.print(f"[red]{tally.device_id}[/]: {tally.error}")
    if failed:
        raise typer.Exit(1)


@app.command()
def register(
    device_id: str = typer.Argument(..., help="the device's id ([A-Za-z0-9_-], up to 64)"),
    model: str = typer.Option("digits", help="the model the device may write feedback and captures for"),
    directory: Optional[Path] = typer.Option(None, "--dir", help="State directory of the local stack"),
) -> None:
    """Mint a custom token for a device (firebase-admin; claims role=device and its model): the device exchanges it
    for ID tokens with signInWithCustomToken. Against the local stack's Auth emulator; production signs with a
    service account."""
    from edgeloop import identities

    state = connect(directory)
    try:
        token = identities.device_token(device_id, model, state.project_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    Console(stderr=True).print(f"uid {identities.device_uid(device_id)}, claims {identities.device_claims(model)}")
    print(token)


SUMMARY_COLUMNS = (  # header, what it counts (the legend under the table)
    ("device", ""), ("ver", "model version run"), ("acc", "predictions correct"), ("capt", "images captured"),
    ("fb", "feedback reports"), ("conf", "of them with the true label"), ("sent", "outbox items delivered"),
    ("queue", "still queued"), ("reads", "document reads"), ("KiB", "model downloaded"),
)


def _summary(tallies: list[DeviceTally]) -> Group:
    """Per device and for the fleet: what it ran, saw and sent (fits 80 columns: compact, a legend below)."""
    table = Table(title="simulated devices", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                  pad_edge=False, show_edge=False)
    for header, _ in SUMMARY_COLUMNS:
        # The totals' version list ("v1, v2") may wrap; a device id, version or number never does.
        table.add_column(header, no_wrap=header != "ver", justify="left" if header in ("device", "ver") else "right")

    def row(name, version, t):
        accuracy = f"{t['correct'] / t['predictions']:.1%}" if t["predictions"] else "-"
        return (name, version, accuracy, str(t["captured"]), str(t["feedback"]), str(t["confirmed"]),
                str(t["delivered"]), str(t["waiting"]), str(t["document_reads"]), f"{t['model_bytes'] / 1024:.0f}")

    keys = ("predictions", "correct", "captured", "feedback", "confirmed", "delivered", "waiting", "document_reads", "model_bytes")
    for t in tallies:
        table.add_row(*row(t.device_id, t.version, {k: getattr(t, k) for k in keys}))
    totals = {k: sum(getattr(t, k) for t in tallies) for k in keys}
    table.add_section()
    table.add_row(*row(f"all {len(tallies)}", ", ".join(sorted({t.version for t in tallies})), totals), style="bold")
    legend = " · ".join(f"{header}: {meaning}" for header, meaning in SUMMARY_COLUMNS if meaning)
    updates = Counter(t.update or "error" for t in tallies)
    return Group(table, f"[dim]{legend}[/]", "update check: " + ", ".join(f"{n} {status}" for status, n in sorted(updates.items())))
