"""The tiny scale's "ImageNet": object-centred images, one label each, for pretraining the trunks.

The papers fine-tune trunks pretrained on ImageNet classification: image-level labels of
object-centred photos, many more classes than the segmentation task has (1000 vs VOC's 20), the
VOC classes among them. This is the same thing for the synthetic segmentation data
(bench/data/synthetic.py), drawn with its background, colours, shapes and noise:

- 50 classes: every (colour family, shape) pair of the generator's 10 families x 5 shapes. The
  segmentation data uses 20 of them (each family in two shapes); the other 30 make the trunk
  learn colour and shape apart, not the 20 answers of the segmentation task.
- One labelled object near the centre (offset up to 15% of the side), radius 18-45% of the side,
  drawn last, on top of 0-2 small distractors (radius 2-15% of the side, any class, anywhere):
  as an ImageNet photo has one named object and clutter.
- 64 x 64 px: half the tiny segmentation crop (128), as ImageNet's 224 px is below the papers'
  321-513 px crops, and four times cheaper per image.
- Its own seed (``DATA_SEED``) and split names: no image is one of the segmentation splits'.

Image i of (seed, split) depends only on (seed, split, i, size), as in the segmentation generator.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np

from bench.data.synthetic import COLOUR_FAMILIES, SHAPES, add_noise, background, interp_matrix, paint_object

CLASSES: tuple[tuple[str, str], ...] = tuple(itertools.product(COLOUR_FAMILIES, SHAPES))
CLASS_NAMES: tuple[str, ...] = tuple(f"{family}-{shape}" for family, shape in CLASSES)
IMAGE_SIZE = 64
DATA_SEED = 1000  # the segmentation data's seeds are 0 (committed results) and 1 (pilots)
CENTRE_JITTER = 0.15                        # of the side
OBJECT_RADIUS = (0.18, 0.45)                # of the side, log-uniform
MAX_DISTRACTORS, DISTRACTOR_RADIUS = 2, (0.02, 0.15)


def generate(seed: int, split: str, n: int, size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """images uint8 (n, size, size, 3) RGB and labels int64 (n,) in 0..49."""
    if n < 0 or size < 16:
        raise ValueError(f"need n >= 0 and size >= 16, got n={n}, size={size}")
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    interp = [interp_matrix(size, 4), interp_matrix(size, 12)]
    code = zlib.crc32(f"objects-{split}".encode("utf-8"))
    for i in range(n):
        rng = np.random.default_rng([int(seed), code, i])
        images[i], labels[i] = _draw(rng, size, interp)
    return images, labels


def _draw(rng: np.random.Generator, size: int, interp: list[np.ndarray]) -> tuple[np.ndarray, int]:
    img = background(rng, size, interp)
    for _ in range(int(rng.integers(0, MAX_DISTRACTORS + 1))):
        family, shape = CLASSES[int(rng.integers(len(CLASSES)))]
        r = size * np.exp(rng.uniform(*np.log(DISTRACTOR_RADIUS)))
        paint_object(img, rng, family, shape, r, *rng.uniform(0.0, size, 2))
    label = int(rng.integers(len(CLASSES)))
    family, shape = CLASSES[label]
    r = size * np.exp(rng.uniform(*np.log(OBJECT_RADIUS)))
    cy, cx = size / 2 + size * rng.uniform(-CENTRE_JITTER, CENTRE_JITTER, 2)
    paint_object(img, rng, family, shape, r, cy, cx)
    return add_noise(img, rng), label
