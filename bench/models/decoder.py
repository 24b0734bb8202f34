"""DeepLab v3+'s decoder and the encoder-decoder model (v3+ Sec. 3.1, Fig. 2).

The encoder is v3 without its logits (backbone + ASPP, whose projection outputs 256 channels at
the output stride). The decoder reduces the backbone's stride-4 low-level features with a 1x1
conv to 48 channels (+ BN + ReLU; few channels so they do not outweigh the encoder, v3+ Table 1),
concatenates them with the encoder output upsampled bilinearly to the stride-4 size, refines with
two 3x3 convs of 256 (+ BN + ReLU; depthwise separable when ``separable``), predicts the logits
with a 1x1 conv, and the model upsamples them bilinearly (4x) to the input's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.aspp import ASPP, ConvBNReLU, conv3x3_bn_relu, init_head

LOW_LEVEL_CHANNELS = 48  # v3+ Table 1: the 1x1 reduction of the low-level features
DECODER_CHANNELS = 256  # v3+ Table 2: two 3x3 convs of 256 after the concatenation


class Decoder(nn.Module):
    def __init__(self, low_level_in: int, encoder_channels: int, num_classes: int, *,
                 low_level_channels: int = LOW_LEVEL_CHANNELS, channels: int = DECODER_CHANNELS,
                 separable: bool = False):
        super().__init__()
        self.reduce = ConvBNReLU(low_level_in, low_level_channels, 1)
        self.refine = nn.Sequential(
            conv3x3_bn_relu(encoder_channels + low_level_channels, channels, separable=separable),
            conv3x3_bn_relu(channels, channels, separable=separable),
        )
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        init_head(self.reduce)
        init_head(self.refine)

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The 1x1 conv to the class logits."""
        return list(self.classifier.parameters())

    def forward(self, low_level: torch.Tensor, encoder_out: torch.Tensor) -> torch.Tensor:
        """Logits at the low-level features' stride (4)."""
        encoder_out = F.interpolate(encoder_out, size=low_level.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([encoder_out, self.reduce(low_level)], dim=1)
        return self.classifier(self.refine(x))


class DeepLabV3Plus(nn.Module):
    """Backbone -> ASPP (encoder) -> decoder with the backbone's stride-4 features -> logits at
    the input's size. The backbone provides ``forward_with_low_level(x) -> (low_level, out)``."""

    def __init__(self, backbone: nn.Module, aspp: ASPP, decoder: Decoder, output_stride: int):
        super().__init__()
        self.backbone = backbone
        self.aspp = aspp
        self.decoder = decoder
        self.output_stride = output_stride

    def classifier_parameters(self) -> list[nn.Parameter]:
        """The decoder's 1x1 conv to the class logits (see DeepLab.classifier_parameters)."""
        return self.decoder.classifier_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_level, out = self.backbone.forward_with_low_level(x)
        logits = self.decoder(low_level, self.aspp(out))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
