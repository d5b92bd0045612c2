"""The image statistics' Laplacian is scipy.ndimage's."""

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from shared.image_stats import STATS_SIDE, image_statistics, laplacian


@settings(max_examples=200)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))))
def test_the_laplacian_is_scipys(rgb):
    from scipy import ndimage

    grey = rgb.astype(np.float32).mean(axis=2) / 255.0
    assert np.array_equal(laplacian(grey), ndimage.laplace(grey))


def test_sharpness_is_the_variance_of_scipys_laplacian_at_the_common_scale():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(STATS_SIDE, STATS_SIDE, 3), dtype=np.uint8)
    grey = rgb.astype(np.float32).mean(axis=2) / 255.0
    assert image_statistics(rgb)["sharpness"] == float(ndimage.laplace(grey).var())
