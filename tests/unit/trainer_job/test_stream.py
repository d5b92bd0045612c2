"""A streaming run reads the manifest's images lazily from sharded files and trains, evaluates and calibrates on
exactly the parts the in-memory path cuts; its buffers, not the dataset, bound what it holds."""

import io
from collections import Counter

import numpy as np
import pytest
from rich.console import Console

from shared.config import STRESSES
from shared.digits import LABELS, load_digits_rgb
from shared.gate import stress_metric
from trainer_job import stream
from trainer_job.augment import AugmentConfig
from trainer_job.model import Hyperparameters, build_model
from trainer_job.pipeline import (STAGES, TrainConfig, _evaluate, _evaluate_streamed, _reference_metrics,
                                  stressed_holdouts_of, train_candidate_streamed)
from trainer_job.snapshot import decode_rgb
from trainer_job.split import split_indices, stratified_split

IMAGES = 600  # the first 600 digits: every label, a few shards, seconds to train
SHARD = 64
TINY = TrainConfig(grid=(Hyperparameters(epochs=2),), latency_repeats=5, representative_samples=50)


@pytest.fixture(scope="module")
def files():
    """The digits as the encoded files a run downloads, and their labels."""
    digits = load_digits_rgb()[:IMAGES]
    return [digit.png() for digit in digits], np.array([int(digit.label) for digit in digits])


@pytest.fixture(scope="module")
def in_memory(files):
    """What the in-memory path decodes: every file at 32×32."""
    return np.stack([decode_rgb(content, 32) for content in files[0]])


@pytest.fixture(scope="module")
def cache(files, tmp_path_factory):
    pngs, labels = files
    reads = []

    def read(position):
        reads.append(position)
        return pngs[position]

    parts = split_indices(labels, seed=0)
    built = stream.write_cache(parts.parts(), labels, read, 32, tmp_path_factory.mktemp("shards"), shard_images=SHARD)
    assert sorted(reads) == list(range(IMAGES))  # every manifest entry read exactly once
    return built


def test_each_part_streams_the_images_and_labels_the_in_memory_split_holds_in_the_same_order(cache, files, in_memory):
    split = stratified_split(in_memory, files[1], seed=0)
    for part, expected in zip(("train", "validation", "holdout"), (split.train, split.validation, split.holdout)):
        images, labels, positions = (np.concatenate(column) for column in
                                     zip(*stream.ordered_dataset(cache, part, batch=50).as_numpy_iterator()))
        assert np.array_equal(images, expected.images) and np.array_equal(labels, expected.labels), part
        assert np.array_equal(files[1][positions], labels)  # each record carries its manifest position
        assert np.array_equal(cache.labels[part], expected.labels) and cache.count(part) == len(expected.labels)
    assert len(cache.shards["train"]) == -(-cache.count("train") // SHARD) > 1
    assert cache.count("field_holdout") == 0 and cache.shards["field_holdout"] == ()


def test_the_calibration_sample_is_the_training_parts_first_images(cache, files, in_memory):
    split = stratified_split(in_memory, files[1], seed=0)
    assert np.array_equal(stream.first_images(cache, "train", 70), split.train.images[:70])
    assert len(stream.first_images(cache, "holdout", 10_000)) == cache.count("holdout")


def test_the_training_stream_reads_its_shards_lazily(cache, tmp_path):
    import tensorflow as tf

    copied = {part: tuple(str(tmp_path / f"{i}.tfrecord") for i, _ in enumerate(files))
              for part, files in cache.shards.items() if part == "train"}
    for source, target in zip(cache.shards["train"], copied["train"]):
        with open(source, "rb") as s, open(target, "wb") as t:
            t.write(s.read())
    lazy = stream.ImageCache(tmp_path, 32, {**cache.shards, **copied}, cache.labels, cache.positions)
    dataset, _ = stream.training_stream(lazy, AugmentConfig.off(), seed=0, batch_size=32)
    assert isinstance(dataset, tf.data.Dataset)
    with open(copied["train"][-1], "r+b") as shard:  # damaged after the pipeline was built, before it is read
        shard.truncate(100)
    with pytest.raises(tf.errors.DataLossError):
        for _ in dataset:
            pass


def test_one_epoch_of_the_training_stream_is_the_training_part_shuffled_with_its_drifted_copies(cache):
    plain, count = stream.training_stream(cache, AugmentConfig.off(), seed=0, batch_size=32)
    batches = list(plain.as_numpy_iterator())
    labels = np.concatenate([b[1] for b in batches])
    assert count == cache.count("train") and Counter(labels.tolist()) == Counter(cache.labels["train"].tolist())
    assert not np.array_equal(labels, cache.labels["train"])  # shuffled, not the part's order
    assert batches[0][0].dtype == np.float32 and batches[0][0].shape == (32, 32, 32, 3)
    augmented, count = stream.training_stream(cache, AugmentConfig(), seed=0, batch_size=32)
    labels = np.concatenate([b[1] for b in augmented.as_numpy_iterator()])
    assert count == 2 * cache.count("train") == len(labels)
    assert Counter(labels.tolist()) == Counter(2 * cache.labels["train"].tolist())


def test_the_training_streams_buffers_are_bounded_by_constants_not_the_dataset():
    assert stream.SHUFFLE_RECORDS * 224 * 224 * 3 < 2**31  # the record buffer of 224×224 photos stays under 2 GiB
    assert stream.CHUNK_IMAGES <= stream.SHUFFLE_RECORDS and stream.AUGMENT_BATCH <= stream.SHUFFLE_RECORDS


def test_a_run_streams_only_above_its_memory_threshold():
    assert not TrainConfig().streams(1797)  # the digits stay in memory: the fast path
    assert TrainConfig().streams(100_000) and TrainConfig(image_size=224).streams(2_000)
    assert TrainConfig(stream_above_mib=0).streams(1)


def test_streamed_evaluation_scores_the_same_pixels_as_the_in_memory_one(cache, files, in_memory, monkeypatch):
    """Batch by batch (small batches here), every stress draws the same noise as on the whole holdout at once."""
    from trainer_job import convert

    monkeypatch.setattr(stream, "EVAL_BATCH", 37)
    model = build_model(10, Hyperparameters(filters=4, dense_units=16))
    float_bytes = convert.to_float_tflite(model)
    int8_bytes = convert.to_int8_tflite(model, in_memory[:50])
    split = stratified_split(in_memory, files[1], seed=0)
    stressed = stressed_holdouts_of(split.holdout, 0)
    from trainer_job.model import TrainedModel

    trained = TrainedModel(model, Hyperparameters(), 0.0, ())
    expected = {**_evaluate(trained, float_bytes, int8_bytes, split.holdout, stressed, split.field_holdout, 5),
                **_reference_metrics(int8_bytes, split.holdout, stressed, split.field_holdout)}
    streamed, confidences = _evaluate_streamed(cache, model, float_bytes, int8_bytes, int8_bytes, 0, 5)
    assert set(streamed) == set(expected)
    for name in expected:
        if name not in ("latency_us", "keras_accuracy"):
            assert streamed[name] == expected[name], name
    assert streamed["keras_accuracy"] == pytest.approx(expected["keras_accuracy"], abs=1 / len(split.holdout.labels))
    assert len(confidences) == cache.count("holdout")
    assert all(stress_metric(name) in streamed for name in STRESSES)


def test_a_streamed_candidate_goes_through_every_stage_with_the_in_memory_counts(cache, files, in_memory):
    stages_seen = []
    candidate = train_candidate_streamed(cache, LABELS, TINY, seed=0, model_name="digits", version="v9",
                                         on_stage=stages_seen.append, console=Console(file=io.StringIO()))
    split = stratified_split(in_memory, files[1], seed=0)
    assert stages_seen == list(STAGES)
    assert candidate.counts == {"train": len(split.train.labels), "train_augmented": 2 * len(split.train.labels),
                                "validation": len(split.validation.labels), "holdout": len(split.holdout.labels),
                                "field_holdout": 0}
    assert {"val_accuracy", "size_bytes", "size_ratio", "latency_us", "int8_drifted_accuracy"} <= candidate.metrics.keys()
    assert candidate.metrics["int8_accuracy"] > 0.8  # two epochs of the small CNN on 400 digits
    assert candidate.load_check["mediapipe_labels"] == candidate.load_check["litert_labels"]
    assert sum(candidate.baseline["label_counts"].values()) == cache.count("train") + cache.count("validation")
    assert len(candidate.baseline["confidences"]) == cache.count("holdout")
