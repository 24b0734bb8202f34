"""Data: the embedded synthetic scenes and the LightningDataModule that serves a data spec."""

from bench.data.datamodule import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SegmentationDataModule,
    denormalize,
    normalize,
    parse_data_spec,
)
from bench.data.synthetic import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES

__all__ = [
    "CLASS_NAMES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NUM_CLASSES",
    "SegmentationDataModule",
    "denormalize",
    "normalize",
    "parse_data_spec",
]
