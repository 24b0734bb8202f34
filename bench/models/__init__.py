"""The DeepLab model zoo: plain nn.Modules, no Lightning, W&B or registry imports.

``build_model(version, **knobs)`` is the one entry point; knobs are named after the papers.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bench.models.aspp import ASPP, ASPP_CHANNELS, DeepLabV3Head, conv3x3_bn_relu
from bench.models.config import V1Config, V2Config, V3Config, V3PlusConfig, make_config
from bench.models.deeplab import DeepLab
from bench.models.decoder import DECODER_CHANNELS, Decoder, DeepLabV3Plus
from bench.models.heads import FCBranch, SummedBranches
from bench.models.layers import scaled
from bench.models.resnet import atrous_resnet
from bench.models.vgg import OUTPUT_STRIDE, atrous_vgg16, vgg16_out_channels

__all__ = ["build_model", "make_config", "DeepLab", "DeepLabV3Plus"]

FC_CHANNELS_V2 = 1024  # v2 Sec. 4.1: fc6/fc7 of every ASPP branch have 1024 channels


def build_model(version: str, **knobs: Any) -> nn.Module:
    """Build DeepLab ``version`` ("v1", "v2", "v3", "v3+") with the given knobs; bad knobs raise ValueError."""
    config = make_config(version, knobs)
    if isinstance(config, (V3Config, V3PlusConfig)):
        return _build_v3_family(config)
    if isinstance(config, V1Config):
        return _build_v1(config)
    return _build_v2(config)


def _build_v1(cfg: V1Config) -> DeepLab:
    backbone = atrous_vgg16(cfg.width, cfg.batch_norm)
    head = FCBranch(vgg16_out_channels(cfg.width), cfg.num_classes, kernel_size=cfg.kernel_size,
                    rate=cfg.rate, channels=scaled(cfg.fc_channels, cfg.width), dropout=cfg.dropout)
    return DeepLab(backbone, head, OUTPUT_STRIDE)


def _build_v2(cfg: V2Config) -> DeepLab:
    backbone = atrous_vgg16(cfg.width, cfg.batch_norm)
    branches = [
        FCBranch(vgg16_out_channels(cfg.width), cfg.num_classes, kernel_size=3, rate=rate,
                 channels=scaled(FC_CHANNELS_V2, cfg.width), dropout=cfg.dropout)
        for rate in cfg.rates
    ]
    head = branches[0] if len(branches) == 1 else SummedBranches(branches)
    return DeepLab(backbone, head, OUTPUT_STRIDE)


# --- DeepLab v3 / v3+ -------------------------------------------------------------------------


def _build_v3_family(cfg: V3Config | V3PlusConfig) -> nn.Module:
    """v3: atrous ResNet -> ASPP -> 1x1 logits; v3+: the same encoder and the decoder."""
    v3 = isinstance(cfg, V3Config)
    if cfg.backbone == "xception65":
        # imported here: timm's package import pulls in wandb (timm.utils.summary), which
        # `import bench.models` must not do (DESIGN.md one-way imports)
        from bench.models.xception import AlignedXception65

        backbone = AlignedXception65(width=cfg.width, output_stride=cfg.output_stride, multigrid=cfg.multigrid)
    else:
        backbone = atrous_resnet(cfg.backbone, width=cfg.width, output_stride=cfg.output_stride,
                                 multigrid=cfg.multigrid, cascade_blocks=cfg.cascade_blocks if v3 else 0,
                                 contracted=v3 and cfg.contracted)
    torchvision_head = v3 and cfg.torchvision_head
    separable = not v3 and cfg.separable
    channels = scaled(ASPP_CHANNELS, cfg.width)
    aspp = ASPP(backbone.out_channels, cfg.atrous_rates, channels=channels, image_pooling=cfg.image_pooling,
                separable=separable, dropout=0.5 if torchvision_head else 0.0)
    if v3 or not cfg.decoder:
        refine = conv3x3_bn_relu(channels, channels) if torchvision_head else None
        return DeepLab(backbone, DeepLabV3Head(aspp, cfg.num_classes, refine), cfg.output_stride)
    decoder = Decoder(backbone.low_level_channels, channels, cfg.num_classes,
                      low_level_channels=scaled(cfg.low_level_channels, cfg.width),
                      channels=scaled(DECODER_CHANNELS, cfg.width), separable=separable)
    return DeepLabV3Plus(backbone, aspp, decoder, cfg.output_stride)
