"""The device a run trains on, as TensorFlow sees it: logged and recorded on the run.

Keras places a model's operations on the first GPU TensorFlow can use, else on the CPU. A GPU that is
attached but unusable (the CPU build of TensorFlow, a missing driver or CUDA library) leaves training on
the CPU without an error, so the run says which device an operation really ran on, next to every device
TensorFlow lists and the image variant (``EDGELOOP_TRAINER_VARIANT``, set by trainer_job/Dockerfile).
"""

from __future__ import annotations

import os
from typing import Any

VARIANT_ENV = "EDGELOOP_TRAINER_VARIANT"


def training_device() -> dict[str, Any]:
    """{"device": the device an operation ran on, "kind": "GPU" or "CPU", "physical": every device
    TensorFlow lists, "gpus": each GPU's name and compute capability, "cuda_build", "tensorflow", "variant"}."""
    import tensorflow as tf

    physical = tf.config.list_physical_devices()
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        gpus.append({"device": gpu.name, "name": details.get("device_name", ""),
                     "compute_capability": ".".join(map(str, capability)) if capability else ""})
    probe = tf.reduce_sum(tf.ones((2, 2)))  # placed as Keras places the model's first operations
    device = probe.device.split("/")[-1].removeprefix("device:")  # e.g. "GPU:0"
    return {
        "device": device,
        "kind": device.split(":")[0],
        "physical": [f"{d.device_type}:{d.name.split(':')[-1]}" for d in physical],
        "gpus": gpus,
        "cuda_build": bool(tf.test.is_built_with_cuda()),
        "tensorflow": tf.__version__,
        "variant": os.environ.get(VARIANT_ENV, "local"),
    }


def describe(device: dict[str, Any]) -> str:
    gpus = ", ".join(f"{g['name'] or g['device']}" for g in device["gpus"]) or "no GPU visible"
    return f"training on {device['device']} ({gpus}; TensorFlow {device['tensorflow']}, {device['variant']} image)"
