"""DeepLab v1/v2 classifier heads: the fc6-fc7-fc8 branch, and ASPP as summed branches.

v1 turns VGG's fully connected layers into convolutions: fc6 is an atrous convolution whose
kernel size, rate and width are the knobs of the v1 field-of-view table; fc7 is 1x1; fc8 gives
the class logits. v2's ASPP (VGG-16) runs several such branches in parallel, each with its own
fc6 rate, and sums their logits (v2 Sec. 3.1, Fig. 4).
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
        self.fc8 = nn.Conv2d(channels, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)  # element-wise, as Caffe's dropout layer
        for conv in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)  # DeepLab's prototxt: gaussian std 0.01 for fc8
        nn.init.zeros_(self.fc8.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return self.fc8(x)


class SummedBranches(nn.Module):
    """v2 ASPP on VGG-16: one FCBranch per rate, logits summed (v2 Fig. 4(b))."""

    def __init__(self, branches: list[FCBranch]):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.branches[0](x)
        for branch in self.branches[1:]:
            logits = logits + branch(x)
        return logits
