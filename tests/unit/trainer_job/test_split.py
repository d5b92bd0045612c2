"""The holdout is fixed by the seed and keeps every class's share, so baselines and candidates meet the same images."""

import numpy as np

from trainer_job.split import stratified_split


def dataset():
    labels = np.repeat(np.arange(10), 50)
    images = np.arange(len(labels), dtype=np.uint32).reshape(-1, 1, 1, 1)  # each image is its own index
    return images, labels


def test_parts_are_disjoint_cover_everything_and_have_the_stated_sizes():
    images, labels = dataset()
    split = stratified_split(images, labels, seed=0)
    ids = [set(part.images.ravel()) for part in (split.train, split.validation, split.holdout)]
    assert sum(len(i) for i in ids) == len(labels) and set.union(*ids) == set(range(len(labels)))
    assert len(split.holdout.labels) == 100  # 20%
    assert len(split.validation.labels) == 60  # 15% of the remaining 400


def test_every_part_keeps_the_class_balance():
    split = stratified_split(*dataset(), seed=0)
    for part in (split.train, split.validation, split.holdout):
        counts = np.bincount(part.labels, minlength=10)
        assert counts.max() - counts.min() <= 1


def test_the_same_seed_gives_the_same_holdout_and_another_seed_another():
    images, labels = dataset()
    first, again, other = (stratified_split(images, labels, seed=s).holdout.images for s in (0, 0, 1))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_train_and_validation_together_are_everything_but_the_holdout():
    images, labels = dataset()
    split = stratified_split(images, labels, seed=0)
    rest = split.train_and_validation()
    assert len(rest.labels) == 400 and not set(rest.images.ravel()) & set(split.holdout.images.ravel())


def test_field_captures_only_train_and_the_holdout_stays_the_curated_one():
    rng = np.random.default_rng(0)
    curated = rng.integers(0, 255, (200, 4, 4, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 20)
    captures = np.full((30, 4, 4, 3), 7, dtype=np.uint8)  # recognisable pixels
    capture_labels = np.arange(30) % 10
    alone = stratified_split(curated, labels, seed=3)
    mixed = stratified_split(np.concatenate([curated, captures]), np.concatenate([labels, capture_labels]), seed=3,
                             field_captures=np.r_[np.zeros(200, bool), np.ones(30, bool)])
    assert np.array_equal(mixed.holdout.images, alone.holdout.images)
    assert np.array_equal(mixed.validation.images, alone.validation.images)
    assert len(mixed.train.labels) == len(alone.train.labels) + 30
    assert (mixed.train.images == 7).all(axis=(1, 2, 3)).sum() == 30
