import io

import numpy as np
from PIL import Image

from shared.digits import IMAGE_SIZE, LABELS, load_digits_rgb


def test_the_embedded_dataset_is_all_1797_digits_as_rgb_images():
    images = load_digits_rgb()
    assert len(images) == 1797
    assert {image.label for image in images} == set(LABELS)
    first = images[0]
    assert first.rgb.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and first.rgb.dtype == np.uint8
    assert np.array_equal(first.rgb[..., 0], first.rgb[..., 2])  # grey digits in RGB
    assert first.rgb.max() > 200 and first.rgb.min() == 0


def test_digits_encode_as_png_that_decodes_to_the_same_pixels():
    image = load_digits_rgb()[5]
    decoded = np.asarray(Image.open(io.BytesIO(image.png())))
    assert np.array_equal(decoded, image.rgb)
