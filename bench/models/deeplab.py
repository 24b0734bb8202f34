"""DeepLab v1 and v2 (VGG-16, or ResNet for v2): backbone -> head -> bilinear upsampling to the
input size. The multi-scale variants (v1 MSc, v2 MSC) are in bench.models.multiscale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DeepLab(nn.Module):
    """A feature extractor and a classifier head; logits come back at the input's size.

    The papers upsample the stride-8 logits bilinearly (v1 Sec. 3.1: "bilinear interpolation ...
    at negligible computational cost"), so the loss and the metrics see full-resolution maps.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, output_stride: int):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.output_stride = output_stride

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The layers that map features to class logits, fc8 in v1/v2's words (every ASPP
        branch's, for v2), the 1x1 logits conv in v3's. The training recipe may give them their
        own learning rate (v1/v2's Caffe prototxts: 10x; bench.module)."""
        return self.head.classifier_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
