"""MobileNetV3-Small as a per-model backbone: built at the model's size, refused below 32 px, trained from random
weights here (a tiny run converts to int8 and loads in LiteRT with its metadata), and ImageNet weights that cannot be
loaded stop the run with a clear error instead of training from random weights."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
from pydantic import ValidationError
from rich.console import Console

from client_sdk.runtime import LiteRTClassifier
from shared.shapes import LABELS, as_arrays, generate_shapes
from trainer_job import backbone, convert
from trainer_job.augment import AugmentConfig
from trainer_job.model import BACKBONE_GRIDS, DEFAULT_GRID, MOBILENET_GRID, Hyperparameters, build_model
from trainer_job.pipeline import STAGES, TrainConfig, train_candidate

MOBILENET = backbone.MOBILENET_V3_SMALL
TINY_SIZE = 32  # the smallest MobileNetV3-Small takes: the cheapest real run
# The tiny run costs little compute but Keras and the TFLite converter trace MobileNetV3's 158 layers for training,
# float and int8 conversion: 53 s measured on 2 quiet cores, 117 s at load average 7, once 305 s beside another
# training. Its users get room beyond the default 300 s, or a busy machine fails them on time alone.
TINY_RUN_TIMEOUT_S = 600
TINY = TrainConfig(backbone=MOBILENET, weights="none", image_size=TINY_SIZE, augment=AugmentConfig.off(),
                   grid=(Hyperparameters(dense_units=16, epochs=1, batch_size=16),), latency_repeats=1,
                   representative_samples=16)


@pytest.fixture(scope="module")
def tiny_shapes():
    return as_arrays(generate_shapes(per_class=10, seed=0, size=TINY_SIZE))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and no network: any connection attempt fails at once, nothing leaves the machine."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setenv(backbone.KERAS_HOME_ENV, str(tmp_path / "keras"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return tmp_path / "keras"


# --- configuration ------------------------------------------------------------------------------------------------

def test_the_small_cnn_stays_the_default_and_has_no_pretrained_weights():
    config = TrainConfig()
    assert (config.backbone, config.weights, config.grid) == ("cnn", "none", DEFAULT_GRID)
    with pytest.raises(ValidationError, match="has no ImageNet weights"):
        TrainConfig(weights="imagenet")


def test_the_backbone_defaults_to_imagenet_weights_and_its_own_grid_and_round_trips():
    config = TrainConfig(backbone=MOBILENET)
    assert (config.weights, config.grid) == ("imagenet", MOBILENET_GRID) == ("imagenet", BACKBONE_GRIDS[MOBILENET])
    stored = config.model_dump(mode="json")
    assert TrainConfig.model_validate(stored) == config
    assert TrainConfig.model_validate({**stored, "weights": "none"}).weights == "none"
    assert TrainConfig.model_validate({"backbone": MOBILENET, "weights": None}).weights == "imagenet"


@pytest.mark.parametrize("field, value, message", [
    ("backbone", "resnet50", "cnn"),  # names the choices
    ("weights", "random", "imagenet"),
])
def test_an_unknown_backbone_or_weights_is_refused_with_the_choices(field, value, message):
    with pytest.raises(ValidationError, match=message):
        TrainConfig.model_validate({field: value})


@pytest.mark.parametrize("size", [8, 24, 31])
def test_mobilenet_refuses_images_under_32_px_and_says_why(size):
    with pytest.raises(ValidationError, match=r"at least 32×32 px, got .*stride-2.*use backbone 'cnn'"):
        TrainConfig(backbone=MOBILENET, weights="none", image_size=size)
    with pytest.raises(ValueError, match="at least 32×32 px"):
        build_model(4, MOBILENET_GRID[0], (size, size, 3), backbone=MOBILENET)


def test_images_smaller_than_the_config_says_are_refused_before_any_stage(tiny_shapes):
    images, labels = tiny_shapes
    seen = []
    with pytest.raises(ValueError, match="at least 32×32 px, got 16×16"):
        train_candidate(images[:, :16, :16], labels, LABELS, TINY, on_stage=seen.append, console=Console(quiet=True))
    assert seen == []


# --- the network --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 96])
def test_the_backbone_builds_at_the_models_size_and_rescales_raw_pixels_itself(size):
    import keras

    model = build_model(4, MOBILENET_GRID[0], (size, size, 3), backbone=MOBILENET)
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 4)
    rescaling = next(layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling))
    assert (rescaling.scale, rescaling.offset) == (1.0 / 127.5, -1.0)  # 0..255 → -1..1, MobileNet's own range
    assert any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == backbone.BATCH_NORM_MOMENTUM for layer in norms)


def test_weights_from_a_file_are_loaded_into_the_backbone(tmp_path):
    """The loading path ImageNet weights take, fed a local file of the same architecture (nothing is downloaded)."""
    import keras

    source = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, pooling="avg", weights=None)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    model = build_model(4, MOBILENET_GRID[0], (32, 32, 3), backbone=MOBILENET, weights_file=path)
    for name in ("conv", "expanded_conv_depthwise"):
        expected = source.get_layer(name).get_weights()[0]
        assert np.array_equal(model.get_layer(name).get_weights()[0], expected), name


# --- ImageNet weights that cannot be loaded -----------------------------------------------------------------------

def test_imagenet_weights_without_cache_or_network_are_a_clear_error(offline):
    file_name, _, _ = backbone.imagenet_weights_file()
    with pytest.raises(backbone.WeightsUnavailable) as raised:
        backbone.starting_weights(MOBILENET, "imagenet")
    message = str(raised.value)
    assert file_name in message and str(offline / "models") in message
    assert "network blocked by the test" in message  # the real reason the download failed
    assert "weights 'none'" in message and "Dockerfile" in message  # and the ways out


def test_a_cached_file_that_fails_its_hash_is_not_used(offline):
    file_name, _, _ = backbone.imagenet_weights_file()
    (offline / "models").mkdir(parents=True)
    (offline / "models" / file_name).write_bytes(b"not the published weights")
    with pytest.raises(backbone.WeightsUnavailable):
        backbone.starting_weights(MOBILENET, "imagenet")


def test_a_run_asking_for_imagenet_weights_it_cannot_load_fails_before_training(offline, tiny_shapes):
    seen = []
    config = TrainConfig.model_validate({**TINY.model_dump(), "weights": "imagenet"})
    with pytest.raises(backbone.WeightsUnavailable):
        train_candidate(*tiny_shapes, LABELS, config, on_stage=seen.append, console=Console(quiet=True))
    assert seen == []  # never trained from random weights instead


def test_random_weights_need_neither_cache_nor_network(offline):
    started, path = backbone.starting_weights(MOBILENET, "none")
    assert path is None and started.as_dict() == {"backbone": MOBILENET, "weights": "none", "pretrained_loaded": False,
                                                  "file": None, "md5": None}


# --- a tiny run, end to end ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tiny_shapes):
    stages = []
    candidate = train_candidate(*tiny_shapes, LABELS, TINY, seed=0, model_name="shapes", version="v1",
                                on_stage=stages.append, console=Console(file=io.StringIO()))
    return candidate, stages


@pytest.mark.timeout(TINY_RUN_TIMEOUT_S)
def test_a_one_epoch_backbone_run_converts_to_int8_and_loads_in_litert_with_its_metadata(tiny_run, tiny_shapes):
    candidate, stages = tiny_run
    assert stages == list(STAGES)
    metadata = convert.read_metadata(candidate.model_bytes)
    assert (metadata["name"], metadata["version"], metadata["labels"]) == ("shapes", "v1", list(LABELS))
    assert metadata["normalisation"] == {"mean": list(convert.NORM_MEAN), "std": list(convert.NORM_STD)}
    runtime = LiteRTClassifier(candidate.model_bytes)  # the client SDK's own runtime
    assert tuple(runtime.input.shape[1:]) == (TINY_SIZE, TINY_SIZE, 3)
    assert np.dtype(runtime.input.dtype) == np.uint8 and np.dtype(runtime.output.dtype) == np.uint8
    scores = runtime.batch_scores(tiny_shapes[0][:2])
    assert scores.shape == (2, len(LABELS)) and np.all(scores >= 0)
    assert candidate.load_check["mediapipe_labels"] == candidate.load_check["litert_labels"]
    assert candidate.sizes["float_bytes"] > 2 * candidate.sizes["int8_bytes"]  # int8 weights, not a float fallback


@pytest.mark.timeout(TINY_RUN_TIMEOUT_S)
def test_the_run_records_what_it_started_from(tiny_run):
    candidate, _ = tiny_run
    assert candidate.backbone == {"backbone": MOBILENET, "weights": "none", "pretrained_loaded": False,
                                  "file": None, "md5": None}
    assert candidate.hyperparameters == TINY.grid[0].as_dict()


# --- the trainer's run: --weights over the stored config ----------------------------------------------------------

def _run_with(monkeypatch, stored: TrainConfig, weights: str | None):
    from shared.config import Settings
    from trainer_job import run as trainer_run

    monkeypatch.setattr(trainer_run, "load_train_config", lambda model, settings: stored)
    return trainer_run.TrainingRun("shapes", "run-1", Settings(), Console(quiet=True), weights=weights)


def test_a_run_asked_for_no_weights_trains_a_pretrained_backbone_from_random_weights_offline(monkeypatch, offline):
    config = _run_with(monkeypatch, TrainConfig(backbone=MOBILENET), weights="none")._train_config()
    assert (config.backbone, config.weights) == (MOBILENET, "none")


def test_a_run_that_cannot_load_the_imagenet_weights_it_asks_for_fails_before_its_snapshot(monkeypatch, offline):
    with pytest.raises(backbone.WeightsUnavailable, match="weights 'none'"):
        _run_with(monkeypatch, TINY, weights="imagenet")._train_config()
    with pytest.raises(backbone.WeightsUnavailable):
        _run_with(monkeypatch, TrainConfig(backbone=MOBILENET), weights=None)._train_config()  # the stored default


# --- the benchmark's side-by-side timing and its section -----------------------------------------------------------

@pytest.mark.timeout(TINY_RUN_TIMEOUT_S)
def test_the_benchmark_times_the_models_in_alternating_rounds_and_shows_one_column_each(tiny_run, tiny_shapes):
    from trainer_job import bench_backbone

    candidate, _ = tiny_run
    latency = bench_backbone.side_by_side_latency_us({"cnn": candidate.model_bytes, MOBILENET: candidate.model_bytes},
                                                     tiny_shapes[0][0], rounds=2, repeats=3)
    assert set(latency) == {"cnn", MOBILENET} and all(value > 0 for value in latency.values())
    measured = {"backbone": candidate.backbone, "int8_accuracy": 0.5, "float_accuracy": 0.75, "int8_drifted_accuracy": 0.25,
                "int8_float_agreement": 0.975,
                "published_bytes": 2048, "latency_us": 1234.4, "train_seconds": 61.0, "pipeline_seconds": 99.0,
                "gate_passed": False, "gate_failures": ["int8_accuracy 0.5 < 0.9"], "hyperparameters": candidate.hyperparameters}
    section = bench_backbone.markdown({"seed": 0, "images": 40, "image_size": 32, "holdout_images": 8, "cpu_count": 2,
                                       "load_average_start": 1.0, "load_average_end": 2.0,
                                       "models": {"cnn": measured, MOBILENET: {**measured, "gate_passed": True}}},
                                      "edgeloop bench backbone --per-class 10")
    assert section.startswith("## Backbone (`edgeloop bench backbone --per-class 10`)")
    assert "| measure | small CNN | MobileNetV3-Small |" in section
    assert "| int8 file with metadata | 2 KiB | 2 KiB |" in section and "| LiteRT latency per image, 1 thread | 1234 µs |" in section
    assert "| default gate | rejected: int8_accuracy 0.5 < 0.9 | passed |" in section
    assert "every network starts from random weights" in section and "| int8 picks float's class | 97.5% |" in section


def test_imagenet_weights_are_looked_for_in_the_keras_cache_named_by_keras_home(offline, monkeypatch):
    """Keras itself falls back to /tmp/.keras for a cache directory that does not exist; the trainer makes it first."""
    seen = []
    monkeypatch.setattr("keras.utils.get_file", lambda *args, **kwargs: seen.append(kwargs["cache_dir"]) or
                        str(offline / "models" / args[0]))
    started, path = backbone.starting_weights(MOBILENET, "imagenet")
    assert seen == [str(offline)] and (offline / "models").is_dir()
    assert started.pretrained_loaded and path == offline / "models" / started.file and started.md5
