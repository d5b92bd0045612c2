"""The generated shapes dataset: four balanced classes of 96×96 RGB images, the same pixels for the same seed."""

import io

import numpy as np
import pytest
from PIL import Image

from shared.shapes import IMAGE_SIZE, LABELS, as_arrays, generate_shapes


def test_the_classes_are_interleaved_balanced_rgb_images():
    images = generate_shapes(per_class=5, seed=0)
    assert [image.label for image in images] == list(LABELS) * 5
    assert all(image.rgb.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.rgb.dtype == np.uint8 for image in images)
    pixels, labels = as_arrays(images)
    assert pixels.shape == (20, IMAGE_SIZE, IMAGE_SIZE, 3) and np.bincount(labels).tolist() == [5, 5, 5, 5]


def test_the_same_seed_gives_the_same_pixels_and_another_seed_others():
    first, again, other = (as_arrays(generate_shapes(3, seed))[0] for seed in (7, 7, 8))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    # A larger set extends a smaller one: image i depends only on the seed and i.
    assert np.array_equal(as_arrays(generate_shapes(2, seed=7))[0], first[:8])


def test_backgrounds_colours_and_positions_vary():
    pixels, labels = as_arrays(generate_shapes(per_class=10, seed=0))
    circles = pixels[labels == LABELS.index("circle")].astype(np.float32)
    assert circles.std(axis=0).mean() > 40  # no fixed colour or place to learn instead of the shape
    assert len({tuple(image[0, 0] // 32) for image in pixels}) > 10  # corners: many background colours


def test_a_shape_stands_out_from_its_background():
    image = generate_shapes(per_class=1, seed=3)[0].rgb.astype(np.float32)
    centre_distance = np.linalg.norm(image - np.median(image.reshape(-1, 3), axis=0), axis=2)
    assert (centre_distance > 60).mean() > 0.05  # the shape's pixels differ clearly from the background's


def test_images_encode_as_png_that_decodes_to_the_same_pixels():
    image = generate_shapes(per_class=1, seed=0, size=48)[2]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(image.png()))), image.rgb)


@pytest.mark.parametrize("per_class, size, message", [(0, 96, "per_class"), (1, 8, "at least 16 px")])
def test_bad_arguments_are_refused_with_the_reason(per_class, size, message):
    with pytest.raises(ValueError, match=message):
        generate_shapes(per_class, size=size)
