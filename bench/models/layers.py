"""Small building blocks shared by the DeepLab heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float) -> int:
    """Channel count narrowed by ``width`` (the tiny scale); never below 1."""
    return max(1, int(round(channels * width)))


class AtrousConv2d(nn.Conv2d):
    """A 'same'-size atrous convolution for any kernel size, even ones (v1 uses 4x4 fc6).

    The effective kernel spans rate * (k - 1) + 1 pixels; when rate * (k - 1) is odd the extra
    pixel of padding goes to the right/bottom, so the output always has the input's size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, rate: int = 1, bias: bool = True):
        total = rate * (kernel_size - 1)
        super().__init__(in_channels, out_channels, kernel_size, padding=total // 2, dilation=rate, bias=bias)
        self.extra_pad = total % 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_pad:
            x = F.pad(x, (0, self.extra_pad, 0, self.extra_pad))
        return super().forward(x)
