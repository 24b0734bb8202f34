"""The one LightningDataModule: parses a data spec and serves (image, mask) batches.

Batches are ``(images, masks)``: images float32 (B, 3, H, W) normalised with the ImageNet mean
and std (the backbones' convention), masks int64 (B, H, W) with IGNORE_INDEX (255) where the
label is void. Training batches are shuffled and drop the last incomplete batch (image-pooling
BatchNorm fails on a batch of 1).

Data specs (``bench run --data SPEC``):
- ``synthetic`` (the default): the embedded generator (synthetic.py), square images of the
  scale's crop size; training flips left-right only.
- ``voc:PATH``: PASCAL VOC 2012 (voc.py), trainaug when SBD's SegmentationClassAug is there;
  21 classes.
- ``cityscapes:PATH``: Cityscapes fine (cityscapes.py), the 19 benchmark classes.
Real data trains on a random scale (the recipe's, 0.5-2.0 by default; none for the VGG recipes) + crop of the crop size + flip and is evaluated on whole
images padded to one size per split (transforms.py). Splits: train, val (the official val list,
as the papers report) and holdout (NUM_HOLDOUT images for the CRF search: synthetic has its own
split; real data takes NUM_HOLDOUT val images evenly spaced through the sorted list, so they
span years/cities - the papers also tune the CRF on val images, v2 Sec. 4.1).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bench.data import cityscapes, synthetic, transforms, voc
from bench.data.files import FileSplits, LabelledFiles, image_size
from bench.data.spec import parse_data_spec
from bench.data.transforms import normalize
from bench.errors import BenchError

_INDEXERS = {"voc": voc.index, "cityscapes": cityscapes.index}


def default_workers(kind: str) -> int:
    """Loader processes when the scale does not say: none for the in-memory synthetic arrays
    (a worker costs more than indexing an array), min(4, CPUs) to decode and augment real files."""
    return 0 if kind == "synthetic" else min(4, os.cpu_count() or 1)


def holdout_indices(n_val: int, n: int) -> list[int]:
    """n indices evenly spaced over range(n_val), first included: deterministic, and on real data
    spread over the whole sorted val list (all VOC years, all Cityscapes cities)."""
    n = min(n, n_val)
    return [i * n_val // n for i in range(n)]


# Arrays shared by every DataModule in this process (the runner builds one per variant and seed);
# keyed like the disk cache, a few entries at most. The arrays are read-only.
_MEMORY_CACHE: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_MEMORY_CACHE_SIZE = 4


def synthetic_arrays(seed: int, split: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic split as read-only uint8 arrays, through the memory and disk caches."""
    key = (seed, split, n, size, synthetic.GENERATOR_VERSION)
    if key in _MEMORY_CACHE:
        _MEMORY_CACHE.move_to_end(key)
        return _MEMORY_CACHE[key]
    images, masks = synthetic.load_or_generate(seed, split, n, size)
    images.flags.writeable = False
    masks.flags.writeable = False
    _MEMORY_CACHE[key] = (images, masks)
    while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
        _MEMORY_CACHE.popitem(last=False)
    return images, masks


NUM_HOLDOUT = 100  # images for the CRF parameter search (v2 Sec. 4.1: 100 val images)


class SegmentationArrays(Dataset):
    """(image, mask) pairs from uint8 arrays; `flip` draws a left-right flip per item.

    The flip uses torch's global RNG: in the main process that is seeded by pl.seed_everything,
    in a worker by the DataLoader (from its generator), so a seeded run is repeatable either way.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, *, flip: bool = False):
        if len(images) != len(masks) or images.shape[1:3] != masks.shape[1:3]:
            raise ValueError(f"images {images.shape} and masks {masks.shape} do not match")
        self.images, self.masks, self.flip = images, masks, flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.images[i], self.masks[i]
        # Flip only, unlike real data: objects already have log-uniform sizes; committed results used this.
        if self.flip and torch.rand(()) < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return normalize(image), torch.from_numpy(mask.astype(np.int64))


class SegmentationDataModule(pl.LightningDataModule):
    """Serves a data spec as train/val batches; see the module docstring for the batch format.

    For real data the files are indexed here, so a missing folder, split list or file raises
    BenchError when the module is built (the runner builds one before any training); `image_size`
    is then the training crop, and num_train / num_val / data_seed are unused (the lists decide).
    """

    def __init__(self, spec: str = "synthetic", *, data_seed: int = 0, image_size: int = 128,
                 batch_size: int = 8, num_train: int = 1000, num_val: int = 200,
                 num_workers: int | None = None, scale_range: tuple[float, float] | None = transforms.SCALE_RANGE):
        super().__init__()
        self.kind, self.path = parse_data_spec(spec)
        if num_workers is None:
            num_workers = default_workers(self.kind)
        for name, value, low in (("image_size", image_size, 8), ("batch_size", batch_size, 1),
                                 ("num_train", num_train, 1), ("num_val", num_val, 1),
                                 ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.files: FileSplits | None = None
        if self.kind == "synthetic":
            num_classes, class_names, train_size = synthetic.NUM_CLASSES, synthetic.CLASS_NAMES, num_train
        else:
            self.files = _INDEXERS[self.kind](self.path)
            num_classes, class_names = len(self.files.class_names), self.files.class_names
            train_size = len(self.files.train)
        if train_size < batch_size and self.files is None:
            raise ValueError(f"num_train ({num_train}) must be >= batch_size ({batch_size}): "
                             "training drops the last incomplete batch")
        if train_size < batch_size:
            raise BenchError(f"{spec}: {self.files.name} has {train_size} training images, fewer than "
                             f"the batch size {batch_size} (training drops the last incomplete batch)")
        self.save_hyperparameters()
        self.spec = spec
        self.data_seed = data_seed
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_train = num_train
        self.num_val = num_val
        self.num_workers = num_workers
        self.scale_range = tuple(scale_range) if scale_range is not None else None
        self.num_classes = num_classes
        self.ignore_index = synthetic.IGNORE_INDEX
        self.class_names = class_names
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._eval_size: tuple[int, int] | None = None

    def prepare_data(self) -> None:
        # Runs once per node before setup: fills the disk cache so DDP ranks do not all generate.
        self.setup()

    def setup(self, stage: str | None = None) -> None:
        if self.kind == "synthetic":
            self.arrays("train")
            self.arrays("val")

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The raw read-only uint8 (images (N, H, W, 3), masks (N, H, W)) of a synthetic split.

        'holdout' is a third synthetic split of NUM_HOLDOUT images for tuning the CRF: the
        papers cross-validate its parameters on 100 held-out images (v2 Sec. 4.1), and a split
        of its own keeps the tuned parameters from seeing the images they are scored on.
        """
        if self.kind != "synthetic":
            raise ValueError(f"arrays() serves the synthetic data only, not {self.spec!r}; use the loaders")
        if split not in self._arrays:
            n = {"train": self.num_train, "val": self.num_val, "holdout": NUM_HOLDOUT}.get(split)
            if n is None:
                raise ValueError(f"unknown split {split!r}; valid: train, val, holdout")
            self._arrays[split] = synthetic_arrays(self.data_seed, split, n, self.image_size)
        return self._arrays[split]

    def eval_size(self) -> tuple[int, int]:
        """(height, width) every evaluated image is padded to: the largest over the val list (read
        from the file headers once), so all val and holdout batches have one shape."""
        if self._eval_size is None:
            if self.files is None:
                self._eval_size = (self.image_size, self.image_size)
            else:
                sizes = np.array([image_size(s.image) for s in self.files.val])
                self._eval_size = (int(sizes[:, 0].max()), int(sizes[:, 1].max()))
        return self._eval_size

    def dataset(self, split: str, n: int = NUM_HOLDOUT) -> Dataset:
        """The train, val or holdout Dataset; holdout has `n` images (synthetic: the first n of
        its own split; real data: n val images evenly spaced, see holdout_indices)."""
        if split not in ("train", "val", "holdout"):
            raise ValueError(f"unknown split {split!r}; valid: train, val, holdout")
        if self.files is None:
            images, masks = self.arrays(split)
            if split == "holdout":
                images, masks = images[:n], masks[:n]
            return SegmentationArrays(images, masks, flip=split == "train")
        files = self.files
        if split == "train":
            samples, transform = files.train, transforms.train_transform(self.image_size, self.scale_range)
        else:
            samples = files.val
            if split == "holdout":
                samples = [samples[i] for i in holdout_indices(len(samples), n)]
            transform = transforms.eval_transform(self.eval_size())
        return LabelledFiles(samples, files.label_table, files.valid_raw, partial(transforms.apply, transform))

    def train_dataloader(self) -> DataLoader:
        # Seeded from torch's initial seed, so pl.seed_everything(s) fixes the order, independently
        # of how many random numbers model construction drew before.
        generator = torch.Generator().manual_seed(torch.initial_seed())
        return DataLoader(self.dataset("train"), batch_size=self.batch_size, shuffle=True, drop_last=True,
                          generator=generator, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("val"), batch_size=self.batch_size, shuffle=False, drop_last=False,
                          **self._loader_kwargs(), **self._own_generator())

    def holdout_dataloader(self, n: int = NUM_HOLDOUT) -> DataLoader:
        return DataLoader(self.dataset("holdout", n), batch_size=self.batch_size, shuffle=False,
                          drop_last=False, **self._loader_kwargs(), **self._own_generator())

    def _loader_kwargs(self) -> dict:
        return dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                    pin_memory=torch.cuda.is_available())

    @staticmethod
    def _own_generator() -> dict:
        """Evaluation draws nothing at random, but a DataLoader without a generator takes each
        iterator's base seed from torch's global RNG - the one the training flips use - so a
        validation during training (--val-every) would shift every later flip."""
        return dict(generator=torch.Generator().manual_seed(0))
