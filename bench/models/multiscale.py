"""The two multi-scale DeepLabs: v1's multi-scale features (MSc) and v2's multi-scale inputs (MSC).

Same knob name, ``msc``, two different ideas, as the papers use it:

- v1 (ICLR'15, Sec. 4.3 "Multi-scale prediction"): the image and the outputs of the first four
  max-pools each feed a two-layer MLP (3x3 conv 128, 1x1 conv 128); their 5 x 128 = 640 channels
  are concatenated to fc7's output, and fc8 classifies the concatenation. ``DeepLabV1MSc``.
  (The released prototxts give each MLP its own 1x1 classifier and sum the six logit maps; that is
  the same linear map as one fc8 on the concatenation, with one bias instead of six.)
- v2 (TPAMI'17, Sec. 4.1 "MSC"): the image at scales 1, 0.75 and 0.5 goes through the same
  network (shared weights); the logits are fused by taking the pixel-wise maximum, and training
  puts a loss on every scale and on the fused map. ``MultiScaleDeepLab``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.deeplab import DeepLab
from bench.models.heads import FCBranch

MSC_SCALES = (1.0, 0.75, 0.5)  # v2 Sec. 4.1: "we use three scales s in {1, 0.75, 0.5}"
MSC_TAPS = 5  # v1 Sec. 4.3: the input and the first four max-pool outputs


class DeepLabV1MSc(DeepLab):
    """v1 DeepLab-MSc: VGG-16 -> fc6 -> fc7, concatenated with the five MLP branches -> fc8.

    ``backbone`` is the atrous VGG-16 ``nn.Sequential``; the MLP inputs are the image and the
    outputs of its first four ``nn.MaxPool2d`` (strides 2, 4, 8, 8). ``msc[i]`` is the MLP of
    tap i (0 = the image); their outputs follow fc7's channels in the concatenation.
    """

    def __init__(self, backbone: nn.Sequential, head: FCBranch, msc: list[nn.Module], output_stride: int):
        super().__init__(backbone, head, output_stride)
        if len(msc) != MSC_TAPS:
            raise ValueError(f"v1 MSc needs {MSC_TAPS} MLP branches (the image and pool1..pool4), got {len(msc)}")
        self.msc = nn.ModuleList(msc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps, y = [x], x
        for layer in self.backbone:
            y = layer(y)
            if isinstance(layer, nn.MaxPool2d) and len(taps) < MSC_TAPS:
                taps.append(y)
        features = [self.head.features(y)] + [branch(tap) for branch, tap in zip(self.msc, taps)]
        logits = self.head.fc8(torch.cat(features, dim=1))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def scaled_size(size: int, scale: float) -> int:
    """The side of the image at ``scale``: (size - 1) * scale + 1, rounded down, as Caffe's Interp
    layer shrinks in the released v2 MSC prototxts (321 -> 241 at 0.75, 161 at 0.5)."""
    return int((size - 1) * scale) + 1


class MultiScaleDeepLab(DeepLab):
    """v2 MSC: the same backbone and head run on the image at every scale of ``scales``
    (shared weights); each scale's logits are upsampled bilinearly to the input's size and the
    fused logits are their pixel-wise maximum.

    What ``forward`` returns (the contract the LightningModule relies on):

    - eval mode (``model.eval()``): the fused logits, a tensor N x C x H x W, like every model.
    - train mode: ``{"out": fused, "scales": [logits at scale 1, 0.75, 0.5]}``, every tensor
      N x C x H x W at the input's size, in the order of ``self.scales``, so the loss can be
      CE(out) + sum of CE(scale) (v2 Sec. 4.1: a loss on every scale and on the fused output).
      The papers' Caffe code downsamples the labels to each scale's output instead; we upsample
      the logits, as for the single-scale loss.

    The module names are DeepLab's (``backbone``, ``head``), so weights move freely between the
    single- and multi-scale models.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, output_stride: int,
                 scales: tuple[float, ...] = MSC_SCALES):
        super().__init__(backbone, head, output_stride)
        self.scales = tuple(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        size = x.shape[-2:]
        outputs = []
        for scale in self.scales:
            xs = x
            if scale != 1:
                xs = F.interpolate(x, size=[scaled_size(s, scale) for s in size], mode="bilinear",
                                   align_corners=False)
            logits = self.head(self.backbone(xs))
            outputs.append(F.interpolate(logits, size=size, mode="bilinear", align_corners=False))
        fused = torch.stack(outputs).amax(dim=0)
        if self.training:
            return {"out": fused, "scales": outputs}
        return fused
