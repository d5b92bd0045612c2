"""The holdout is fixed by the seed and keeps every class's share, so baselines and candidates meet the same images."""

import numpy as np
import pytest

from trainer_job.split import in_field_holdout, stratified_split


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


def test_in_field_holdout_depends_on_the_object_name_alone_and_grows_with_the_share():
    names = [f"uploads/m/u{i % 7}/{i:05d}.png" for i in range(2000)]
    small, large = ([in_field_holdout(n, share) for n in names] for share in (0.1, 0.3))
    assert small == [in_field_holdout(n, 0.1) for n in names]  # deterministic
    assert all(b for a, b in zip(small, large) if a)  # a larger share keeps every capture a smaller one held out
    assert 0.08 < sum(small) / 2000 < 0.12 and 0.27 < sum(large) / 2000 < 0.33
    with pytest.raises(ValueError):
        in_field_holdout(names[0], 1.0)


def with_captures(count: int, held_every: int):
    rng = np.random.default_rng(0)
    curated = rng.integers(0, 255, (200, 4, 4, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(10), 20)
    captures = np.full((count, 4, 4, 3), 7, dtype=np.uint8)
    captures[:, 0, 0, 0] = np.arange(count)  # each capture recognisable
    capture_labels = np.arange(count) % 10
    field = np.r_[np.zeros(200, bool), np.ones(count, bool)]
    held = np.r_[np.zeros(200, bool), np.arange(count) % held_every == 0]
    images, all_labels = np.concatenate([curated, captures]), np.concatenate([labels, capture_labels])
    return curated, labels, images, all_labels, field, held


@pytest.mark.parametrize("count", [0, 1, 3, 40])
def test_held_out_captures_never_train_and_the_curated_parts_do_not_move(count):
    curated, labels, images, all_labels, field, held = with_captures(count, held_every=3)
    alone = stratified_split(curated, labels, seed=3)
    split = stratified_split(images, all_labels, seed=3, field_captures=field, field_holdout=held)
    assert np.array_equal(split.holdout.images, alone.holdout.images)
    assert np.array_equal(split.validation.images, alone.validation.images)
    assert np.array_equal(split.field_holdout.images, images[held]) and len(split.field_holdout.labels) == held.sum()
    trained_captures = split.train.images[(split.train.images[:, 1:] == 7).all(axis=(1, 2, 3))]
    assert sorted(trained_captures[:, 0, 0, 0]) == [i for i in range(count) if i % 3]  # disjoint, and nothing lost
    assert set(np.bincount(split.train.labels, minlength=10)) != {0}  # every class still trains
    assert np.bincount(split.holdout.labels, minlength=10).tolist() == [4] * 10  # still stratified


def test_the_field_holdout_is_cut_from_field_captures_only():
    curated, labels, *_ = with_captures(0, 1)
    with pytest.raises(ValueError, match="field captures only"):
        stratified_split(curated, labels, seed=0, field_holdout=np.ones(len(labels), bool))
