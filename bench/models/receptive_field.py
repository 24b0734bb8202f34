"""The receptive field of DeepLab v1/v2's fc6 output, in input pixels (v1 Table 2's "RF size").

Two conventions, both computed from the built layers (so they follow every knob):

``convention="paper"`` reproduces v1 Table 2 (224 for 7x7 rate 4, 128 for 4x4 rate 4, 224 for
4x4 rate 8, 224 for 3x3 rate 12):

    RF = output_stride * rate * (kernel_size - 1) + 32

i.e. the span of fc6's taps in input pixels (taps ``rate`` feature pixels apart, 8 input pixels
each) plus one 32-pixel cell. It is VGG's own nominal convention carried over: in ImageNet VGG-16,
pool5 has stride 32 and fc6's 7 x 7 taps cover 7 x 32 = 224 pixels, the network's input size;
DeepLab's pool4/pool5 keep stride 8, so fc6 at rate 4 samples exactly the original VGG's grid and
the paper keeps calling that 224 (and 4 x 32 = 128 for the 4x4 kernel). Rates 8 and 12 with 4x4
and 3x3 kernels span the same 24 feature pixels, hence 224 again. It is a nominal size, not the
true field of view: it ignores what conv1..conv5 add around each tap.

``convention="theoretical"`` is the true theoretical receptive field of one fc6 output (the
usual recursion RF += (dilation * (k - 1)) * jump, jump *= stride over every conv and pool, along
the longest path). For DeepLab's VGG (3x3 pools with padding 1, conv5 at rate 2) pool5's field is
227 pixels, so the four v1 rows are 419, 323, 419, 419. The v1 paper quotes 404 for the ImageNet
VGG-16 applied convolutionally (2x2 pools); the same recursion gives 404 there.

For ASPP (v2) the value is the maximum over the branches; for v2's multi-scale inputs it is the
value at scale 1 (at scale s it is RF / s pixels of the original image). The paper convention is
defined for VGG-16 only (the table it reproduces is VGG's); the theoretical one for VGG-16 and
the v2 ResNets. v3/v3+ have no fc6 and raise ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict

import torch
from torch import nn

from bench.models.build import build_model
from bench.models.config import V1Config, V2Config
from bench.models.heads import AtrousClassifiers, FCBranch, SummedBranches
from bench.models.resnet import AtrousResNet

CONVENTIONS = ("paper", "theoretical")
VGG16_POOL5_STRIDE = 32  # ImageNet VGG-16: fc6's 7x7 taps are 32 px apart and "see" 7 x 32 = 224


def receptive_field(model_or_config, *, convention: str = "paper") -> int:
    """Receptive field of the fc6 output (max over ASPP branches) in input pixels.

    ``model_or_config``: a v1/v2 model from build_model, or its V1Config / V2Config (built on the
    meta device, which costs no memory). ``convention``: "paper" (v1 Table 2) or "theoretical".
    Raises ValueError for other models and for the paper convention on a ResNet.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r} is not valid; valid: {', '.join(CONVENTIONS)}")
    model = _as_model(model_or_config)
    fc6 = _fc6_convs(model)
    backbone = model.backbone
    if convention == "paper":
        if not isinstance(backbone, nn.Sequential):
            raise ValueError("the paper's receptive-field convention (v1 Table 2) is defined for VGG-16 "
                             "only; use convention='theoretical'")
        return max(model.output_stride * conv.dilation[0] * (conv.kernel_size[0] - 1) + VGG16_POOL5_STRIDE
                   for conv in fc6)
    field, jump = _walk(_backbone_layers(backbone))
    return max(_walk([conv], field, jump)[0] for conv in fc6)


def tap_coverage(model_or_config, image_size: int) -> list[tuple[int, int, float]]:
    """Per fc6 branch (ASPP: one per rate), (kernel, rate, coverage): the fraction of its k x k
    taps that fall inside the feature map rather than in its zero padding, averaged over the map's
    positions, for a square ``image_size`` input. For an odd kernel, a rate at least the map's side
    leaves the centre tap alone (1/9 for a 3x3): the branch is then a 1x1 conv, whatever rate it is
    named for. v3 Sec. 3.3 (Fig. 4) makes this point for a 65x65 map; the tiny scale's 128 px
    images give VGG a 16x16 one (issue 17)."""
    model = _as_model(model_or_config)
    side = math.ceil(image_size / model.output_stride)  # every stride-2 layer rounds up ('same' padding)

    def along_one_axis(conv: nn.Conv2d) -> float:
        kernel, rate, pad = _pair(conv.kernel_size), _pair(conv.dilation), _pair(conv.padding)
        inside = sum(0 <= x - pad + j * rate < side for x in range(side) for j in range(kernel))
        return inside / (kernel * side)

    return [(_pair(conv.kernel_size), _pair(conv.dilation), along_one_axis(conv) ** 2) for conv in _fc6_convs(model)]


def _as_model(model_or_config) -> nn.Module:
    if isinstance(model_or_config, (V1Config, V2Config)):
        version = "v1" if isinstance(model_or_config, V1Config) else "v2"
        with torch.device("meta"):
            return build_model(version, **asdict(model_or_config))
    if isinstance(model_or_config, nn.Module):
        return model_or_config
    raise ValueError(f"receptive_field needs a v1/v2 model or V1Config/V2Config, got {type(model_or_config).__name__}")


def _fc6_convs(model: nn.Module) -> list[nn.Conv2d]:
    """The first conv of every head branch: fc6 on VGG, the atrous classifier on ResNet."""
    head = getattr(model, "head", None)
    if isinstance(head, FCBranch):
        return [head.fc6]
    if isinstance(head, SummedBranches):
        return [branch.fc6 for branch in head.branches]
    if isinstance(head, AtrousClassifiers):
        return list(head.fc8)
    raise ValueError("receptive_field is defined for DeepLab v1/v2 (an fc6 or atrous-classifier head), "
                     f"not for {type(model).__name__} with head {type(head).__name__}")


def _backbone_layers(backbone: nn.Module) -> list[nn.Module]:
    """The convs and pools along the longest path, input to output."""
    if isinstance(backbone, nn.Sequential):  # atrous VGG-16
        return [m for m in backbone if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    if isinstance(backbone, AtrousResNet):  # the residual branch: conv1 1x1, conv2 3x3, conv3 1x1
        layers = [backbone.conv1, backbone.maxpool]
        for name in backbone.stage_names:
            for unit in getattr(backbone, name):
                layers += [unit.conv1, unit.conv2, unit.conv3]
        return layers
    raise ValueError(f"receptive_field knows VGG-16 and ResNet backbones, not {type(backbone).__name__}")


def _pair(value) -> int:
    return value[0] if isinstance(value, tuple) else value


def _walk(layers: Iterable[nn.Module], field: int = 1, jump: int = 1) -> tuple[int, int]:
    for layer in layers:
        kernel, stride, dilation = (_pair(layer.kernel_size), _pair(layer.stride), _pair(layer.dilation))
        field += dilation * (kernel - 1) * jump
        jump *= stride
    return field, jump
