"""Data: the embedded synthetic scenes, VOC 2012 and Cityscapes, and the LightningDataModule
that serves a data spec."""

from bench.data.datamodule import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SegmentationDataModule,
    class_names_of,
    denormalize,
    normalize,
    num_classes_of,
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
    "class_names_of",
    "denormalize",
    "normalize",
    "num_classes_of",
    "parse_data_spec",
]
