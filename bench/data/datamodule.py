"""The one LightningDataModule: parses a data spec and serves (image, mask) batches.

Batches are ``(images, masks)``: images float32 (B, 3, H, W) normalised with the ImageNet mean
and std (the backbones' convention), masks int64 (B, H, W) with IGNORE_INDEX (255) where the
label is void. Training batches are shuffled, randomly flipped left-right (image and mask
together) and drop the last incomplete batch (image-pooling BatchNorm fails on a batch of 1).

Data specs (``bench run --data SPEC``): ``synthetic`` (the embedded generator, the default),
``voc:PATH`` and ``cityscapes:PATH``. The last two parse but are not served yet.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bench.data import synthetic
from bench.errors import BenchError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VALID_SPECS = "synthetic, voc:PATH, cityscapes:PATH"
_KINDS_WITH_PATH = ("voc", "cityscapes")
SUPPORTED_KINDS = ("synthetic",)


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """'synthetic' -> ('synthetic', None); 'voc:PATH' -> ('voc', PATH); 'cityscapes:PATH' likewise.

    Anything else raises BenchError naming the valid forms. Only the first ':' splits, so a PATH
    may itself contain colons.
    """
    if not isinstance(spec, str):
        raise BenchError(f"data spec must be a string, got {spec!r}; valid: {VALID_SPECS}")
    if spec == "synthetic":
        return "synthetic", None
    kind, sep, path = spec.partition(":")
    if sep and kind in _KINDS_WITH_PATH and path.strip():
        return kind, path
    if kind in _KINDS_WITH_PATH:
        raise BenchError(f"data spec {spec!r} needs a path: {kind}:PATH; valid: {VALID_SPECS}")
    raise BenchError(f"unknown data spec {spec!r}; valid: {VALID_SPECS}")


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


def normalize(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) normalised with the ImageNet mean/std."""
    if isinstance(images, torch.Tensor):
        x = images.to(torch.float32)
    else:  # astype copies, so read-only (cached) arrays are fine
        x = torch.from_numpy(np.asarray(images).astype(np.float32))
    x = x.div(255.0).movedim(-1, -3)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def denormalize(images: torch.Tensor) -> np.ndarray:
    """Inverse of normalize: float (..., 3, H, W) -> uint8 (..., H, W, 3) RGB (CRF, plots)."""
    x = images.detach().float().cpu()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (x * std + mean).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return x.movedim(-3, -1).numpy()


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
        if self.flip and torch.rand(()) < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return normalize(image), torch.from_numpy(mask.astype(np.int64))


class SegmentationDataModule(pl.LightningDataModule):
    """Serves a data spec as train/val batches; see the module docstring for the batch format."""

    def __init__(self, spec: str = "synthetic", *, data_seed: int = 0, image_size: int = 128,
                 batch_size: int = 8, num_train: int = 1000, num_val: int = 200,
                 num_workers: int = 0):
        super().__init__()
        self.kind, self.path = parse_data_spec(spec)
        if self.kind not in SUPPORTED_KINDS:
            raise BenchError(f"data spec {spec!r}: {self.kind} is not supported yet; "
                             f"valid now: {', '.join(SUPPORTED_KINDS)}")
        for name, value, low in (("image_size", image_size, 8), ("batch_size", batch_size, 1),
                                 ("num_train", num_train, 1), ("num_val", num_val, 1),
                                 ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if num_train < batch_size:
            raise ValueError(f"num_train ({num_train}) must be >= batch_size ({batch_size}): "
                             "training drops the last incomplete batch")
        self.save_hyperparameters()
        self.spec = spec
        self.data_seed = data_seed
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_train = num_train
        self.num_val = num_val
        self.num_workers = num_workers
        self.num_classes = synthetic.NUM_CLASSES
        self.ignore_index = synthetic.IGNORE_INDEX
        self.class_names = synthetic.CLASS_NAMES
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def prepare_data(self) -> None:
        # Runs once per node before setup: fills the disk cache so DDP ranks do not all generate.
        self.arrays("train")
        self.arrays("val")

    def setup(self, stage: str | None = None) -> None:
        self.arrays("train")
        self.arrays("val")

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The raw read-only uint8 (images (N, H, W, 3), masks (N, H, W)) of a split.

        'holdout' is a third synthetic split of NUM_HOLDOUT images for tuning the CRF: the
        papers cross-validate its parameters on 100 held-out images (v2 Sec. 4.1), and a split
        of its own keeps the tuned parameters from seeing the images they are scored on.
        """
        if split not in self._arrays:
            n = {"train": self.num_train, "val": self.num_val, "holdout": NUM_HOLDOUT}.get(split)
            if n is None:
                raise ValueError(f"unknown split {split!r}; valid: train, val, holdout")
            self._arrays[split] = synthetic_arrays(self.data_seed, split, n, self.image_size)
        return self._arrays[split]

    def train_dataloader(self) -> DataLoader:
        # Seeded from torch's initial seed, so pl.seed_everything(s) fixes the order, independently
        # of how many random numbers model construction drew before.
        generator = torch.Generator().manual_seed(torch.initial_seed())
        return DataLoader(SegmentationArrays(*self.arrays("train"), flip=True),
                          batch_size=self.batch_size, shuffle=True, drop_last=True,
                          generator=generator, **self._loader_kwargs())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SegmentationArrays(*self.arrays("val")), batch_size=self.batch_size,
                          shuffle=False, drop_last=False, **self._loader_kwargs())

    def holdout_dataloader(self, n: int = NUM_HOLDOUT) -> DataLoader:
        images, masks = self.arrays("holdout")
        return DataLoader(SegmentationArrays(images[:n], masks[:n]), batch_size=self.batch_size,
                          shuffle=False, drop_last=False, **self._loader_kwargs())

    def _loader_kwargs(self) -> dict:
        return dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                    pin_memory=torch.cuda.is_available())
