"""The atrous VGG-16 of DeepLab v1/v2, built from torchvision's VGG-16 definition.

What DeepLab changes (v1 Sec. 3.1, the released LargeFOV prototxt): every max-pool gets a 3x3
window with padding 1; pool4 and pool5 get stride 1 instead of 2, and the three conv5 layers
use atrous rate 2 to keep their field of view. The output stride is therefore 8. Layer indices
are torchvision's (`features.N`), so ImageNet VGG-16 weights load unchanged.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from bench.models.layers import scaled

VGG16_CFG = cfgs["D"]  # [64, 64, "M", 128, 128, "M", 256 x3, "M", 512 x3, "M", 512 x3, "M"]
OUTPUT_STRIDE = 8


def atrous_vgg16(width: float = 1.0, batch_norm: bool = False) -> nn.Sequential:
    """VGG-16 conv1_1..pool5 with DeepLab's pooling and conv5 rate 2; out channels = 512 * width.

    ``batch_norm`` uses torchvision's vgg16_bn layout (BN after every conv). The papers fine-tune
    the plain VGG-16 from ImageNet; the tiny scale trains from scratch, where a narrow 13-layer
    plain VGG barely leaves the all-background solution in a few hundred steps, so it uses BN.
    """
    cfg = [v if v == "M" else scaled(v, width) for v in VGG16_CFG]
    features = make_layers(cfg, batch_norm=batch_norm)
    pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
    for n, i in enumerate(pools):
        stride = 2 if n < 3 else 1  # pool4, pool5: stride 1 (v1 Sec. 3.1)
        features[i] = nn.MaxPool2d(kernel_size=3, stride=stride, padding=1)
    conv5 = [layer for layer in features[pools[3] + 1 : pools[4]] if isinstance(layer, nn.Conv2d)]
    for conv in conv5:  # conv5_1..conv5_3 at rate 2 (the "hole" algorithm)
        conv.dilation, conv.padding = (2, 2), (2, 2)
    _init_like_torchvision(features)
    return features


def vgg16_out_channels(width: float) -> int:
    return scaled(512, width)


def vgg16_pool_channels(width: float) -> list[tuple[int, int]]:
    """(channels, stride) of pool1..pool5's outputs: DeepLab's pool4 and pool5 keep stride 8."""
    channels = [v for v, nxt in zip(VGG16_CFG, VGG16_CFG[1:] + ["M"]) if v != "M" and nxt == "M"]
    return [(scaled(c, width), s) for c, s in zip(channels, (2, 4, 8, 8, 8))]


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
