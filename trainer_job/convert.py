"""Keras → TFLite (float and full-integer), and tflite-support metadata in and out.

The published model is full-integer: uint8 RGB in (1×H×W×3, the raw pixels,
because the model rescales them itself), uint8 probabilities out. Its tensors
declare a batch of 1, which is what browsers' LiteRT.js needs (it refuses a
dynamic batch), while the graph still takes any batch (see ``with_fixed_batch``). Its metadata
carries the labels file, the input normalisation, and the model's name,
version and description, which is what MediaPipe Tasks and the TFLite Task
library read.

Only the ``tensorflow_lite_support.metadata.python`` modules are imported:
``import tflite_support`` fails with the protobuf TensorFlow needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
import zipfile
from typing import Any, Iterator, Sequence

import numpy as np

from client_sdk.runtime import LABELS_FILE  # the packed labels file clients read: one name for writer and reader

REPRESENTATIVE_SAMPLES = 300  # enough to calibrate every activation range on digits
# The model takes raw 0..255 pixels and rescales inside, so clients must not
# normalise: mean 0, std 1 is the identity in the metadata's (x - mean) / std.
NORM_MEAN = (0.0,)
NORM_STD = (1.0,)
PACKED_FILE_TIME = (2020, 1, 1, 0, 0, 0)  # any fixed date a ZIP entry can hold (they start in 1980)
PUBLISHED_BATCH = 1  # the batch the published model's input and output declare: one image, as clients feed it
DYNAMIC = -1  # a shape signature's "any size"


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    # The converter exports a SavedModel first and prints its signature to
    # stdout, which would bury the trainer's progress lines.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def to_float_tflite(model) -> bytes:
    """The float32 model as TFLite: the size and accuracy reference for int8."""
    import tensorflow as tf

    with _quiet_stdout():
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def to_int8_tflite(model, representative_images: np.ndarray, samples: int = REPRESENTATIVE_SAMPLES) -> bytes:
    """Full-integer TFLite: int8 weights and activations, uint8 RGB input and output.

    ``representative_images`` (uint8 N×H×W×3, training images) calibrate the
    activation ranges; uint8 input is what MediaPipe's ImageClassifier feeds.
    """
    import tensorflow as tf

    if len(representative_images) == 0:
        raise ValueError("full-integer quantization needs representative images")
    calibration = np.asarray(representative_images[:samples], dtype=np.float32)

    def representative_dataset():
        for image in calibration:
            yield [image[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # Refuse float fallbacks: a kernel left in float would not be "full-integer".
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    with _quiet_stdout(), warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the input is raw uint8
        # pixels and the converter derives its identity quantization (scale 1,
        # zero point 0) from the Rescaling layer; nothing is missing.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return with_fixed_batch(bytes(converter.convert()))


def with_fixed_batch(tflite_bytes: bytes, batch: int = PUBLISHED_BATCH) -> bytes:
    """The model with its inputs' and outputs' declared batch set to ``batch`` where it was dynamic.

    The converter declares a Keras model's batch as any (shape signature -1).
    LiteRT.js refuses to run a model on a tensor whose shape differs from the
    declared one, so with -1 a browser cannot feed it at all. Only the
    declared signatures change, in place (4 bytes per tensor): the graph,
    whose reshapes keep -1, still takes any batch, so LiteRT's interpreter
    still scores batches after a resize (the trainer's evaluation, the
    SDK's ``batch_scores``). A signature with another fixed batch is refused.
    """
    from tensorflow_lite_support.metadata import schema_py_generated as schema

    buffer = bytearray(tflite_bytes)  # the numpy views below write through to it
    model = schema.Model.GetRootAs(buffer, 0)
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for index in (*subgraph.InputsAsNumpy().tolist(), *subgraph.OutputsAsNumpy().tolist()):
            tensor = subgraph.Tensors(index)
            signature = tensor.ShapeSignatureAsNumpy()
            if isinstance(signature, int) or len(signature) == 0:
                continue  # no signature: the shape is fixed as it stands
            if signature[0] not in (DYNAMIC, batch):
                raise ValueError(f"tensor {tensor.Name().decode()} declares batch {signature[0]}, not {batch} or any")
            signature[0] = batch
    return bytes(buffer)


def declared_input_shape(tflite_bytes: bytes) -> tuple[int, ...]:
    """The first input's shape as the file declares it (-1 for any size), which is what LiteRT.js checks."""
    from tensorflow_lite_support.metadata import schema_py_generated as schema

    subgraph = schema.Model.GetRootAs(bytearray(tflite_bytes), 0).Subgraphs(0)
    tensor = subgraph.Tensors(int(subgraph.InputsAsNumpy()[0]))
    signature = tensor.ShapeSignatureAsNumpy()
    return tuple(int(d) for d in (tensor.ShapeAsNumpy() if isinstance(signature, int) or len(signature) == 0 else signature))


def with_metadata(tflite_bytes: bytes, labels: Sequence[str], name: str, version: str, description: str) -> bytes:
    """The model with tflite-support image-classifier metadata and its labels file packed in.

    The same input/output metadata ``MetadataWriter.create_for_inference`` writes
    (RGB image, normalisation, labels on the output), plus the name, version and
    description, which ``create_for_inference`` always leaves at its defaults.
    """
    from tensorflow_lite_support.metadata import metadata_schema_py_generated as schema
    from tensorflow_lite_support.metadata.python.metadata_writers import image_classifier, metadata_info, writer_utils

    if not labels:
        raise ValueError("an image classifier needs at least one label")
    if any("\n" in label or not label for label in labels):
        raise ValueError("labels must be non-empty single lines (one per line in the labels file)")
    with tempfile.TemporaryDirectory() as directory:
        labels_path = os.path.join(directory, LABELS_FILE)
        with open(labels_path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(labels) + "\n")
        input_md = metadata_info.InputImageTensorMd(
            name=image_classifier.INPUT_NAME,
            description=image_classifier.INPUT_DESCRIPTION,
            norm_mean=list(NORM_MEAN),
            norm_std=list(NORM_STD),
            color_space_type=schema.ColorSpaceType.RGB,
            tensor_type=writer_utils.get_input_tensor_types(tflite_bytes)[0],
        )
        output_md = metadata_info.ClassificationTensorMd(
            name=image_classifier.OUTPUT_NAME,
            description=image_classifier.OUTPUT_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=labels_path)],
            tensor_type=writer_utils.get_output_tensor_types(tflite_bytes)[0],
        )
        writer = image_classifier.MetadataWriter.create_from_metadata_info(
            bytearray(tflite_bytes),
            general_md=metadata_info.GeneralMd(name=name, version=version, description=description),
            input_md=input_md,
            output_md=output_md,
        )
        return _pin_packed_file_times(bytes(writer.populate()))


def _pin_packed_file_times(model: bytes) -> bytes:
    """Re-pack the zipped associated files with a fixed timestamp.

    tflite-support appends the labels file as a ZIP entry stamped with the
    current time, so the same model and labels would give different bytes
    (and sha256) every second. The flatbuffer before the ZIP is left untouched.
    """
    with zipfile.ZipFile(io.BytesIO(model)) as packed:
        entries = [(info, packed.read(info)) for info in packed.infolist()]
    flatbuffer = model[: min(info.header_offset for info, _ in entries)]
    out = io.BytesIO(flatbuffer)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as repacked:
        for info, data in entries:
            repacked.writestr(zipfile.ZipInfo(info.filename, date_time=PACKED_FILE_TIME), data, compress_type=info.compress_type)
    return out.getvalue()


def read_metadata(tflite_bytes: bytes) -> dict[str, Any]:
    """What a client's metadata reader sees: labels, name, version, description, normalisation."""
    from tensorflow_lite_support.metadata.python import metadata

    displayer = metadata.MetadataDisplayer.with_model_buffer(bytearray(tflite_bytes))
    document = json.loads(displayer.get_metadata_json())
    subgraph = document["subgraph_metadata"][0]
    normalisation = _normalisation(subgraph["input_tensor_metadata"][0])
    output = subgraph["output_tensor_metadata"][0]
    label_file = next(file["name"] for file in output.get("associated_files", []) if file.get("type") == "TENSOR_AXIS_LABELS")
    labels = displayer.get_associated_file_buffer(label_file).decode("utf-8").splitlines()
    return {
        "name": document.get("name"),
        "version": document.get("version"),
        "description": document.get("description"),
        "labels": labels,
        "labels_file": label_file,
        "normalisation": normalisation,
        "packed_files": displayer.get_packed_associated_file_list(),
    }


def _normalisation(input_tensor: dict[str, Any]) -> dict[str, list[float]]:
    for unit in input_tensor.get("process_units", []):
        if unit.get("options_type") == "NormalizationOptions":
            return {"mean": unit["options"]["mean"], "std": unit["options"]["std"]}
    return {}
