"""DeepLab v3's head: Atrous Spatial Pyramid Pooling with image pooling (v3 Sec. 3.3, Fig. 5).

ASPP runs in parallel on the backbone's features: one 1x1 conv and one 3x3 atrous conv per rate,
each 256 channels with batch norm and ReLU, plus image pooling (global average pool -> 1x1 conv
256 + BN + ReLU -> bilinear upsample). The branches are concatenated and projected by a 1x1 conv
256 + BN + ReLU; the v3 head then predicts the logits with one 1x1 conv. v3+ (Sec. 3.2) may make
the 3x3 branches depthwise separable ("atrous separable convolution").

The branch order (1x1, rates, image pooling) is torchvision's, so its projection weights load.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

ASPP_CHANNELS = 256  # v3 Sec. 3.3: every ASPP branch and the projection have 256 filters


class ConvBNReLU(nn.Sequential):
    """k x k conv (atrous rate r, 'same' padding, no bias) -> BN -> ReLU; children 0, 1, 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, rate: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=rate * (kernel_size - 1) // 2,
                      dilation=rate, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Atrous depthwise-separable 3x3 conv as in v3+ (Sec. 3.2, Fig. 3): depthwise 3x3 (rate r)
    -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (BN and ReLU after each, as in the paper's code)."""

    def __init__(self, in_channels: int, out_channels: int, rate: int = 1):
        super().__init__(OrderedDict([
            ("depthwise", nn.Conv2d(in_channels, in_channels, 3, padding=rate, dilation=rate,
                                    groups=in_channels, bias=False)),
            ("depthwise_bn", nn.BatchNorm2d(in_channels)),
            ("depthwise_relu", nn.ReLU(inplace=True)),
            ("pointwise", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
            ("pointwise_bn", nn.BatchNorm2d(out_channels)),
            ("pointwise_relu", nn.ReLU(inplace=True)),
        ]))


def conv3x3_bn_relu(in_channels: int, out_channels: int, rate: int = 1, *, separable: bool = False) -> nn.Sequential:
    if separable:
        return SeparableConvBNReLU(in_channels, out_channels, rate)
    return ConvBNReLU(in_channels, out_channels, 3, rate)


class ImagePooling(nn.Module):
    """Image-level features (v3 Sec. 3.3): global average pool -> 1x1 conv -> BN -> ReLU ->
    bilinear upsample to the feature map's size.

    Batch norm over a 1x1 map sees one value per channel when the batch has one image; PyTorch
    refuses that in training. For a batch of one in training we normalise with the running
    statistics (and leave them unchanged) instead of failing.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        y = self.conv(self.pool(x))
        if self.training and y.shape[0] == 1:
            bn = self.bn
            y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
        else:
            y = self.bn(y)
        return F.interpolate(self.relu(y), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """1x1 branch + one 3x3 branch per rate (+ image pooling) -> concat -> 1x1 projection + BN + ReLU.

    ``dropout`` (after the projection) is 0 in the paper; torchvision's DeepLabHead uses 0.5.
    """

    def __init__(self, in_channels: int, rates: tuple[int, ...], *, channels: int = ASPP_CHANNELS,
                 image_pooling: bool = True, separable: bool = False, dropout: float = 0.0):
        super().__init__()
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, channels, 1)]
            + [conv3x3_bn_relu(in_channels, channels, rate, separable=separable) for rate in self.rates]
        )
        self.image_pooling = ImagePooling(in_channels, channels) if image_pooling else None
        num_branches = len(self.branches) + int(image_pooling)
        project: list[nn.Module] = list(ConvBNReLU(num_branches * channels, channels, 1))
        if dropout:
            project.append(nn.Dropout(dropout))
        self.project = nn.Sequential(*project)
        self.out_channels = channels
        init_head(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [branch(x) for branch in self.branches]
        if self.image_pooling is not None:
            features.append(self.image_pooling(x))
        return self.project(torch.cat(features, dim=1))


class DeepLabV3Head(nn.Module):
    """v3's head: ASPP -> (optional ``refine`` block) -> 1x1 conv to the class logits.

    The paper has no ``refine``; torchvision's DeepLabHead adds a 3x3 conv 256 + BN + ReLU there.
    """

    def __init__(self, aspp: ASPP, num_classes: int, refine: nn.Module | None = None):
        super().__init__()
        self.aspp = aspp
        self.refine = refine
        self.classifier = nn.Conv2d(aspp.out_channels, num_classes, 1)
        if refine is not None:
            init_head(refine)

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The 1x1 conv to the class logits."""
        return list(self.classifier.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.aspp(x)
        if self.refine is not None:
            x = self.refine(x)
        return self.classifier(x)


def init_head(module: nn.Module) -> None:
    """He init for the head's convs, BN at identity (as torchvision initialises ResNet)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
