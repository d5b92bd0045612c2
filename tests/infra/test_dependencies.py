"""The pinned set really works together: TensorFlow, LiteRT and tflite-support's metadata tools in one venv."""

import importlib.metadata
from pathlib import Path

from packaging.version import Version


def test_tensorflow_litert_and_tflite_support_metadata_import_together():
    import ai_edge_litert.interpreter  # noqa: F401
    import tensorflow as tf
    from tensorflow_lite_support.metadata.python import metadata  # noqa: F401
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier  # noqa: F401

    assert Version(tf.__version__) >= Version("2.21")


def test_protobuf_is_the_one_tensorflow_needs_despite_tflite_supports_pin():
    assert Version(importlib.metadata.version("protobuf")) >= Version("6")
    assert importlib.metadata.version("tflite-support") == "0.4.4"


def test_cloud_clients_and_functions_framework_are_installed_at_the_pinned_versions():
    pins = {}
    for line in (Path(__file__).parents[2] / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name] = version
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name
