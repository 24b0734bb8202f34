"""Statistics of the synthetic data set: class pixel frequencies and an object-size histogram.

`bench data-stats` prints them; docs/synthetic-data.md holds the output for the default split and
says why each property is there. Sizes are visible areas: the pixels of one class in one image
(occluded parts do not count, two objects of a class in one image count as one region, which is
rare with 3-8 objects out of 20 classes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.data import synthetic

# Visible area as a fraction of the image: from a few pixels (gone at output stride 32) to most
# of the image (needs a field of view as large as the image).
SIZE_BINS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def class_frequencies(masks: np.ndarray) -> pd.DataFrame:
    """Per class (and ignore): share of all pixels and share of images containing it, percent."""
    counts = np.bincount(masks.ravel(), minlength=256)
    present = np.stack([(masks == c).any(axis=(1, 2)) for c in range(synthetic.NUM_CLASSES)]).mean(1)
    rows = [{"class": name, "pixels_%": 100 * counts[c] / masks.size, "images_%": 100 * present[c]}
            for c, name in enumerate(synthetic.CLASS_NAMES)]
    rows.append({"class": "ignore (255)", "pixels_%": 100 * counts[synthetic.IGNORE_INDEX] / masks.size,
                 "images_%": 100 * (masks == synthetic.IGNORE_INDEX).any(axis=(1, 2)).mean()})
    return pd.DataFrame(rows)


def object_sizes(masks: np.ndarray) -> np.ndarray:
    """Visible area (fraction of the image) of every object class present in every image."""
    areas = [np.bincount(mask.ravel(), minlength=256)[1:synthetic.NUM_CLASSES] for mask in masks]
    areas = np.concatenate(areas) / masks[0].size
    return areas[areas > 0]


def size_histogram(masks: np.ndarray) -> pd.DataFrame:
    sizes = object_sizes(masks)
    counts, _ = np.histogram(sizes, bins=SIZE_BINS)
    side = masks.shape[1]
    rows = [{"visible area": f"{100 * lo:g}-{100 * hi:g}% ({lo * side * side:.0f}-{hi * side * side:.0f} px)",
             "objects": int(n), "share_%": 100 * n / max(1, len(sizes))}
            for lo, hi, n in zip(SIZE_BINS, SIZE_BINS[1:], counts)]
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame, decimals: int) -> str:
    """A pipe table (pandas' to_markdown would need the tabulate package)."""
    def cell(value):
        return f"{value:.{decimals}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def report(seed: int = 0, split: str = "train", n: int = 1000, size: int = 128) -> str:
    """The statistics of one split as Markdown (the split comes from the disk cache when there)."""
    _, masks = synthetic.load_or_generate(seed, split, n, size)
    frequencies = class_frequencies(masks)
    sizes = object_sizes(masks)
    return "\n".join([
        f"Synthetic data, seed {seed}, split {split}, {n} images of {size}x{size} "
        f"(generator version {synthetic.GENERATOR_VERSION})",
        "",
        "Class frequencies (percent of all pixels; percent of images that contain the class):",
        "",
        _markdown(frequencies, 2),
        "",
        f"Object sizes ({len(sizes)} visible objects, {len(sizes) / n:.2f} per image; median "
        f"{100 * np.median(sizes):.2f}% of the image):",
        "",
        _markdown(size_histogram(masks), 1),
    ])
