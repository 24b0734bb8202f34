"""DeepLab v1/v2 classifier heads: the fc6-fc7-fc8 branch, ASPP as summed branches, the
v1 MSc MLPs, and v2's ASPP on ResNet.

v1 turns VGG's fully connected layers into convolutions: fc6 is an atrous convolution whose
kernel size, rate and width are the knobs of the v1 field-of-view table; fc7 is 1x1; fc8 gives
the class logits. v2's ASPP (VGG-16) runs several such branches in parallel, each with its own
fc6 rate, and sums their logits (v2 Sec. 3.1, Fig. 4). On ResNet-101 v2 drops fc6/fc7: each
branch is the classifier alone, a 3x3 atrous conv to the classes (AtrousClassifiers).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models.layers import AtrousConv2d


class FCBranch(nn.Module):
    """fc6 (atrous k x k, rate r) -> ReLU -> dropout -> fc7 (1x1) -> ReLU -> dropout -> fc8 (1x1)."""

    def __init__(self, in_channels: int, num_classes: int, *, kernel_size: int, rate: int,
                 channels: int, dropout: float = 0.5):
        super().__init__()
        self.fc6 = AtrousConv2d(in_channels, channels, kernel_size, rate)
        self.fc7 = nn.Conv2d(channels, channels, 1)
        self.fc8 = self.classifier(channels, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)  # element-wise, as Caffe's dropout layer
        for conv in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    @staticmethod
    def classifier(in_channels: int, num_classes: int) -> nn.Conv2d:
        """fc8: a 1x1 conv to the classes, Gaussian std 0.01 and zero bias (DeepLab's prototxts)."""
        fc8 = nn.Conv2d(in_channels, num_classes, 1)
        nn.init.normal_(fc8.weight, std=0.01)
        nn.init.zeros_(fc8.bias)
        return fc8

    def classifier_parameters(self) -> list[nn.Parameter]:
        """fc8's weight and bias: the layer that learns at 10x the base rate in v1/v2."""
        return list(self.fc8.parameters())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """fc7's output (after ReLU and dropout): what fc8 classifies."""
        x = self.dropout(self.relu(self.fc6(x)))
        return self.dropout(self.relu(self.fc7(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc8(self.features(x))


class SummedBranches(nn.Module):
    """v2 ASPP on VGG-16: one FCBranch per rate, logits summed (v2 Fig. 4(b))."""

    def __init__(self, branches: list[FCBranch]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def classifier_parameters(self) -> list[nn.Parameter]:
        """Every branch's fc8, branch by branch."""
        return [p for branch in self.branches for p in branch.classifier_parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.branches[0](x)
        for branch in self.branches[1:]:
            logits = logits + branch(x)
        return logits


MSC_CHANNELS = 128  # v1 Sec. 4.3: each MSc MLP has 128 3x3 filters, then 128 1x1 filters


class MScBranch(nn.Module):
    """One v1 MSc MLP (Sec. 4.3): 3x3 conv -> ReLU -> dropout -> 1x1 conv -> ReLU -> dropout.

    Its input is the image or a pool output at stride 1, 2, 4 or 8; the 3x3 conv strides by
    ``stride`` = 8 / that stride, so every branch lands on the stride-8 grid of fc7 (the released
    DeepLab-MSc prototxts stride the input's branch by 8, pool1's by 4, pool2's by 2, pool3's and
    pool4's by 1; the dropout after each layer is theirs too). A 3x3 window, padding 1 and stride
    s map a map of size n to ceil(n / s), the size DeepLab's 3x3 stride-2 pools give.
    """

    def __init__(self, in_channels: int, channels: int, stride: int, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.relu(self.conv1(x)))
        return self.dropout(self.relu(self.conv2(x)))


class AtrousClassifiers(nn.Module):
    """v2's LargeFOV / ASPP on ResNet-101: per rate, one 3x3 atrous conv from the backbone's
    features straight to the class logits; the logits are summed.

    The released DeepLab-v2 ResNet-101 prototxt names them fc1_voc12_c0..c3 (dilation 6, 12, 18,
    24 for ASPP-L), initialised Gaussian std 0.01, learning at 10x the backbone's rate. They are
    the classifier (there is no fc6/fc7 on ResNet), so they are called ``fc8`` here, and
    ``classifier_parameters`` gives them to the LightningModule's 10x classifier rate.
    """

    def __init__(self, in_channels: int, num_classes: int, rates: tuple[int, ...]):
        super().__init__()
        self.rates = tuple(rates)
        self.fc8 = nn.ModuleList([AtrousConv2d(in_channels, num_classes, 3, rate) for rate in self.rates])
        for conv in self.fc8:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def classifier_parameters(self) -> list[nn.Parameter]:
        """Every rate's 3x3 conv to the classes (fc1_voc12_c0..c3)."""
        return list(self.fc8.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc8[0](x)
        for conv in self.fc8[1:]:
            logits = logits + conv(x)
        return logits
