"""Joint image + mask transforms of the real data sets (VOC, Cityscapes), with torchvision v2.

Why torchvision.transforms.v2 with tv_tensors: one transform call moves the Image and its Mask
together (same scale, same crop window, same flip), and each type gets its own kernel - bilinear
for the image, nearest for the mask, the mean colour or 255 as padding. Mask and image cannot
drift apart because no code draws their parameters twice.

Training (v3 Sec. 4.1 "randomly scaling the input images (from 0.5 to 2.0) and randomly
left-right flipping"; v2 Sec. 4.1 uses the same scaling for ResNet; the released DeepLab code
does it in this order): random scale in [0.5, 2.0], pad to the crop size (image with the ImageNet
mean colour, which is ~0 after normalisation, mask with 255 so padding is never learned), random
crop_size x crop_size crop, left-right flip, ImageNet normalisation.

Evaluation: the whole image, no resizing; padded at the bottom and right to a fixed size per
split (mean colour / 255), as the DeepLab evaluation pads to 513 x 513, so that images of
different sizes batch together and every batch of a split has the same shape (the CRF and trimap
code stack chunks of batches). The 255 padding is left out of every metric.

The synthetic data set does not come through here (see SegmentationArrays).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_RGB = tuple(round(255 * m) for m in IMAGENET_MEAN)  # uint8 padding colour: (124, 116, 104)
IGNORE_INDEX = 255
SCALE_RANGE = (0.5, 2.0)  # v3 Sec. 4.1


class RandomScale(v2.Transform):
    """Resize by one factor drawn uniformly from `scale_range` (relative to the input's size).

    torchvision's RandomResize draws an absolute side length and ScaleJitter a factor of a fixed
    target size; the papers scale each image relative to itself. The mask uses NEAREST_EXACT,
    whose pixel centres match bilinear's (plain NEAREST is shifted by half a source pixel).
    """

    def __init__(self, scale_range: tuple[float, float] = SCALE_RANGE):
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        low, high = self.scale_range
        factor = float(torch.empty(()).uniform_(low, high))
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return F.resize(inpt, params["size"], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        return F.resize(inpt, params["size"], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


def _fill() -> dict:
    return {tv_tensors.Image: MEAN_RGB, tv_tensors.Mask: IGNORE_INDEX}


def _to_normalised_float() -> list[v2.Transform]:
    # ToDtype on the Image only: the mask stays an integer label map.
    return [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def train_transform(crop_size: int, scale_range: tuple[float, float] | None = SCALE_RANGE) -> v2.Compose:
    """Random scale, pad + random crop to crop_size, flip, normalise (see the module docstring).
    ``scale_range`` None leaves out the scaling (v1/v2 VGG recipes: crop and flip only)."""
    return v2.Compose([
        *([RandomScale(scale_range)] if scale_range is not None else []),
        v2.RandomCrop(crop_size, pad_if_needed=True, fill=_fill()),
        v2.RandomHorizontalFlip(),
        *_to_normalised_float(),
    ])


class PadTo(v2.Transform):
    """Pad at the bottom and right to (height, width): mean colour for the image, 255 for the mask."""

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = size

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        height, width = F.get_size(inpt)
        bottom, right = self.size[0] - height, self.size[1] - width
        if bottom < 0 or right < 0:
            raise ValueError(f"image of {height}x{width} is larger than the padded size {self.size}")
        fill = IGNORE_INDEX if isinstance(inpt, tv_tensors.Mask) else list(MEAN_RGB)
        return F.pad(inpt, [0, 0, right, bottom], fill=fill)


def eval_transform(pad_to: tuple[int, int]) -> v2.Compose:
    """The whole image, padded to `pad_to` (height, width), normalised."""
    return v2.Compose([PadTo(pad_to), *_to_normalised_float()])


def apply(transform: v2.Transform, image, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H, W, 3) RGB and (H, W) labels (numpy) -> float (3, h, w) and int64 (h, w) tensors."""
    image = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous())
    mask = tv_tensors.Mask(torch.from_numpy(mask))
    image, mask = transform(image, mask)
    return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).to(torch.int64)


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
