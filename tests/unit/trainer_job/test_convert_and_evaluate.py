"""The converted model loads and classifies the way clients will run it: LiteRT, MediaPipe, metadata readers."""

import numpy as np
import pytest

from client_sdk.runtime import LiteRTClassifier
from shared.digits import LABELS
from trainer_job import convert, evaluate
from trainer_job.model import Hyperparameters, fit

QUICK = Hyperparameters(epochs=4)  # enough to classify digits well; the real grid trains longer


@pytest.fixture(scope="module")
def keras_model(digits):
    return fit(digits.train, len(LABELS), QUICK, seed=0)


@pytest.fixture(scope="module")
def float_bytes(keras_model):
    return convert.to_float_tflite(keras_model)


@pytest.fixture(scope="module")
def int8_bytes(keras_model, digits):
    return convert.to_int8_tflite(keras_model, digits.train.images)


@pytest.fixture(scope="module")
def published(int8_bytes):
    return convert.with_metadata(int8_bytes, LABELS, "digits", "v7", "Handwritten digits, 32x32 RGB")


def test_int8_model_takes_one_uint8_rgb_image_and_returns_uint8_scores(published):
    lite = evaluate.LiteModel(published)
    assert lite.input_shape == (1, 32, 32, 3)
    assert lite.input_dtype == np.uint8 and lite.output_dtype == np.uint8


def test_the_published_model_declares_a_batch_of_one_and_its_graph_still_takes_any_batch(float_bytes, int8_bytes, published, digits):
    """LiteRT.js (browsers) runs only the declared shape: the int8 file says batch 1, not -1 (any), as converted."""
    assert convert.declared_input_shape(float_bytes) == (-1, 32, 32, 3)  # what the converter declares
    assert convert.declared_input_shape(int8_bytes) == convert.declared_input_shape(published) == (1, 32, 32, 3)
    fixed_float = convert.with_fixed_batch(float_bytes)
    assert len(fixed_float) == len(float_bytes)  # only the signatures changed, in place
    assert sum(a != b for a, b in zip(fixed_float, float_bytes)) <= 2 * 4  # one int32 per input and output
    assert convert.with_fixed_batch(published) == published  # already batch 1
    images = digits.holdout.images[:6]
    assert np.array_equal(evaluate.LiteModel(fixed_float).probabilities(images), evaluate.LiteModel(float_bytes).probabilities(images))


def test_a_model_declaring_another_fixed_batch_is_refused(published):
    with pytest.raises(ValueError, match="declares batch 1, not 2"):
        convert.with_fixed_batch(published, batch=2)


def test_float_model_takes_float_pixels(float_bytes):
    assert evaluate.LiteModel(float_bytes).input_dtype == np.float32


def test_int8_file_is_at_least_3_5_times_smaller_than_float(float_bytes, int8_bytes):
    assert len(float_bytes) / len(int8_bytes) >= 3.5


def test_metadata_reads_back_labels_name_version_description_and_normalisation(published):
    metadata = convert.read_metadata(published)
    assert metadata["labels"] == list(LABELS)
    assert (metadata["name"], metadata["version"], metadata["description"]) == ("digits", "v7", "Handwritten digits, 32x32 RGB")
    assert metadata["normalisation"] == {"mean": [0.0], "std": [1.0]}  # raw pixels in: the model rescales itself
    assert metadata["packed_files"] == [convert.LABELS_FILE]


def test_metadata_needs_sensible_labels(int8_bytes):
    with pytest.raises(ValueError):
        convert.with_metadata(int8_bytes, [], "digits", "v1", "")
    with pytest.raises(ValueError):
        convert.with_metadata(int8_bytes, ["a\nb"], "digits", "v1", "")


def test_int8_accuracy_in_litert_matches_the_keras_model_within_a_point(keras_model, digits, published, float_bytes):
    keras_accuracy = evaluate.keras_accuracy(keras_model, digits.holdout)
    assert keras_accuracy > 0.9
    assert evaluate.accuracy(float_bytes, *digits.holdout) == pytest.approx(keras_accuracy, abs=0.003)
    assert evaluate.accuracy(published, *digits.holdout) == pytest.approx(keras_accuracy, abs=0.01)


def test_litert_classifies_single_images_and_batches_of_any_size(published, digits):
    lite = evaluate.LiteModel(published)
    images, labels = digits.holdout
    assert lite.predict(images[0]).tolist() == [labels[0]]
    batch = lite.probabilities(images[:17])
    assert batch.shape == (17, len(LABELS)) and batch.dtype == np.float32
    assert np.allclose(batch.sum(axis=1), 1.0, atol=0.05)  # dequantized probabilities
    assert lite.predict(images[:1]).tolist() == [labels[0]]  # shrinking the batch again works


def test_the_trainer_scores_with_the_clients_own_runtime(published, digits):
    """One LiteRT wrapper: a batch resizes the interpreter, and single-image scoring (the device's call) still agrees."""
    lite = evaluate.LiteModel(published)
    assert isinstance(lite, LiteRTClassifier)
    images = digits.holdout.images
    batch = lite.probabilities(images[:9])
    assert lite.input.shape == (1, 32, 32, 3) and lite.output.shape == (1, len(LABELS))  # declared, whatever the batch
    assert np.allclose(lite.scores(images[4]), batch[4])
    assert np.allclose(lite.batch_scores(images[:3]), batch[:3])


def test_litert_refuses_anything_but_uint8_pixels(published, digits):
    with pytest.raises(ValueError, match="uint8"):
        evaluate.LiteModel(published).predict(digits.holdout.images[:2].astype(np.float32))


def test_mediapipe_image_classifier_loads_the_model_and_names_the_right_digit(published, digits):
    """The standard mobile client: labels come from the model's own metadata."""
    images, labels = digits.holdout
    lite = evaluate.LiteModel(published)
    correct = [i for i in range(20) if lite.predict(images[i])[0] == labels[i]][:5]
    for i in correct:
        label, score = evaluate.mediapipe_top1(published, images[i])
        assert label == LABELS[labels[i]]
        assert 0.5 < score <= 1.0


def test_latency_is_the_median_of_single_image_runs_in_microseconds(published, digits):
    latency = evaluate.latency_us(published, digits.holdout.images[0], repeats=50)
    assert 1 < latency < 20_000


def test_the_same_model_and_labels_always_give_the_same_bytes(int8_bytes, published):
    """The packed labels file carries a fixed timestamp, so sha256 depends on content only."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(published)) as packed:
        assert [(info.filename, info.date_time) for info in packed.infolist()] == [(convert.LABELS_FILE, convert.PACKED_FILE_TIME)]
        assert packed.read(convert.LABELS_FILE).decode().splitlines() == list(LABELS)
    assert convert.with_metadata(int8_bytes, LABELS, "digits", "v7", "Handwritten digits, 32x32 RGB") == published
