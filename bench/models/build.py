"""build_model: a validated config (bench.models.config) made into one of the DeepLab nn.Modules.

v1: atrous VGG-16 -> FCBranch (or DeepLabV1MSc with its MLPs); v2: VGG-16 -> summed FCBranches,
or atrous ResNet -> AtrousClassifiers (MultiScaleDeepLab with ``msc``); v3: atrous ResNet -> ASPP
-> 1x1 logits; v3+: the v3 encoder and the decoder (DeepLabV3Plus).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bench.models.aspp import ASPP, ASPP_CHANNELS, DeepLabV3Head, conv3x3_bn_relu
from bench.models.config import V1Config, V2Config, V3Config, V3PlusConfig, make_config
from bench.models.deeplab import DeepLab
from bench.models.decoder import DECODER_CHANNELS, Decoder, DeepLabV3Plus
from bench.models.heads import MSC_CHANNELS, AtrousClassifiers, FCBranch, MScBranch, SummedBranches
from bench.models.layers import scaled
from bench.models.multiscale import DeepLabV1MSc, MultiScaleDeepLab
from bench.models.resnet import atrous_resnet
from bench.models.vgg import OUTPUT_STRIDE, atrous_vgg16, vgg16_out_channels, vgg16_pool_channels

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
    if not cfg.msc:
        return DeepLab(backbone, head, OUTPUT_STRIDE)
    # v1 MSc: one MLP per tap (the image, pool1..pool4 at strides 1, 2, 4, 8, 8), each striding
    # to OS 8 in its first conv; fc8 then classifies fc7's channels + 5 x 128 (x width).
    channels = scaled(MSC_CHANNELS, cfg.width)
    taps = [(3, 1)] + vgg16_pool_channels(cfg.width)[:4]
    msc = [MScBranch(c, channels, stride=OUTPUT_STRIDE // stride, dropout=cfg.dropout) for c, stride in taps]
    head.fc8 = FCBranch.classifier(head.fc7.out_channels + len(msc) * channels, cfg.num_classes)
    return DeepLabV1MSc(backbone, head, msc, OUTPUT_STRIDE)


# v2 on ResNet (Sec. 4.1 and the released ResNet-101 prototxt): output stride 8, i.e. block3 at
# rate 2 and block4 at rate 4 with no multigrid; every unit of a dilated block at the block's rate
# (res4a and res5a are dilated like the rest: not "contracted", see bench.models.resnet).
# Our ResNet is torchvision's v1.5 (stride in the 3x3 conv), the Caffe model strides in the first
# 1x1 conv; at OS 8 only block2 strides, so the two differ in block2's first unit alone.
V2_RESNET_OUTPUT_STRIDE = 8


def _build_v2(cfg: V2Config) -> DeepLab:
    model = MultiScaleDeepLab if cfg.msc else DeepLab
    if cfg.backbone.startswith("resnet"):
        backbone = atrous_resnet(cfg.backbone, width=cfg.width, output_stride=V2_RESNET_OUTPUT_STRIDE,
                                 multigrid=(1, 1, 1))
        head = AtrousClassifiers(backbone.out_channels, cfg.num_classes, cfg.rates)
        return model(backbone, head, V2_RESNET_OUTPUT_STRIDE)
    backbone = atrous_vgg16(cfg.width, cfg.batch_norm)
    branches = [
        FCBranch(vgg16_out_channels(cfg.width), cfg.num_classes, kernel_size=3, rate=rate,
                 channels=scaled(FC_CHANNELS_V2, cfg.width), dropout=cfg.dropout)
        for rate in cfg.rates
    ]
    head = branches[0] if len(branches) == 1 else SummedBranches(branches)
    return model(backbone, head, OUTPUT_STRIDE)


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
