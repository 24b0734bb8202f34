"""Test-time inference strategies (v3 Sec. 4.3 / Table 6 "inference strategy"; v3+ Table 3).

- ``scales``: the image is resized to each scale, the softmax of each output is resized back to
  the image size, and the probabilities are averaged (v3: scales {0.5, 0.75, 1.0, 1.25, 1.5,
  1.75}; the released TF code averages softmax outputs, as here).
- ``flip``: every scale is also run on the left-right mirrored image, its output mirrored back
  and included in the average.
- ``output_stride``: evaluate at another output stride than training's (v3: train 16, eval 8).
  Strides and rates do not change any weight's shape, so the same weights load into the network
  rebuilt at the eval stride.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

@dataclass(frozen=True)
class Inference:
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    output_stride: int | None = None  # None: the training network's own

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or any(not 0.1 <= s <= 4.0 for s in self.scales):
            raise ValueError(f"eval scales must be numbers in [0.1, 4], got {self.scales}")
        if not isinstance(self.flip, bool):
            raise ValueError(f"eval flip must be true or false, got {self.flip!r}")
        if self.output_stride not in (None, 8, 16, 32):
            raise ValueError(f"eval output_stride {self.output_stride!r} is not valid; valid: 8, 16, 32")

    @property
    def is_plain(self) -> bool:
        return self.scales == (1.0,) and not self.flip

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scales": list(self.scales)}


def predict_probs(model: nn.Module, images: torch.Tensor, inference: Inference = Inference()) -> torch.Tensor:
    """Class probabilities (N, C, H, W) at the images' size under the inference strategy."""
    size = images.shape[-2:]
    total, count = None, 0
    for scale in inference.scales:
        scaled = images if scale == 1.0 else F.interpolate(
            images, scale_factor=scale, mode="bilinear", align_corners=False, recompute_scale_factor=False)
        views = [(scaled, False), (scaled.flip(-1), True)] if inference.flip else [(scaled, False)]
        for view, flipped in views:
            probs = model(view).softmax(dim=1)
            if flipped:
                probs = probs.flip(-1)
            if probs.shape[-2:] != size:
                probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
            total = probs if total is None else total + probs
            count += 1
    return total / count


def at_output_stride(model: nn.Module, build, output_stride: int | None) -> nn.Module:
    """The trained weights in the network rebuilt at ``output_stride`` (``build(os)`` makes it)."""
    if output_stride is None or getattr(model, "output_stride", None) == output_stride:
        return model
    rebuilt = build(output_stride)
    rebuilt.load_state_dict(model.state_dict())
    return rebuilt.to(next(model.parameters()).device).train(model.training)
