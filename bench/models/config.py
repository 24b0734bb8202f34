"""Per-version model configurations: the papers' knobs, their defaults and their valid values.

Each config is a frozen dataclass named with the papers' words; ``__post_init__`` rejects bad
values with a ValueError that names the valid ones (the CLI shows it as a one-line error).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# v2 Sec. 3.1 / Table 3: the ASPP rates of the VGG-16 heads; LargeFOV is a single branch.
V2_HEADS: dict[str, tuple[int, ...]] = {
    "largefov": (12,),
    "aspp-s": (2, 4, 8, 12),
    "aspp-l": (6, 12, 18, 24),
}
# v2 Sec. 4: VGG-16, and ResNet-101 (Table 4); ResNet-50 is the same builder, a smaller network.
V2_BACKBONES = ("vgg16", "resnet50", "resnet101")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_width(width: Any) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 4:
        raise ValueError(f"width must be a number in (0, 4], got {width!r}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def _check_choice(name: str, value: Any, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"{name} {value!r} is not valid; valid: {', '.join(map(str, valid))}")


@dataclass(frozen=True)
class V1Config:
    """DeepLab v1 (ICLR'15): atrous VGG-16 and one fc6-fc7-fc8 classifier.

    Defaults are DeepLab-LargeFOV (v1 Table 2: 3x3 fc6, rate 12, 1024 channels).
    ``msc`` adds v1's multi-scale features (Sec. 4.3 "Multi-scale prediction", the DeepLab-MSc
    rows of Table 1): the input and pool1..pool4 each feed a two-layer MLP (3x3 conv 128, 1x1
    conv 128), whose 5 x 128 = 640 channels are concatenated to fc7's before fc8.
    """

    backbone: str = "vgg16"
    kernel_size: int = 3
    rate: int = 12
    fc_channels: int = 1024
    num_classes: int = 21
    width: float = 1.0
    batch_norm: bool = False  # BN after every VGG conv (torchvision's vgg16_bn); tiny scale only
    dropout: float = 0.5      # after fc6 and fc7 (and in the MSc MLPs), as in the papers' prototxts
    msc: bool = False         # v1's multi-scale features (not v2's multi-scale inputs)

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, ("vgg16",))
        for name in ("kernel_size", "rate", "fc_channels", "num_classes"):
            _check_positive_int(name, getattr(self, name))
        _check_width(self.width)
        _check_bool("batch_norm", self.batch_norm)
        _check_probability("dropout", self.dropout)
        _check_bool("msc", self.msc)


@dataclass(frozen=True)
class V2Config:
    """DeepLab v2 (TPAMI'17): LargeFOV or ASPP-S / ASPP-L (v2 Table 3) on VGG-16 or ResNet.

    VGG-16: every branch is fc6 (3x3, its rate, 1024 channels) -> fc7 (1024) -> fc8; logits are
    summed. ResNet-50/101 (v2 Sec. 4.1, Table 4; the released ResNet-101 prototxt): output stride
    8, and every branch is one 3x3 atrous conv straight to the classes (fc1_voc12_c0..c3), summed.
    ``batch_norm`` and ``dropout`` concern the VGG network only and are ignored on ResNet (it has
    BN throughout and its heads no dropout), so the tiny scale's VGG knobs do no harm there.
    ``msc`` is v2's multi-scale inputs (Sec. 4.1 "MSC"): scales 1, 0.75, 0.5 through shared
    weights, fused by max; see bench.models.multiscale.MultiScaleDeepLab for what it returns.
    """

    backbone: str = "vgg16"
    head: str = "aspp-l"
    num_classes: int = 21
    width: float = 1.0
    batch_norm: bool = False  # BN after every VGG conv (torchvision's vgg16_bn); tiny scale only
    dropout: float = 0.5      # after fc6 and fc7, as in the papers' prototxts
    msc: bool = False         # v2's multi-scale inputs (not v1's multi-scale features)

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, V2_BACKBONES)
        _check_choice("head", self.head, tuple(V2_HEADS))
        _check_positive_int("num_classes", self.num_classes)
        _check_width(self.width)
        _check_bool("batch_norm", self.batch_norm)
        _check_probability("dropout", self.dropout)
        _check_bool("msc", self.msc)

    @property
    def rates(self) -> tuple[int, ...]:
        return V2_HEADS[self.head]


# --- DeepLab v3 / v3+ -----------------------------------------------------------------------
OUTPUT_STRIDES = (8, 16, 32)
RESNETS = ("resnet50", "resnet101")
MAX_CASCADE_BLOCKS = 3  # v3 Sec. 3.2 / Table 2: block5..block7 are copies of block4


def _check_int_tuple(name: str, value: Any, length: int | None, example: str) -> tuple[int, ...]:
    """``value`` as a tuple of positive ints (lists from JSON/CLI are accepted), else ValueError."""
    ok = isinstance(value, (tuple, list)) and len(value) >= 1 and (length is None or len(value) == length)
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not ok:
        count = "three" if length == 3 else "one or more"
        raise ValueError(f"{name} must be {count} positive integers (rates >= 1), e.g. {example}; got {value!r}")
    return tuple(value)


def _scale_rates_to_output_stride(rates: tuple[int, ...], output_stride: int) -> tuple[int, ...]:
    """ASPP rates are given at output stride 16 (v3 Sec. 3.3: (6, 12, 18)); at OS 8 they double
    (v3: "the rates are doubled when output_stride = 8"); at OS 32 we halve them, (3, 6, 9) -- the
    paper gives no OS-32 rates, halving keeps the same field of view in pixels. Odd rates at OS 32
    round down, never below 1."""
    return tuple(max(1, r * 16 // output_stride) for r in rates)


@dataclass(frozen=True)
class V3Config:
    """DeepLab v3 (arXiv'17): atrous ResNet, multigrid block4, ASPP with image pooling.

    Defaults are the v3 Table 5 best model (ResNet-101, OS 16, multigrid (1, 2, 4), ASPP (6, 12, 18)
    + image pooling). ``cascade_blocks`` appends copies of block4 (block5..7, v3 Sec. 3.2) after
    block4 and keeps the ASPP head after them (the paper's "going deeper" table has no ASPP).
    ``contracted`` gives the first unit of every dilated stage the previous stage's rate, as
    torchvision does; ``torchvision_head`` adds torchvision's dropout 0.5 and extra 3x3 conv. Both
    exist to load torchvision's deeplabv3_resnet101 exactly (bench.models.torchvision_port).
    """

    backbone: str = "resnet101"
    output_stride: int = 16
    multigrid: tuple[int, ...] = (1, 2, 4)
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    image_pooling: bool = True
    cascade_blocks: int = 0
    contracted: bool = False
    torchvision_head: bool = False
    num_classes: int = 21
    width: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, RESNETS)
        _check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        object.__setattr__(self, "multigrid", _check_int_tuple("multigrid", self.multigrid, 3, "(1, 2, 4)"))
        object.__setattr__(self, "aspp_rates", _check_int_tuple("aspp_rates", self.aspp_rates, None, "(6, 12, 18)"))
        for name in ("image_pooling", "contracted", "torchvision_head"):
            _check_choice(name, getattr(self, name), (True, False))
        _check_choice("cascade_blocks", self.cascade_blocks, tuple(range(MAX_CASCADE_BLOCKS + 1)))
        _check_positive_int("num_classes", self.num_classes)
        _check_width(self.width)

    @property
    def atrous_rates(self) -> tuple[int, ...]:
        """The ASPP rates at this output stride."""
        return _scale_rates_to_output_stride(self.aspp_rates, self.output_stride)


# v3+ Sec. 4.1/4.3: ResNet-101 keeps v3's multigrid (1, 2, 4) and plain convs; Xception-65 uses
# unit rates (1, 1, 1) (the released TF models) and depthwise-separable ASPP and decoder convs.
V3PLUS_BACKBONE_DEFAULTS = {
    "resnet50": dict(multigrid=(1, 2, 4), separable=False),
    "resnet101": dict(multigrid=(1, 2, 4), separable=False),
    "xception65": dict(multigrid=(1, 1, 1), separable=True),
}


@dataclass(frozen=True)
class V3PlusConfig:
    """DeepLab v3+ (ECCV'18): the v3 encoder plus a decoder on stride-4 low-level features.

    ``multigrid`` and ``separable`` default to None, resolved to the paper's choice for the
    backbone (see V3PLUS_BACKBONE_DEFAULTS). ``decoder=False`` is v3 on that backbone.
    ``low_level_channels`` is the 1x1 reduction of the low-level features (v3+ Table 1: 48).
    """

    backbone: str = "resnet101"
    output_stride: int = 16
    multigrid: tuple[int, ...] | None = None
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    image_pooling: bool = True
    decoder: bool = True
    separable: bool | None = None
    low_level_channels: int = 48
    num_classes: int = 21
    width: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("backbone", self.backbone, tuple(V3PLUS_BACKBONE_DEFAULTS))
        _check_choice("output_stride", self.output_stride, OUTPUT_STRIDES)
        defaults = V3PLUS_BACKBONE_DEFAULTS[self.backbone]
        multigrid = defaults["multigrid"] if self.multigrid is None else self.multigrid
        object.__setattr__(self, "multigrid", _check_int_tuple("multigrid", multigrid, 3, "(1, 2, 4)"))
        if self.separable is None:
            object.__setattr__(self, "separable", defaults["separable"])
        object.__setattr__(self, "aspp_rates", _check_int_tuple("aspp_rates", self.aspp_rates, None, "(6, 12, 18)"))
        for name in ("image_pooling", "decoder", "separable"):
            _check_choice(name, getattr(self, name), (True, False))
        for name in ("low_level_channels", "num_classes"):
            _check_positive_int(name, getattr(self, name))
        _check_width(self.width)

    @property
    def atrous_rates(self) -> tuple[int, ...]:
        """The ASPP rates at this output stride."""
        return _scale_rates_to_output_stride(self.aspp_rates, self.output_stride)


CONFIGS = {"v1": V1Config, "v2": V2Config, "v3": V3Config, "v3+": V3PlusConfig}


def make_config(version: str, knobs: dict[str, Any]):
    """The validated config for ``version``; unknown versions or knobs raise ValueError."""
    if version not in CONFIGS:
        raise ValueError(f"version {version!r} is not available; valid: {', '.join(CONFIGS)}")
    cls = CONFIGS[version]
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(knobs) - set(valid))
    if unknown:
        raise ValueError(f"knob {unknown[0]!r} is not valid for {version}; valid: {', '.join(valid)}")
    return cls(**knobs)
