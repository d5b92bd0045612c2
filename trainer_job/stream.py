"""Training that streams: memory bounded by buffer sizes, not by the size of the dataset.

The in-memory path (``snapshot.download_images``) decodes every image of a
manifest into one array: fine for the digits (5 MiB), not for a million photos
(about 150 GB at 224×224). A streaming run instead

1. splits the manifest first (``split.split_indices``: it needs only the labels
   and which entries are field captures, so the parts are exactly the ones the
   in-memory path would cut);
2. writes each part once, decoded by the same ``snapshot.decode_rgb``, into
   sharded TFRecord files on local disk (``write_cache``): a bounded number of
   downloads in flight, one shard open at a time, so later epochs never
   download again and never hold more than a shard's worth of records;
3. trains from a ``tf.data`` pipeline over the shards (``training_stream``):
   parallel interleaved reads, a bounded shuffle buffer, the model's
   augmentation applied batch by batch (``augment.augment``, the same
   transforms), prefetch;
4. evaluates, calibrates int8 and computes the drift baseline from the shards
   in order, batch by batch (``eval_batches``, ``first_images``), never from a
   whole part in memory.

What stays in memory grows with the manifest only: a few integers per image
(labels and positions), not pixels.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from trainer_job.augment import AugmentConfig, augment
from trainer_job.snapshot import DOWNLOAD_WORKERS, decode_rgb

SHARD_IMAGES = 4096  # records per shard file: 12 MiB at 32×32, 600 MiB at 224×224
CHUNK_IMAGES = 256  # decoded images in flight while the cache is written
SHUFFLE_RECORDS = 8192  # the training stream's shuffle buffer, in records (what bounds its memory)
AUGMENT_BATCH = 256  # records augmented together (augment.augment works on batches)
EVAL_BATCH = 512  # images per evaluation batch
READ_CYCLE = 4  # shard files read at once while training
PARTS = ("train", "validation", "holdout", "field_holdout")


@dataclass(frozen=True)
class ImageCache:
    """One run's images, split into parts, decoded into sharded TFRecords on local disk."""

    directory: Path
    image_size: int
    shards: dict[str, tuple[str, ...]]  # part → shard files, in order
    labels: dict[str, np.ndarray] = field(repr=False)  # part → class indices, in the part's order (small: ints)
    positions: dict[str, np.ndarray] = field(repr=False)  # part → manifest positions, in the part's order

    def count(self, part: str) -> int:
        return len(self.labels[part])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)


def _example(pixels: np.ndarray, label: int, position: int) -> bytes:
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pixels.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "position": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(position)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_cache(
    parts: Mapping[str, np.ndarray],
    labels: np.ndarray,
    read: Callable[[int], bytes],
    image_size: int,
    directory: Path,
    *,
    workers: int = DOWNLOAD_WORKERS,
    shard_images: int = SHARD_IMAGES,
    advance: Callable[[], None] | None = None,
) -> ImageCache:
    """Read and decode every image of ``parts`` (part → manifest positions) once, into shards under ``directory``.

    ``read(position)`` returns the encoded file of the manifest entry at ``position`` (a Storage object's exact
    generation in a run, a local file in the benchmark). At most ``CHUNK_IMAGES`` decoded images are held at once.
    """
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)

    def load(position: int) -> np.ndarray:
        pixels = decode_rgb(read(int(position)), image_size)
        if advance is not None:
            advance()
        return pixels

    shards: dict[str, tuple[str, ...]] = {}
    with ThreadPoolExecutor(workers) as pool:
        for part, positions in parts.items():
            files: list[str] = []
            for start in range(0, len(positions), shard_images):
                path = directory / f"{part}-{len(files):05d}.tfrecord"
                shard = positions[start:start + shard_images]
                with tf.io.TFRecordWriter(str(path)) as writer:
                    for chunk_start in range(0, len(shard), CHUNK_IMAGES):
                        chunk = shard[chunk_start:chunk_start + CHUNK_IMAGES]
                        for position, pixels in zip(chunk, pool.map(load, chunk)):
                            writer.write(_example(pixels, labels[position], position))
                files.append(str(path))
            shards[part] = tuple(files)
    return ImageCache(directory, image_size, shards,
                      {part: labels[np.asarray(p, dtype=np.int64)] for part, p in parts.items()},
                      {part: np.asarray(p, dtype=np.int64) for part, p in parts.items()})


def _parse_batch(image_size: int):
    import tensorflow as tf

    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "position": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(records):
        parsed = tf.io.parse_example(records, features)
        images = tf.reshape(tf.io.decode_raw(parsed["image"], tf.uint8), [-1, image_size, image_size, 3])
        return images, parsed["label"], parsed["position"]

    return parse


def ordered_dataset(cache: ImageCache, part: str, batch: int = EVAL_BATCH):
    """A part as a ``tf.data`` pipeline of (uint8 images, labels, manifest positions) batches, in the part's order.

    Files are opened lazily, one after the other; nothing is read before the first batch is asked for.
    """
    import tensorflow as tf

    records = tf.data.TFRecordDataset(list(cache.shards[part]))
    return records.batch(batch).map(_parse_batch(cache.image_size)).prefetch(1)


def eval_batches(cache: ImageCache, part: str, batch: int = EVAL_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A part's (uint8 images, labels) as NumPy batches, in the part's order."""
    for images, labels, _ in ordered_dataset(cache, part, batch).as_numpy_iterator():
        yield images, labels


def first_images(cache: ImageCache, part: str, count: int) -> np.ndarray:
    """The first ``count`` images of a part (what the in-memory path takes as ``part.images[:count]``)."""
    taken: list[np.ndarray] = []
    for images, _ in eval_batches(cache, part, batch=min(EVAL_BATCH, max(1, count))):
        taken.append(images[:count - sum(len(t) for t in taken)])
        if sum(len(t) for t in taken) >= count:
            break
    if not taken:
        return np.zeros((0, *cache.image_shape), dtype=np.uint8)
    return np.concatenate(taken)


def augmented_count(count: int, config: AugmentConfig) -> int:
    """Training examples per epoch: the originals and ``config.copies`` drifted copies (``augment.augment``)."""
    return count * (1 + config.copies) if config.copies and config.enabled_kinds() else count


def training_stream(cache: ImageCache, config: AugmentConfig, seed: int, batch_size: int,
                    shuffle_records: int = SHUFFLE_RECORDS):
    """The training part as a ``tf.data`` pipeline of (float32 images, labels) batches, and its examples per epoch.

    Shard files are read ``READ_CYCLE`` at a time in parallel (their order shuffled each epoch), records shuffled
    in a buffer of ``shuffle_records``, parsed and augmented ``AUGMENT_BATCH`` at a time with the model's
    ``AugmentConfig`` (the originals and their drifted copies, as the in-memory path trains on), shuffled again so
    copies do not follow their originals, batched and prefetched. Memory: the two buffers, not the dataset.
    """
    import tensorflow as tf

    files = list(cache.shards["train"])
    rng = np.random.default_rng([seed, 1])  # the in-memory path's augmentation generator

    def augment_batch(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_images, out_labels = augment(images, labels, config, rng)
        return out_images, out_labels.astype(np.int64)

    def augmented(images, labels, _positions):
        out_images, out_labels = tf.numpy_function(augment_batch, [images, labels], [tf.uint8, tf.int64], stateful=True)
        out_images.set_shape([None, *cache.image_shape])
        out_labels.set_shape([None])
        return out_images, out_labels

    dataset = (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        .interleave(tf.data.TFRecordDataset, cycle_length=min(READ_CYCLE, len(files)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .shuffle(shuffle_records, seed=seed, reshuffle_each_iteration=True)
        .batch(AUGMENT_BATCH)
        .map(_parse_batch(cache.image_size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .map(augmented)  # sequential: one NumPy generator, the same draws in every rerun
        .unbatch()
        .shuffle(2 * AUGMENT_BATCH * (1 + config.copies), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda images, labels: (tf.cast(images, tf.float32), labels), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, augmented_count(cache.count("train"), config)


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return math.ceil(examples / batch_size)
