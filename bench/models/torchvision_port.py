"""Load torchvision's ``deeplabv3_resnet101`` weights into our v3 ResNet-101.

torchvision's DeepLabV3 differs from the paper in three ways, each a knob of our v3 so the port is
exact: it runs at output stride 8 (ASPP rates (12, 24, 36), our (6, 12, 18) doubled), its
DeepLabHead adds dropout 0.5 after the ASPP projection and a 3x3 conv 256 + BN + ReLU before the
logits (``torchvision_head=True``), and its dilated stages start with a unit at the previous rate
(``contracted=True``, see bench.models.resnet). The backbone keeps torchvision's names; only the
head's keys are renamed (torchvision's auxiliary FCN head, if present, has no counterpart here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import nn

from bench.models.aspp import ASPP, DeepLabV3Head
from bench.models.resnet import AtrousResNet

# build_model("v3", **TORCHVISION_DEEPLABV3_KNOBS) has torchvision's deeplabv3_resnet101 layout.
TORCHVISION_DEEPLABV3_KNOBS = dict(backbone="resnet101", output_stride=8, multigrid=(1, 1, 1),
                                   aspp_rates=(6, 12, 18), image_pooling=True, contracted=True,
                                   torchvision_head=True)

# torchvision key prefix -> ours (classifier = DeepLabHead(ASPP, conv3x3, BN, ReLU, conv1x1)).
_HEAD_KEYS = [
    (r"^classifier\.0\.convs\.([0-3])\.", r"head.aspp.branches.\1."),  # 1x1 and the three rates
    (r"^classifier\.0\.convs\.4\.1\.", "head.aspp.image_pooling.conv."),
    (r"^classifier\.0\.convs\.4\.2\.", "head.aspp.image_pooling.bn."),
    (r"^classifier\.0\.project\.", "head.aspp.project."),
    (r"^classifier\.([12])\.", lambda m: f"head.refine.{int(m.group(1)) - 1}."),
    (r"^classifier\.4\.", "head.classifier."),
]


def torchvision_key(key: str) -> str | None:
    """Our parameter name for a torchvision deeplabv3 key (None for the auxiliary classifier)."""
    if key.startswith("aux_classifier."):
        return None
    if key.startswith("backbone."):
        return key
    for pattern, replacement in _HEAD_KEYS:
        new, n = re.subn(pattern, replacement, key)
        if n:
            return new
    raise KeyError(f"unexpected torchvision deeplabv3 key {key!r}")


def load_torchvision_deeplabv3(model: nn.Module, state_dict: Mapping[str, torch.Tensor] | str | os.PathLike) -> nn.Module:
    """Load torchvision deeplabv3_resnet101's ``state_dict`` (a mapping or a path to a saved one)
    into ``model`` = build_model("v3", **TORCHVISION_DEEPLABV3_KNOBS, num_classes=...). Strict:
    any missing or unexpected key raises. Returns ``model``."""
    if not isinstance(state_dict, Mapping):
        state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
    _check_layout(model)
    ours = {}
    for key, value in state_dict.items():
        new = torchvision_key(key)
        if new is not None:
            ours[new] = value
    model.load_state_dict(ours, strict=True)
    return model


def _check_layout(model: nn.Module) -> None:
    knobs = ", ".join(f"{k}={v!r}" for k, v in TORCHVISION_DEEPLABV3_KNOBS.items())
    backbone, head = getattr(model, "backbone", None), getattr(model, "head", None)
    ok = (isinstance(backbone, AtrousResNet) and isinstance(head, DeepLabV3Head)
          and isinstance(head.aspp, ASPP) and head.aspp.image_pooling is not None and head.refine is not None
          and model.output_stride == 8 and head.aspp.rates == (12, 24, 36)
          and backbone.layer3[0].conv2.dilation == (1, 1) and backbone.layer4[0].conv2.dilation == (2, 2))
    if not ok:
        raise ValueError(f"torchvision's deeplabv3_resnet101 loads into build_model('v3', {knobs}) only")
