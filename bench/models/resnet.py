"""The atrous ResNet-50/101 of DeepLab v3/v3+, built from torchvision's Bottleneck.

What DeepLab changes (v3 Sec. 3.2, Fig. 3): once the feature map reaches the requested output
stride, a stage that would stride 2 keeps stride 1 and its 3x3 convolutions use an atrous rate
twice the previous one instead. Multigrid (v3 Sec. 3.2) gives the three units of block4 (and of
every cascaded block) the unit rates (r1, r2, r3), multiplying the block's rate: at OS 16 block4
has rate 2, so multigrid (1, 2, 4) gives the 3x3 convs rates (2, 4, 8). Cascaded blocks
block5..block7 are copies of block4 whose stride is replaced by a doubled rate (4, 8, 16 at OS 16).

Rates of a dilated stage ("contracted" or not): torchvision and timm give the first unit of a
dilated stage the previous stage's rate (torchvision: ``previous_dilation``). The paper and its
TensorFlow code run every unit of block4 at the block's rate times its multigrid unit rate, so by
default every unit of a dilated stage uses the stage's rate (not contracted). ``contracted=True``
restores torchvision's choice (for loading torchvision's deeplabv3 exactly): the first unit uses
the previous stage's rate (times its multigrid unit rate in block4 and after).

At width 1 the module names are torchvision's (conv1, bn1, layer1..layer4, downsample.0/1), so
ImageNet ResNet weights load unchanged (no ``fc``); cascaded blocks are ``layer5``..``layer7``.
``width`` scales the stem and every stage's planes; the unit counts, strides and rates stay.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, conv1x1

from bench.models.layers import scaled

RESNET_UNITS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
STEM_CHANNELS = 64
STAGE_PLANES = (64, 128, 256, 512)  # bottleneck widths of block1..block4; outputs are 4x these
STEM_STRIDE = 4  # conv1 stride 2 + max-pool stride 2
MULTIGRID_FROM_BLOCK = 4  # multigrid applies to block4 and the cascaded blocks after it


def stage_rates(num_stages: int, output_stride: int) -> list[tuple[int, int]]:
    """(stride, atrous rate) of each stage: block1 keeps the stem's stride 4; every later stage
    would stride 2 and is made atrous (stride 1, rate doubled) once ``output_stride`` is reached."""
    current_stride, rate, plan = STEM_STRIDE, 1, []
    for index in range(num_stages):
        stride = 1 if index == 0 else 2
        if stride == 2 and current_stride >= output_stride:
            stride, rate = 1, rate * 2
        current_stride *= stride
        plan.append((stride, rate))
    return plan


class AtrousResNet(nn.Module):
    """ResNet (v1.5, torchvision's layout) with DeepLab's atrous stages, multigrid and cascaded blocks.

    ``forward(x)`` returns the last block's features (``out_channels``, stride ``output_stride``);
    ``forward_with_low_level(x)`` also returns block1's (``low_level_channels``, stride 4) for the
    v3+ decoder (v3+ Sec. 3.1: ResNet-101's Conv2 features, before striding).
    """

    def __init__(self, units: tuple[int, ...], *, width: float = 1.0, output_stride: int = 16,
                 multigrid: tuple[int, int, int] = (1, 1, 1), cascade_blocks: int = 0,
                 contracted: bool = False):
        super().__init__()
        stem = scaled(STEM_CHANNELS, width)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        units = tuple(units) + (units[-1],) * cascade_blocks  # block5..7 are copies of block4
        planes = STAGE_PLANES + (STAGE_PLANES[-1],) * cascade_blocks
        plan = stage_rates(len(units), output_stride)
        self.output_stride = output_stride
        self.stage_names: list[str] = []
        in_channels, previous_rate = stem, 1
        for index, (num_units, stage_planes, (stride, rate)) in enumerate(zip(units, planes, plan)):
            block = index + 1
            unit_rates = [rate] * num_units
            if block >= MULTIGRID_FROM_BLOCK:
                if len(multigrid) != num_units:
                    raise ValueError(f"multigrid needs {num_units} unit rates for block{block}, got {multigrid!r}")
                unit_rates = [rate * m for m in multigrid]
            if contracted and rate != previous_rate:
                unit_rates[0] = previous_rate * (multigrid[0] if block >= MULTIGRID_FROM_BLOCK else 1)
            layer = self._make_stage(in_channels, scaled(stage_planes, width), stride, unit_rates)
            name = f"layer{block}"
            self.add_module(name, layer)
            self.stage_names.append(name)
            in_channels, previous_rate = scaled(stage_planes, width) * Bottleneck.expansion, rate
        self.out_channels = in_channels
        self.low_level_channels = scaled(STAGE_PLANES[0], width) * Bottleneck.expansion
        _init_like_torchvision(self)

    @staticmethod
    def _make_stage(in_channels: int, planes: int, stride: int, unit_rates: list[int]) -> nn.Sequential:
        """torchvision's ``ResNet._make_layer`` with one explicit atrous rate per unit."""
        out_channels = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
        units = [Bottleneck(in_channels, planes, stride, downsample, dilation=unit_rates[0])]
        units += [Bottleneck(out_channels, planes, dilation=r) for r in unit_rates[1:]]
        return nn.Sequential(*units)

    def forward_with_low_level(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        low_level = x = self.layer1(x)
        for name in self.stage_names[1:]:
            x = getattr(self, name)(x)
        return low_level, x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_low_level(x)[1]


def atrous_resnet(name: str, **kwargs) -> AtrousResNet:
    """``name`` in RESNET_UNITS ("resnet50", "resnet101"); kwargs as AtrousResNet."""
    if name not in RESNET_UNITS:
        raise ValueError(f"backbone {name!r} is not valid; valid: {', '.join(RESNET_UNITS)}")
    return AtrousResNet(RESNET_UNITS[name], **kwargs)


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
