"""Image + label-PNG pairs on disk, as a Dataset: what VOC and Cityscapes have in common.

A data set module (voc.py, cityscapes.py) finds its files and says how raw mask values map to
training labels (a 256-entry table); everything else - reading, checking, transforming - is here,
so both data sets fail the same way on bad files.

Why the checks are per item: reading every mask up front would cost minutes on VOC trainaug, and
a wrong mask is rare. Missing folders, split lists and files are found when the data set is
indexed, before training starts (see voc.py, cityscapes.py); a mask that does not match its image
or holds a value outside the classes raises BenchError naming the file when it is first loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from bench.errors import BenchError

INVALID = -1  # in a label table: a raw mask value that must not occur


@dataclass(frozen=True)
class Sample:
    image: Path
    mask: Path


@dataclass(frozen=True)
class FileSplits:
    """An indexed data set: its train and val samples and how to read its masks."""

    name: str                      # e.g. "VOC 2012 trainaug" (for messages)
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]        # sorted by file name; holdout = its first images
    label_table: np.ndarray        # int16 (256,): raw mask value -> label, 255 void, INVALID
    class_names: tuple[str, ...]
    valid_raw: str                 # the allowed raw values, in words, for error messages


def label_table(mapping: dict[int, int], void: Sequence[int] = (255,)) -> np.ndarray:
    """A 256-entry table: raw value -> label for `mapping`, 255 for `void`, INVALID otherwise."""
    table = np.full(256, INVALID, np.int16)
    for raw, label in mapping.items():
        table[raw] = label
    table[list(void)] = 255
    return table


def check_files(samples: Sequence[Sample], what: str) -> None:
    """BenchError for the first sample whose image or mask file is missing."""
    for s in samples:
        for kind, path in (("image", s.image), ("mask", s.mask)):
            if not path.is_file():
                raise BenchError(f"{path}: missing {kind} file of {what} sample {s.image.stem}")


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))  # writable: torch warns on read-only arrays
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: unreadable image ({err})") from err


def read_labels(sample: Sample, table: np.ndarray, valid_raw: str) -> np.ndarray:
    """The mask as uint8 labels. A palette ('P') PNG gives its palette indices, not colours."""
    path = sample.mask
    try:
        with Image.open(path) as img:
            mode = img.mode
            raw = np.asarray(img)
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: unreadable mask ({err})") from err
    if raw.ndim != 2:
        raise BenchError(f"{path}: mask has mode {mode}; expected a palette (P) or 8-bit (L) label PNG")
    bad = [int(v) for v in np.unique(raw) if not 0 <= v <= 255 or table[int(v)] == INVALID]
    if bad:
        raise BenchError(f"{path}: mask value {bad[0]} is not a label; valid: {valid_raw}")
    return table[raw].astype(np.uint8)


class LabelledFiles(Dataset):
    """(image, mask) tensors from image files and label PNGs, through a joint transform.

    `transform(image uint8 (H, W, 3), labels uint8 (H, W))` returns the batch tensors; see
    bench.data.transforms.apply.
    """

    def __init__(self, samples: Sequence[Sample], table: np.ndarray, valid_raw: str,
                 transform: Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]]):
        self.samples, self.table, self.valid_raw, self.transform = tuple(samples), table, valid_raw, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[i]
        image = read_image(sample.image)
        labels = read_labels(sample, self.table, self.valid_raw)
        if image.shape[:2] != labels.shape:
            raise BenchError(f"{sample.mask}: mask is {labels.shape[1]}x{labels.shape[0]} but its image "
                             f"{sample.image.name} is {image.shape[1]}x{image.shape[0]} (width x height)")
        return self.transform(image, labels)


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: unreadable image ({err})") from err
