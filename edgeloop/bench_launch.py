"""Benchmark: a retrain request → its trainer started, over many requests, on the local stack.

Each request is an operator's (``edgeloop retrain``'s path: published to launch_training's topic, pushed to
the function, decided under the training lock, the trainer started by the launcher) for a model registered
with no images, so its trainer ends at once (no images to snapshot) and frees the lock for the next
request; manual requests wait for no cooldown. What is timed is the product's latency alone: from the
request's ``requested_at`` to the run's ``started``, both recorded on the run document.
"""

from __future__ import annotations

import time
from rich.console import Console
from rich.progress import Progress

from edgeloop.loop_timing import request_to_start_s
from shared import launch_rules
from shared.config import Settings

PROBE_MODEL = "launch-probe"
PROBE_LABELS = ("a", "b")


def _wait_run(model: str, cause: str, settings: Settings, timeout_s: float) -> dict:
    """The run that served ``cause``, once it ended (the lock is free again)."""
    from shared.gcp import runs, training_lock

    deadline = time.monotonic() + timeout_s
    run_id = None
    while time.monotonic() < deadline:
        run_id = run_id or (training_lock.training_state(model, settings).get("causes") or {}).get(cause)
        if run_id:
            run = runs.load_run(run_id, settings)
            if run.get("status") in launch_rules.RunStatus.FINAL:
                return run
        time.sleep(0.1)
    raise TimeoutError(f"no finished run for {cause} within {timeout_s:.0f} s")


def request_to_start(settings: Settings, console: Console, requests: int = 20, timeout_s: float = 120.0) -> list[float]:
    """Seconds from each request to its trainer's start, one request at a time."""
    from shared.gcp import model_registry, retrain_requests
    from shared.retrain import manual_request

    model_registry.register_model(PROBE_MODEL, PROBE_LABELS, settings)
    finished = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("retrain request → trainer started", total=requests)
        for index in range(requests):
            request = manual_request(PROBE_MODEL, who="edgeloop bench", note=f"launch probe {index}")
            retrain_requests.publish_request(request, settings)
            finished.append(_wait_run(PROBE_MODEL, request.cause, settings, timeout_s))
            progress.advance(task)
    waits = request_to_start_s(finished)
    if len(waits) != requests:
        raise RuntimeError(f"{requests - len(waits)} of {requests} runs recorded no start")
    return waits

