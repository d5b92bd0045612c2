"""``edgeloop bench``: measure, compare side by side in one run, and rewrite BENCHMARKS.md."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from edgeloop.benchmarks import write_section

bench_app = typer.Typer(help="Run benchmarks and rewrite their sections of BENCHMARKS.md.", no_args_is_help=True)
console = Console(stderr=True)


def _check(passed: bool) -> str:
    return "✅" if passed else "❌"


def _full_run_on_a_fresh_stack() -> dict:
    """Seed the digits into a throwaway local stack, then time one real trainer run, snapshot → publish."""
    from edgeloop.localstack import stack
    from edgeloop.seed import seed_dataset, wait_for_outcome
    from shared import gcp_training
    from shared.config import Settings
    from shared.retrain import manual_request

    with tempfile.TemporaryDirectory(prefix="edgeloop-bench-") as directory:
        settings = Settings(stack_dir=Path(directory))
        state, _ = stack.up(settings, Path(directory))
        saved = dict(os.environ)
        os.environ.update({**state.client_env(), "EDGELOOP_STACK_DIR": directory})
        try:
            seeded = seed_dataset("digits", settings, console, train=False)
            outcome = gcp_training.launch(manual_request("digits", who="edgeloop bench"), settings)
            run = wait_for_outcome(outcome.run_id, settings, console)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            stack.down(Path(directory))
    from datetime import datetime

    from trainer_job.run import STAGES

    recorded = run.get("stages") or {}
    stages = {name: recorded[name].get("seconds", 0.0) for name in STAGES if name in recorded}
    wall = datetime.fromisoformat(run["ended"]) - datetime.fromisoformat(run["created"])
    return {"status": run["status"], "stages": stages, "seconds": round(sum(stages.values()), 1),
            "wall_seconds": round(wall.total_seconds(), 1), "seed_seconds": round(seeded.seconds, 1),
            "images": seeded.images}


@bench_app.command("train")
def bench_train(seed: int = typer.Option(0, help="split and training seed")) -> None:
    """The trainer's int8 model vs scikit-learn SVC on one split, and a full run on the local stack."""
    from trainer_job import bench_train as measure

    r = measure.run(seed)
    full = _full_run_on_a_fresh_stack()
    under = full["wall_seconds"] < measure.MAX_WALL_SECONDS
    stage_list = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in full["stages"].items())
    markdown = f"""## Trainer (`edgeloop bench train`)

Embedded digits, stratified split (seed {seed}): {r['holdout_images']} holdout images; the drifted holdout is the
same images dimmed and noisy. SVC and the CNN are measured side by side in this run.

| model | holdout accuracy | drifted holdout accuracy | size |
|---|---|---|---|
| scikit-learn SVC (RBF) | {r['svc_accuracy']:.4f} | {r['svc_drifted_accuracy']:.4f} | – |
| Keras CNN, float TFLite | {r['float_accuracy']:.4f} | {r['float_drifted_accuracy']:.4f} | {r['float_bytes'] / 1024:.0f} KiB |
| Keras CNN, int8 TFLite (published) | {r['int8_accuracy']:.4f} | {r['int8_drifted_accuracy']:.4f} | {r['int8_bytes'] / 1024:.0f} KiB |

| target (issue 5) | measured | |
|---|---|---|
| int8 within {measure.MAX_POINTS_BELOW_SVC} points of SVC | {r['int8_minus_svc_points']:+.2f} points | {_check(r['int8_minus_svc_points'] >= -measure.MAX_POINTS_BELOW_SVC)} |
| int8 at most {measure.MAX_POINTS_BELOW_FLOAT} point below float | {r['int8_minus_float_points']:+.2f} points | {_check(r['int8_minus_float_points'] >= -measure.MAX_POINTS_BELOW_FLOAT)} |
| int8 file ≥ {measure.MIN_SIZE_RATIO}× smaller than float | {r['size_ratio']:.2f}× | {_check(r['size_ratio'] >= measure.MIN_SIZE_RATIO)} |
| whole run, snapshot → publish, under {measure.MAX_WALL_SECONDS:.0f} s | {full['seconds']:.1f} s of stages, {full['wall_seconds']:.1f} s wall ({full['status']}) | {_check(under and full['status'] == 'published')} |

Full run on the local stack ({full['images']} images seeded through on_upload in {full['seed_seconds']:.1f} s first):
{stage_list}; {full['wall_seconds']:.1f} s from the run's creation by launch_training to its end, including
starting the trainer process and loading TensorFlow. LiteRT latency of the int8 model: {r['latency_us']:.0f} µs per image on one core.
Best hyperparameters: {r['hyperparameters']}.
"""
    path = write_section("train", markdown)
    console.print(markdown)
    console.print(f"wrote {path}")
