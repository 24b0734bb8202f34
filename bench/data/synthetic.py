"""The embedded synthetic segmentation data set: procedurally drawn scenes with 21 classes.

Why a synthetic set at all: the `tiny` scale must run a whole ablation on a 2-core CPU in minutes
and still show the effects that the DeepLab papers measure on PASCAL VOC. Every property below
exists to give one of the papers' knobs something to act on; none of it is decoration.

What a scene is
- Background (class 0): a textured, low-saturation field (a grey level per image plus two octaves
  of smooth colour blotches) with per-pixel Gaussian noise, like clutter in a photo.
- 3 to 8 objects of 20 classes. A class is a (colour family, shape) pair: 10 hue families 36
  degrees apart (red, orange, ..., magenta) and 5 shapes (disc, square, triangle, ring, bar).
  Each family comes in two shapes, and the ten families own the ten pairs of shapes, so every
  shape contrast is needed exactly once (red-disc vs red-square, ..., magenta-ring vs
  magenta-bar). Squares, triangles and bars are rotated at random; objects may leave the frame.
  Hue (+-5 degrees), saturation and brightness vary per object.
- Every pixel, object or background, gets per-pixel noise (sigma 15-30 of 255), so a single pixel
  hints at the colour family but never gives the class.
- Objects are drawn largest first, so smaller objects partly occlude bigger ones (later on top).
- Labels: 0 background, 1..20 objects, 255 (IGNORE_INDEX) on a 1-pixel band along every object
  boundary (the outermost pixels of the upper object wherever it touches what lies beneath).

Why each property is there
- Radius log-uniform from 3 px to 45% of the image side: small objects vanish at a coarse output
  stride (OS 32 vs 16 vs 8) and large ones need a large receptive field, so output stride,
  multi-scale inputs (MSc) and ASPP's several rates have something to trade off.
- Shape-defined classes within a colour family: the inside of a big disc, square or triangle looks
  the same locally, so naming it needs a field of view that reaches its outline. This is what
  LargeFOV (fc6 rate 12 vs small rates), ASPP and image pooling buy in the papers. The ring and
  bar contrasts are decided by local thickness instead, so not every class needs the big FOV.
- Thin parts (rings, bars 3+ px wide), corners and colour-coherent edges (each object is one flat
  colour plus noise; the boundary is a step): a coarse score map smears them, while a dense CRF
  that follows image edges (v1/v2) or a decoder that brings back low-level features (v3+) recovers
  them. The trimap metric (accuracy in a band around boundaries) measures exactly this.
- The 1-pixel ignore band mirrors VOC's void outline around objects, so losses and metrics
  exercise ignore_index the way they will on real data.
- Occlusion makes shapes partial, so a shape must be judged from context, not a template.
- Learnable at the tiny scale: two shapes per colour (not five) keeps the task within reach of a
  small CNN trained from scratch. An 8-layer BN CNN (output stride 4, 128 px, batch 8, SGD lr
  0.02, poly) reaches 24-38% mIoU after 300 steps and 48-58% after 1000, where the dilated
  (larger field of view) variant is 10 points ahead; with five shapes per colour the same net
  stayed near the colour-only ceiling (~12%) after 300 steps.

Class pixel frequencies are uneven, as in VOC: about 75% background, 2.7% ignore, 0.4-2% per
object class (bars and rings are the rarest).

Determinism: image i of (seed, split) is drawn from its own generator, seeded by
(seed, crc32(split), i), so it does not depend on n, any split name works and splits differ.
Bump GENERATOR_VERSION whenever the output for a given key changes (it keys the disk cache).
"""

from __future__ import annotations

import colorsys
import itertools
import logging
import os
import zlib
from pathlib import Path

import numpy as np

from bench.atomic import atomic_write

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
NUM_CLASSES = 21  # background + 20 object classes, like PASCAL VOC
IGNORE_INDEX = 255

SHAPES = ("disc", "square", "triangle", "ring", "bar")
# Ten hues 36 degrees apart; an object's hue is jittered by +-5 degrees, its saturation and value
# vary, and per-pixel noise is added, so one pixel is ambiguous but a small patch is not.
FAMILY_HUE: dict[str, float] = {
    "red": 0.0, "orange": 36.0, "yellow": 72.0, "lime": 108.0, "green": 144.0,
    "cyan": 180.0, "azure": 216.0, "blue": 252.0, "violet": 288.0, "magenta": 324.0,
}
COLOUR_FAMILIES = tuple(FAMILY_HUE)
_HUE_JITTER = 5.0
# Family k owns the k-th of the C(5, 2) = 10 pairs of shapes, so every shape contrast is needed
# exactly once: disc/square, disc/triangle, square/triangle need the outline (a large field of
# view on large objects); X/ring and X/bar need the local thickness.
CLASSES: tuple[tuple[str, str], ...] = tuple(
    (family, shape)
    for family, pair in zip(COLOUR_FAMILIES, itertools.combinations(SHAPES, 2))
    for shape in pair
)
CLASS_NAMES: tuple[str, ...] = ("background",) + tuple(f"{c}-{s}" for c, s in CLASSES)
assert len(CLASS_NAMES) == NUM_CLASSES

MIN_OBJECTS, MAX_OBJECTS = 3, 8
MIN_RADIUS = 3.0  # px; an object's "radius" is about half its extent
MAX_RADIUS_FRACTION = 0.45  # of the image side
CACHE_ENV = "BENCH_DATA_CACHE"


def class_index(colour: str, shape: str) -> int:
    """The label of a (colour family, shape) pair, 1..20."""
    try:
        return 1 + CLASSES.index((colour, shape))
    except ValueError:
        valid = ", ".join(CLASS_NAMES[1:])
        raise ValueError(f"no class {colour}-{shape}; valid: {valid}") from None


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


def interp_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells) matrix that linearly upsamples `cells` control values to `size` pixels."""
    pos = (np.arange(size) + 0.5) * (cells - 1) / size
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    frac = (pos - lo).astype(np.float32)
    w = np.zeros((size, cells), np.float32)
    w[np.arange(size), lo] = 1.0 - frac
    w[np.arange(size), lo + 1] = frac
    return w


def background(rng: np.random.Generator, size: int, interp: list[np.ndarray]) -> np.ndarray:
    """Textured low-saturation background in [0, 1]-ish, float32 (size, size, 3)."""
    grey = rng.uniform(0.25, 0.75)
    img = np.full((size, size, 3), grey, np.float32)
    for w, amp in zip(interp, (0.08, 0.07)):
        cells = w.shape[1]
        coarse = rng.normal(0.0, amp, (cells, cells, 3)).astype(np.float32)
        img += np.einsum("hk,kjc,wj->hwc", w, coarse, w, optimize=True)
    return img


def _object_colour(rng: np.random.Generator, family: str) -> np.ndarray:
    hue = ((FAMILY_HUE[family] + rng.uniform(-_HUE_JITTER, _HUE_JITTER)) % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.7, 1.0))
    return np.asarray(rgb, np.float32)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray, r: float, rng: np.random.Generator):
    """Boolean mask of `shape` with radius r over pixel offsets (dy, dx) from its centre."""
    if shape == "disc":
        return dy * dy + dx * dx <= r * r
    if shape == "ring":
        thickness = max(3.0, r * rng.uniform(0.25, 0.4))
        d2 = dy * dy + dx * dx
        return (d2 <= r * r) & (d2 >= (r - thickness) ** 2)
    theta = rng.uniform(0.0, 2.0 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    u = c * dx + s * dy
    v = -s * dx + c * dy
    if shape == "square":
        half = 0.8 * r
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == "bar":
        half_width = max(1.5, r * rng.uniform(0.12, 0.2))
        return (np.abs(u) <= 1.6 * r) & (np.abs(v) <= half_width)
    if shape == "triangle":
        circum = 1.2 * r  # equilateral; inradius = circumradius / 2
        inside = np.ones(np.broadcast_shapes(u.shape, v.shape), bool)
        for k in range(3):
            a = 2.0 * np.pi * k / 3.0
            inside &= u * np.cos(a) + v * np.sin(a) <= circum / 2.0
        return inside
    raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPES)}")


def paint_object(img: np.ndarray, rng: np.random.Generator, family: str, shape: str, r: float,
                 cy: float, cx: float) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Paint one object (flat colour of ``family``, ``shape`` of radius ``r`` centred at (cy, cx))
    into ``img`` (H, W, 3); returns (the window it lies in, its mask there), None when off the image.
    Rings and bars get a radius of 5 px at least: a ring needs a hole, a bar a length."""
    if shape in ("ring", "bar"):
        r = max(r, 5.0)
    size_y, size_x = img.shape[:2]
    ext = 1.65 * r + 1.0
    y0, y1 = max(0, int(cy - ext)), min(size_y, int(cy + ext) + 1)
    x0, x1 = max(0, int(cx - ext)), min(size_x, int(cx + ext) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
    mask = _shape_mask(shape, dy, dx, r, rng)
    window = (slice(y0, y1), slice(x0, x1))
    img[window][mask] = _object_colour(rng, family)
    return window, mask


def add_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-pixel Gaussian noise (sigma 15-30 of 255), then uint8: the last step of every image."""
    sigma = rng.uniform(15.0, 30.0) / 255.0
    img += sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _draw_scene(rng: np.random.Generator, size: int, interp: list[np.ndarray]):
    img = background(rng, size, interp)
    instance = np.zeros((size, size), np.int16)  # 0 background, k = k-th object drawn
    n_obj = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
    classes = rng.integers(1, NUM_CLASSES, n_obj)
    r_max = max(MIN_RADIUS + 1.0, MAX_RADIUS_FRACTION * size)
    radii = np.exp(rng.uniform(np.log(MIN_RADIUS), np.log(r_max), n_obj))
    centres = rng.uniform(0.0, size, (n_obj, 2))
    order = np.argsort(-radii, kind="stable")  # largest first: small objects occlude big ones
    label_of = np.zeros(n_obj + 1, np.uint8)
    for k, j in enumerate(order, start=1):
        cls = int(classes[j])
        family, shape = CLASSES[cls - 1]
        drawn = paint_object(img, rng, family, shape, float(radii[j]), *centres[j])
        if drawn is None:
            continue
        window, mask = drawn
        instance[window][mask] = k
        label_of[k] = cls

    label = label_of[instance]
    # 1-px ignore band: the pixels of the upper object wherever it touches something below it.
    band = np.zeros((size, size), bool)
    band[:, :-1] |= instance[:, :-1] > instance[:, 1:]
    band[:, 1:] |= instance[:, 1:] > instance[:, :-1]
    band[:-1, :] |= instance[:-1, :] > instance[1:, :]
    band[1:, :] |= instance[1:, :] > instance[:-1, :]
    label[band] = IGNORE_INDEX

    return add_noise(img, rng), label


def generate(seed: int, split: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic: images uint8 (n, size, size, 3) RGB, masks uint8 (n, size, size), 0..20|255.

    Image i depends only on (seed, split, i, size, GENERATOR_VERSION): a smaller n gives a prefix.
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    interp = [interp_matrix(size, 4), interp_matrix(size, 12)]
    code = _split_code(split)
    for i in range(n):
        rng = np.random.default_rng([int(seed), code, i])
        images[i], masks[i] = _draw_scene(rng, size, interp)
    return images, masks


def _save_npz(path: Path, images: np.ndarray, masks: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, images=images, masks=masks)


def cache_dir() -> Path:
    """Where generated arrays are cached: $BENCH_DATA_CACHE, else ~/.cache/deeplab-bench."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "deeplab-bench"


def cache_path(seed: int, split: str, n: int, size: int) -> Path:
    safe_split = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in split)
    split_id = f"{safe_split}-{_split_code(split):08x}"  # the crc keeps odd split names apart
    return cache_dir() / f"synthetic-v{GENERATOR_VERSION}-seed{seed}-{split_id}-n{n}-s{size}.npz"


def load_or_generate(seed: int, split: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """generate(), through the disk cache; a missing, stale or unreadable cache file is rebuilt."""
    path = cache_path(seed, split, n, size)
    try:
        with np.load(path) as f:
            images, masks = f["images"], f["masks"]
        if images.shape == (n, size, size, 3) and masks.shape == (n, size, size):
            return images, masks
        log.warning("ignoring cache file %s with unexpected shapes", path)
    except FileNotFoundError:
        pass
    except Exception as exc:  # corrupt or truncated file: regenerate
        log.warning("ignoring unreadable cache file %s: %s", path, exc)
    images, masks = generate(seed, split, n, size)
    try:
        # atomic: concurrent runs never read a half-written file
        atomic_write(path, lambda tmp: _save_npz(tmp, images, masks))
    except OSError as exc:
        log.warning("could not write data cache %s: %s", path, exc)
    return images, masks
