"""A generated dataset: four classes of coloured shapes on textured backgrounds.

Circles, squares, triangles and stars in random colours, sizes, positions and
rotations, each on a background of smooth colour noise, stripes or a checker
pattern with pixel noise on top. Harder than the digits (colour, texture and
position vary; the shape is all that tells the classes apart) and large enough
(96×96 by default) to compare the small CNN with a mobile backbone. Nothing is
downloaded; the same seed gives the same pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from shared.digits import LabelledImage

IMAGE_SIZE = 96
LABELS = ("circle", "square", "triangle", "star")
MIN_SIZE = 16  # below this a star's points blur into a pentagon
BACKGROUNDS = ("noise", "stripes", "checker")
RADIUS_RANGE = (0.16, 0.38)  # the shape's circumradius, as a share of the image side
NOISE_SIGMA = 12.0  # per-pixel sensor-like noise on the finished image, in 0..255 units
MIN_COLOUR_DISTANCE = 120.0  # RGB distance between the shape and its background's mean colour
STAR_INNER_RATIO = 0.45  # inner over outer radius of the five-pointed star
SMOOTH_NOISE_CELLS = 6  # the smooth background noise is a random grid this coarse, upsampled


def generate_shapes(per_class: int, seed: int = 0, size: int = IMAGE_SIZE) -> list[LabelledImage]:
    """``per_class`` images of each label, classes interleaved (image ``i`` is ``LABELS[i % 4]``).

    Deterministic: the same arguments give the same pixels. Image ``i`` depends only on
    ``seed``, ``i`` and ``size``, so a larger ``per_class`` extends a smaller set.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if size < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE} px on a side to tell the shapes apart, got {size}")
    return [
        LabelledImage(index, LABELS[index % len(LABELS)],
                   _draw(LABELS[index % len(LABELS)], size, np.random.default_rng([seed, index])))
        for index in range(per_class * len(LABELS))
    ]


def as_arrays(images: list[LabelledImage]) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 N×H×W×3 pixels, class indices into ``LABELS``): what the trainer takes."""
    return np.stack([image.rgb for image in images]), np.array([LABELS.index(image.label) for image in images])


def _draw(label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    background = _background(size, rng)
    colour = _contrasting_colour(background.reshape(-1, 3).mean(axis=0), rng)
    canvas = Image.fromarray(background, mode="RGB")
    radius = rng.uniform(*RADIUS_RANGE) * size
    centre = rng.uniform(radius, size - radius, size=2)
    ImageDraw.Draw(canvas).polygon(_outline(label, centre, radius, rng.uniform(0, 2 * math.pi)), fill=colour)
    noisy = np.asarray(canvas, dtype=np.float32) + rng.normal(0.0, NOISE_SIGMA, size=(size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    base, other = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    if kind == "noise":
        grid = rng.uniform(0, 1, size=(SMOOTH_NOISE_CELLS, SMOOTH_NOISE_CELLS, 3))
        smooth = np.asarray(Image.fromarray((grid * 255).astype(np.uint8), mode="RGB").resize((size, size), Image.BICUBIC))
        mix = smooth.astype(np.float32) / 255.0
    else:
        period = rng.uniform(size / 12, size / 4)
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        if kind == "stripes":
            angle = rng.uniform(0, math.pi)
            phase = (x * math.cos(angle) + y * math.sin(angle)) / period
            mix = (np.floor(phase) % 2)[..., None].repeat(3, axis=2)
        else:
            mix = ((np.floor(x / period) + np.floor(y / period)) % 2)[..., None].repeat(3, axis=2)
        mix = mix * rng.uniform(0.2, 0.6)  # texture, not a second shape: keep the pattern's contrast low
    return (base * (1 - mix) + other * mix).astype(np.uint8)


def _contrasting_colour(background_mean: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A random colour far enough from the background's mean to be seen (the farthest of a few draws)."""
    candidates = rng.uniform(0, 255, size=(8, 3))
    distances = np.linalg.norm(candidates - background_mean, axis=1)
    far = candidates[distances >= MIN_COLOUR_DISTANCE]
    chosen = far[0] if len(far) else candidates[np.argmax(distances)]
    return tuple(int(c) for c in chosen)


def _outline(label: str, centre: np.ndarray, radius: float, angle: float) -> list[tuple[float, float]]:
    if label == "circle":
        corners, radii = 48, [radius]
    elif label == "square":
        corners, radii = 4, [radius]
    elif label == "triangle":
        corners, radii = 3, [radius]
    elif label == "star":
        corners, radii = 10, [radius, radius * STAR_INNER_RATIO]
    else:
        raise ValueError(f"unknown shape {label!r}: one of {', '.join(LABELS)}")
    return [
        (float(centre[0] + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / corners)),
         float(centre[1] + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / corners)))
        for i in range(corners)
    ]
