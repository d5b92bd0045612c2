"""Drift transforms do what their names say, on uint8 RGB batches, without touching the input."""

import numpy as np
import pytest
from pydantic import ValidationError

from trainer_job import augment
from trainer_job.augment import AugmentConfig, Transform


def grey_batch(n=8, size=16, value=200):
    return np.full((n, size, size, 3), value, dtype=np.uint8)


def digit_like_batch(n=8, size=16):
    """A bright square on black, like the digits: shifts and blur are visible on it."""
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    images[:, 5:11, 5:11, :] = 240
    return images


def test_low_light_keeps_the_stated_fraction_of_brightness():
    images = grey_batch(value=200)
    dimmed = augment.low_light(images, 0.65)
    assert dimmed.dtype == np.uint8 and dimmed.shape == images.shape
    assert dimmed.mean() == pytest.approx(images.mean() * 0.35, abs=0.5)


def test_low_light_strength_is_a_fraction():
    with pytest.raises(ValueError):
        augment.low_light(grey_batch(), 1.5)


def test_blur_spreads_a_sharp_edge_and_keeps_total_brightness_roughly():
    images = digit_like_batch()
    blurred = augment.blur(images, 1.5)
    assert blurred[:, 4, 8, 0].min() > 0  # light leaks past the edge
    assert blurred[:, 8, 8, 0].max() < 240  # the centre gets softer
    assert blurred.astype(float).sum() == pytest.approx(images.astype(float).sum(), rel=0.02)


def test_blur_never_mixes_different_images():
    images = digit_like_batch(n=2)
    images[1] = 0
    assert augment.blur(images, 2.0)[1].max() == 0


def test_noise_has_the_stated_standard_deviation():
    images = grey_batch(n=32, size=32, value=128)
    noisy = augment.noise(images, 10.0, np.random.default_rng(0))
    difference = noisy.astype(float) - images
    assert difference.std() == pytest.approx(10.0, rel=0.05)
    assert abs(difference.mean()) < 0.5


def test_noise_saturates_instead_of_wrapping_around():
    black, white = grey_batch(value=0), grey_batch(value=255)
    rng = np.random.default_rng(0)
    assert augment.noise(black, 50.0, rng).mean() > 0  # negative noise clipped to 0, not 206..255
    assert augment.noise(white, 50.0, rng).mean() < 255


def test_shift_moves_content_by_at_most_the_strength_and_fills_with_black():
    images = digit_like_batch(n=64)
    shifted = augment.shift(images, 2, np.random.default_rng(0))
    for image in shifted:
        rows, cols = np.nonzero(image[..., 0])
        assert 3 <= rows.min() <= 7 and 3 <= cols.min() <= 7
        assert image.sum() == images[0].sum()  # the square never leaves a 16×16 frame at 2 px
    offsets = {tuple(np.argwhere(image[..., 0])[0]) for image in shifted}
    assert len(offsets) > 5  # images move independently


def test_transforms_never_modify_their_input():
    images = digit_like_batch()
    before = images.copy()
    rng = np.random.default_rng(0)
    augment.low_light(images, 0.5), augment.blur(images, 1.0), augment.noise(images, 5, rng), augment.shift(images, 2, rng)
    assert np.array_equal(images, before)


def test_augment_appends_copies_after_the_originals_with_labels_to_match():
    images, labels = digit_like_batch(n=10), np.arange(10)
    out_images, out_labels = augment.augment(images, labels, AugmentConfig(copies=2), np.random.default_rng(0))
    assert out_images.shape == (30, 16, 16, 3) and out_images.dtype == np.uint8
    assert np.array_equal(out_images[:10], images)
    assert np.array_equal(out_labels, np.tile(labels, 3))
    assert not np.array_equal(out_images[10:20], images)


def test_each_kind_is_switchable():
    images, labels = grey_batch(n=200, value=200), np.zeros(200)
    only_dim = AugmentConfig(
        low_light=Transform(strength=0.5),
        noise=Transform(enabled=False, strength=10),
        shift=Transform(enabled=False, strength=2),
        blur=Transform(enabled=False, strength=1),
        probability=1.0,
    )
    assert only_dim.enabled_kinds() == ["low_light"]
    out, _ = augment.augment(images, labels, only_dim, np.random.default_rng(0))
    assert np.all(out[200:] == 100)  # exactly dimmed, no noise


def test_probability_sets_the_share_of_images_each_kind_hits():
    images, labels = grey_batch(n=1000, size=2, value=200), np.zeros(1000)
    config = AugmentConfig(noise=Transform(enabled=False, strength=1), shift=Transform(enabled=False, strength=1), probability=0.3)
    out, _ = augment.augment(images, labels, config, np.random.default_rng(0))
    dimmed_share = np.mean(out[1000:, 0, 0, 0] < 200)
    assert dimmed_share == pytest.approx(0.3, abs=0.05)


def test_augmentation_off_returns_the_training_set_unchanged():
    images, labels = digit_like_batch(), np.arange(8)
    out_images, out_labels = augment.augment(images, labels, AugmentConfig.off(), np.random.default_rng(0))
    assert out_images is images and out_labels is labels


def test_augmentation_is_reproducible_from_the_seed():
    images, labels = digit_like_batch(), np.arange(8)
    first, _ = augment.augment(images, labels, AugmentConfig(), np.random.default_rng(7))
    second, _ = augment.augment(images, labels, AugmentConfig(), np.random.default_rng(7))
    assert np.array_equal(first, second)


def test_config_rejects_nonsense_and_round_trips_through_json():
    with pytest.raises(ValidationError):
        AugmentConfig(noise=Transform(strength=-1))
    with pytest.raises(ValidationError):
        AugmentConfig(copies=-1)
    config = AugmentConfig(blur=Transform(enabled=True, strength=1.2), copies=2)
    assert AugmentConfig.model_validate_json(config.model_dump_json()) == config


def test_the_drifted_holdout_is_dimmed_to_12_percent_with_mild_noise_and_fixed_per_seed():
    images = grey_batch(n=16, size=32, value=200)
    first = augment.drifted(images, np.random.default_rng(3))
    assert first.mean() == pytest.approx(24, abs=1.0)
    assert 3 < (first.astype(float) - 24).std() < 10
    assert np.array_equal(first, augment.drifted(images, np.random.default_rng(3)))
    assert not np.array_equal(first, augment.drifted(images, np.random.default_rng(4)))
