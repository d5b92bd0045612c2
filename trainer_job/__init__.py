"""The training container: snapshot → train → evaluate → gate → convert → publish.

The public surface, all that code outside this package (the ``edgeloop`` CLI among it) uses:

* ``run_training(model, run_id, settings, manifest_object=None, seed=0)``: one training run, what
  ``python -m trainer_job`` (the container's entry point) runs; returns the process's exit code;
* ``RUN_STAGES``: the stages a run records on its ``runs/{id}`` document, in order;
* ``TrainConfig``, ``AugmentConfig`` and ``Hyperparameters`` (one trial of its grid): a model's training settings, read and written with
  ``load_train_config`` and ``save_train_config`` (``models/{model}/control/trainer``);
* ``Manifest``: the exact images a version was trained on, as stored at ``models/{model}/{version}/manifest.json``
  (``Manifest.from_json``; ``edgeloop dataset export`` writes them back out);
* ``bench_train``: the int8 model against scikit-learn's SVC (also ``python -m trainer_job.bench_train``);
* ``bench_backbone``: MobileNetV3-Small against the small CNN on generated shapes (also
  ``python -m trainer_job.bench_backbone``);
* ``bench_scale``: memory and speed as the dataset grows, streamed vs decoded into memory (also
  ``python -m trainer_job.bench_scale``).

The names resolve on first use, so importing the package stays cheap and ``python -m trainer_job``
checks its arguments (and quiets TensorFlow's logging) before the training code loads.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {  # name -> (module, attribute)
    "run_training": ("trainer_job.run", "main"),
    "RUN_STAGES": ("trainer_job.run", "STAGES"),
    "load_train_config": ("trainer_job.run", "load_train_config"),
    "save_train_config": ("trainer_job.run", "save_train_config"),
    "TrainConfig": ("trainer_job.pipeline", "TrainConfig"),
    "AugmentConfig": ("trainer_job.augment", "AugmentConfig"),
    "Hyperparameters": ("trainer_job.model", "Hyperparameters"),
    "Manifest": ("trainer_job.snapshot", "Manifest"),
}
__all__ = [*_PUBLIC, "bench_train", "bench_backbone", "bench_scale"]

if TYPE_CHECKING:
    from trainer_job import bench_backbone, bench_scale, bench_train
    from trainer_job.augment import AugmentConfig
    from trainer_job.model import Hyperparameters
    from trainer_job.pipeline import TrainConfig
    from trainer_job.run import STAGES as RUN_STAGES
    from trainer_job.run import load_train_config, save_train_config
    from trainer_job.run import main as run_training
    from trainer_job.snapshot import Manifest


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        # Not a re-export: ``from trainer_job import bench_train`` then imports the submodule.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
