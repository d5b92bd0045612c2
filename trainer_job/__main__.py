"""``python -m trainer_job --model M --run-id R``: the container entry point, and what the local launcher runs."""

from __future__ import annotations

import os
from enum import Enum
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: keep the progress lines readable

import typer  # noqa: E402

from shared.config import get_settings  # noqa: E402
from trainer_job.backbone import WEIGHTS  # noqa: E402 - no TensorFlow in it

Weights = Enum("Weights", {choice.upper(): choice for choice in WEIGHTS}, type=str)  # the choices typer offers


def cli(
    model: str = typer.Option(..., help="model id, e.g. digits"),
    run_id: str = typer.Option(..., "--run-id", help="the runs/{id} document launch_training created"),
    manifest: Optional[str] = typer.Option(None, help="object name of an earlier run's manifest.json, to retrain on exactly that data"),
    seed: int = typer.Option(0, help="seed of the split, augmentation and training"),
    weights: Optional[Weights] = typer.Option(
        None, help="what the backbone starts from, over the model's TrainConfig: imagenet (pretrained; the run fails "
                   "if they cannot be loaded) or none (random weights, for machines without internet)"),
) -> None:
    from trainer_job import run_training  # TensorFlow loads here, after the arguments are known to be valid

    raise typer.Exit(run_training(model, run_id, get_settings(), manifest, seed, weights.value if weights else None))


if __name__ == "__main__":
    typer.run(cli)
