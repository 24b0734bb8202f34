"""The aligned Xception-65 of DeepLab v3+ (Sec. 3.2, Fig. 4), built on timm's XceptionAligned.

timm's ``xception65`` is the TF-compatible aligned Xception of v3+ (max-pools replaced by strided
separable convs, BN and ReLU after every depthwise and pointwise conv, BN eps 1e-3); it supports
``output_stride`` 8/16/32. Its stem is fixed at 32/64 channels, so for ``width`` we build
XceptionAligned from the xception65 block list with every channel count scaled and rebuild the
stem the same way; at width 1 the module names and shapes are timm's, so its weights load.

Dilated blocks: each Xception block strides in its last separable conv; when the output stride is
reached, timm runs that block at the previous rate and the blocks after it at twice the rate, as
the TF code does, so there is no "contracted" choice to make here. Multigrid, as in the TF code,
multiplies the rates of the three separable convs of exit-flow block2 (the last block).
Low-level features (v3+ decoder): the entry-flow block2 tap at stride 4 (input of its strided
separable conv, 256 channels at width 1), timm's feature index 1.
"""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import ConvNormAct
from timm.models.xception_aligned import XceptionAligned
from torch import nn

from bench.models.layers import scaled

STEM_CHANNELS = (32, 64)
# timm's xception65 block list (entry flow, 16 middle-flow blocks, exit flow), channels at width 1.
XCEPTION65_BLOCKS = (
    [dict(in_chs=64, out_chs=128, stride=2), dict(in_chs=128, out_chs=256, stride=2),
     dict(in_chs=256, out_chs=728, stride=2)]
    + [dict(in_chs=728, out_chs=728, stride=1)] * 16
    + [dict(in_chs=728, out_chs=(728, 1024, 1024), stride=2),
       dict(in_chs=1024, out_chs=(1536, 1536, 2048), stride=1, no_skip=True, start_with_relu=False)]
)
LOW_LEVEL_FEATURE = 1  # timm feature index of the stride-4 tap
TF_BATCH_NORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.1)  # timm's xception65 (TF-compatible)


def _scale_block(block: dict, width: float) -> dict:
    out = block["out_chs"]
    out = tuple(scaled(c, width) for c in out) if isinstance(out, tuple) else scaled(out, width)
    return {**block, "in_chs": scaled(block["in_chs"], width), "out_chs": out}


class AlignedXception65(XceptionAligned):
    """Xception-65 features: ``forward(x)`` -> last block (``out_channels``, stride ``output_stride``);
    ``forward_with_low_level(x)`` -> (stride-4 features, last block)."""

    def __init__(self, *, width: float = 1.0, output_stride: int = 16, multigrid: tuple[int, int, int] = (1, 1, 1)):
        blocks = [_scale_block(b, width) for b in XCEPTION65_BLOCKS]  # fresh dicts: timm edits them
        super().__init__(block_cfg=blocks, num_classes=0, output_stride=output_stride, norm_layer=TF_BATCH_NORM)
        c1, c2 = (scaled(c, width) for c in STEM_CHANNELS)
        self.stem = nn.Sequential(
            ConvNormAct(3, c1, kernel_size=3, stride=2, norm_layer=TF_BATCH_NORM, act_layer=nn.ReLU),
            ConvNormAct(c1, c2, kernel_size=3, stride=1, norm_layer=TF_BATCH_NORM, act_layer=nn.ReLU),
        )
        exit_block2 = self.blocks[-1]
        for unit_rate, name in zip(multigrid, ("conv1", "conv2", "conv3")):
            sep = exit_block2.stack.get_submodule(name)
            rate = sep.conv_dw.dilation[0] * unit_rate
            sep.dilation, sep.conv_dw.dilation, sep.conv_dw.padding = rate, (rate, rate), (rate, rate)
        self.output_stride = output_stride
        self.out_channels = self.num_features
        self.low_level_channels = self.feature_info[LOW_LEVEL_FEATURE]["num_chs"]

    def forward_with_low_level(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, (low_level,) = self.forward_intermediates(x, indices=[LOW_LEVEL_FEATURE])
        return low_level, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)
