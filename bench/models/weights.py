"""ImageNet backbone weights from a state dict into our DeepLabs (the papers fine-tune from them).

``load_backbone_weights(model, path_or_state_dict)`` copies a state dict into ``model.backbone``:

- VGG-16 (v1/v2): torchvision's ``vgg16`` (or ``vgg16_bn`` for ``batch_norm=True``) keys
  ``features.N.*`` go to ``backbone.N.*`` unchanged. fc6 and fc7 of every head branch are
  initialised from ImageNet's fully connected layers by decimation, as v1 does (Sec. 3.2: the
  7x7 fc6 "spatially subsampled (by simple decimation)" to 4x4 or 3x3; Sec. 5 / Table 2: LargeFOV
  keeps 1024 of the 4096 channels): fc6 ``classifier.0`` (4096 x 512*7*7) is viewed as
  4096 x 512 x 7 x 7, its 7 x 7 taps decimated to k x k (rows/columns round(linspace(0, 6, k)):
  0,2,4,6 for 4x4, 0,3,6 for 3x3, the centre for 1x1) and its outputs to ``fc_channels`` by taking
  every (4096 / fc_channels)-th; fc7 ``classifier.3`` (4096 x 4096) keeps every such row and
  column. The paper does not say which 1024 channels; every 4th is our choice. ImageNet's
  classifier ``classifier.6`` is not used: fc8 is new.
- ResNet-50/101 (v2 ResNet, v3, v3+): torchvision's ``conv1/bn1/layer1..4.*`` unchanged; ``fc.*``
  is not used. Cascaded blocks layer5..7 (v3) have no ImageNet counterpart and stay as built.
- Xception-65 (v3+): timm's ``xception65`` keys unchanged; its classifier ``head.fc.*`` is not used.

Input normalisation (``input_norm=(mean, std)``, the file's): our data pipeline normalises every
input with ImageNet's mean/std, ``x = (p - m_c) / s_c`` (bench.data.transforms), which torchvision's
VGG-16 and ResNet weights expect; timm's ``xception65.tf_in1k`` (TF DeepLab's ImageNet checkpoint)
expects ``x_file = (p - mean_c) / std_c`` with mean = std = 0.5. With ``input_norm`` given, the stem
is adapted so that it sees our ``x`` as the file's network saw ``x_file = a_c * x + b_c``
(``a_c = s_c / std_c``, ``b_c = (m_c - mean_c) / std_c``): the first conv's weight W is scaled by
``a_c`` per input channel, and the constant ``o = sum_{c,kh,kw} W[o, c, kh, kw] * b_c`` it then
misses per output channel is added to its bias (VGG) or subtracted from the running mean of the BN
right after it (ResNet ``bn1``, Xception ``stem.0.bn``; in training BN removes a constant anyway).
Exact away from the zero-padded border, where our padding (x = 0) is the file's x_file = b, not 0.
The report's ``adapted`` names the two tensors. Which files need it is bench.trunks' to say.

Strict on the backbone: every backbone tensor with an ImageNet counterpart must be in the file
with the right shape, and every backbone-looking key of the file must fit; otherwise ValueError
naming the keys. The file's width must be the model's: ImageNet files are width 1, the tiny
scale's shipped trunks (``bench pretrain``, torchvision's / timm's layout at width 0.125) are
width 1/8; fc6 / fc7 then have 4096 / 8 = 512 channels, decimated the same way. The head
stays as built. Returns a ``LoadedWeights`` report (loaded, missing, unused keys).

A path is read with ``torch.load(weights_only=True)``; a checkpoint wrapping the state dict
under "state_dict" or "model", and DDP's "module." prefix, are unwrapped. This module reads no
network and no cache: which file a run starts from, and fetching it through torchvision's and
timm's caches, is bench.trunks (torchvision's ``VGG16_Weights.IMAGENET1K_V1`` etc., timm's
``xception65.tf_in1k``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from bench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from bench.models.heads import FCBranch, SummedBranches
from bench.models.resnet import AtrousResNet

IMAGENET_FC_CHANNELS = 4096  # VGG-16 fc6 / fc7
IMAGENET_FC6_KERNEL = 7      # VGG-16 fc6 sees pool5's 7 x 7 x 512 map
VGG_FC6, VGG_FC7 = "classifier.0", "classifier.3"
# the ImageNet classifiers: never loaded, not an error to find in the file
UNUSED_PREFIXES = {"vgg16": ("classifier.6.",), "resnet": ("fc.",), "xception65": ("head.fc.",)}
FIRST_CONV_CHANNELS = {"vgg16": 64, "resnet": 64, "xception65": 32}  # the width-1 stem
# the first conv's weight (our backbone keys), and what absorbs the constant an input
# renormalisation adds to its output: its bias, or the running mean of the BN right after it
STEM = {"vgg16": ("0.weight", "0.bias"), "resnet": ("conv1.weight", "bn1.running_mean"),
        "xception65": ("stem.0.conv.weight", "stem.0.bn.running_mean")}
OUR_INPUT_NORM = (IMAGENET_MEAN, IMAGENET_STD)  # what the data pipeline feeds every network


@dataclass
class LoadedWeights:
    """What ``load_backbone_weights`` did: our keys it set, our keys left as built, file keys unused."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # loaded, then changed for our input normalisation

    def __str__(self) -> str:
        adapted = f"; stem adapted to ImageNet-normalised inputs: {_short(self.adapted)}" if self.adapted else ""
        return (f"loaded {len(self.loaded)} tensors; left as built: {_short(self.missing)}; "
                f"unused from the file: {_short(self.unused)}{adapted}")


def load_backbone_weights(model: nn.Module, path: str | os.PathLike | Mapping[str, torch.Tensor],
                          input_norm: tuple[Sequence[float], Sequence[float]] | None = None) -> LoadedWeights:
    """Load ImageNet weights (a torchvision VGG-16/ResNet or timm Xception-65 state dict, or a path
    to one saved with torch.save) into ``model.backbone`` (and v1/v2's fc6/fc7). ``input_norm``: the
    (mean, std) per RGB channel the file's network was fed, where it is not ours (ImageNet's): the
    stem is adapted to our inputs. See the module doc."""
    state = _read_state_dict(path)
    backbone = getattr(model, "backbone", None)
    family = _family(backbone)
    _check_width(backbone, family, state, _name(path))
    fc = {}
    if family == "vgg16":
        fc = {k: state.pop(k) for k in [f"{VGG_FC6}.weight", f"{VGG_FC6}.bias", f"{VGG_FC7}.weight", f"{VGG_FC7}.bias"]
              if k in state}
    unused_prefixes = UNUSED_PREFIXES[family]
    unused = _sorted(k for k in state if k.startswith(unused_prefixes))
    # our backbone key -> the file's key (VGG: torchvision's ``features.N`` is our ``backbone.N``)
    file_key = {_backbone_key(k, family): k for k in state if not k.startswith(unused_prefixes)}

    ours = backbone.state_dict()
    imagenet_keys = {k for k in ours if not _is_cascaded(k, family)}
    missing = _sorted(_file_key(k, family) for k in imagenet_keys - set(file_key))
    unexpected = _sorted(file_key[k] for k in set(file_key) - set(ours))
    if missing or unexpected:
        raise ValueError(f"{_name(path)} does not fit the {family} backbone: missing {_short(missing)}; "
                         f"unexpected {_short(unexpected)}{_hint(family, missing, unexpected)}")
    source = {k: state[f] for k, f in file_key.items()}
    wrong = [f"{file_key[k]} {tuple(source[k].shape)} vs ours {tuple(ours[k].shape)}"
             for k in _sorted(source) if source[k].shape != ours[k].shape]
    if wrong:
        raise ValueError(f"{_name(path)}: shapes differ from the {family} backbone: {_short(wrong)}")
    head_init = _decimated_fc(model, fc, _name(path)) if family == "vgg16" else {}  # checked before any copy
    adapted = []
    if input_norm is not None:
        conv, after = STEM[family]
        source[conv], source[after] = adapt_stem(source[conv], source[after], input_norm,
                                                 running_mean=after.endswith("running_mean"))
        adapted = [f"backbone.{conv}", f"backbone.{after}"]

    backbone.load_state_dict(source, strict=False)
    with torch.no_grad():
        for tensor, value in head_init.values():
            tensor.copy_(value)
    loaded = [f"backbone.{k}" for k in _sorted(source)] + list(head_init)
    done = set(loaded)
    return LoadedWeights(loaded=loaded, missing=[k for k in model.state_dict() if k not in done], unused=unused,
                         adapted=adapted)


# --- the stem, for inputs normalised our way -------------------------------------------------

def adapt_stem(weight: torch.Tensor, after: torch.Tensor, input_norm: tuple[Sequence[float], Sequence[float]],
               running_mean: bool, ours: tuple[Sequence[float], Sequence[float]] = OUR_INPUT_NORM,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first conv's ``weight`` and ``after`` (its bias, or with ``running_mean`` the following
    BN's running mean) for inputs normalised with ``ours`` instead of ``input_norm``: new tensors,
    computed in float64 (see the module doc)."""
    mean, std, our_mean, our_std = (torch.tensor(v, dtype=torch.float64) for v in (*input_norm, *ours))
    if not mean.shape == std.shape == (weight.shape[1],) or not bool((std > 0).all()):
        raise ValueError(f"input_norm {input_norm}: needs {weight.shape[1]} means and as many positive stds")
    scale = (our_std / std).view(1, -1, 1, 1)               # a_c: x_file = a_c * x + b_c
    shift = ((our_mean - mean) / std).view(1, -1, 1, 1)     # b_c
    constant = (weight.double() * shift).sum(dim=(1, 2, 3))  # o, per output channel
    adapted = after.double() - constant if running_mean else after.double() + constant
    return (weight.double() * scale).to(weight.dtype), adapted.to(after.dtype)


# --- VGG fc6 / fc7 by decimation (v1 Sec. 3.2) -----------------------------------------------

def decimate_fc6(weight: torch.Tensor, bias: torch.Tensor, kernel_size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet fc6 (4096 x 25088; a width-w file: 4096w x 512w*49) -> a ``channels`` x 512 x k x k
    conv by decimation."""
    step = _channel_step(channels, weight.shape[0])
    taps = _kernel_taps(kernel_size)
    weight = weight.reshape(weight.shape[0], -1, IMAGENET_FC6_KERNEL, IMAGENET_FC6_KERNEL)
    return weight[::step][:, :, taps][:, :, :, taps].contiguous(), bias[::step].contiguous()


def decimate_fc7(weight: torch.Tensor, bias: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet fc7 (4096 x 4096) -> a ``channels`` x ``channels`` x 1 x 1 conv by decimation."""
    step = _channel_step(channels, weight.shape[0])
    return weight[::step, ::step].reshape(channels, channels, 1, 1).contiguous(), bias[::step].contiguous()


def _kernel_taps(kernel_size: int) -> list[int]:
    if not 1 <= kernel_size <= IMAGENET_FC6_KERNEL:
        raise ValueError(f"fc6 kernel_size {kernel_size} cannot be decimated from ImageNet's 7x7 fc6; "
                         "valid: 1..7")
    if kernel_size == 1:
        return [IMAGENET_FC6_KERNEL // 2]
    return torch.linspace(0, IMAGENET_FC6_KERNEL - 1, kernel_size).round().long().tolist()


def _channel_step(channels: int, file_channels: int = IMAGENET_FC_CHANNELS) -> int:
    if channels > file_channels or file_channels % channels:
        raise ValueError(f"fc_channels {channels} cannot be decimated from the file's {file_channels} fc6/fc7 "
                         f"channels; valid: a divisor of {file_channels} ({file_channels}, {file_channels // 2}, "
                         f"{file_channels // 4}, ...)")
    return file_channels // channels


def _decimated_fc(model: nn.Module, fc: dict[str, torch.Tensor], name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{our key: (our tensor, its decimated ImageNet value)} for fc6/fc7 of every head branch."""
    head = getattr(model, "head", None)
    branches = [head] if isinstance(head, FCBranch) else list(head.branches) if isinstance(head, SummedBranches) else []
    if not branches:
        return {}
    needed = [f"{VGG_FC6}.weight", f"{VGG_FC6}.bias", f"{VGG_FC7}.weight", f"{VGG_FC7}.bias"]
    absent = [k for k in needed if k not in fc]
    if absent:
        raise ValueError(f"{name} has no ImageNet fc6/fc7 ({', '.join(absent)}), needed to initialise "
                         "fc6/fc7 by decimation; save the whole torchvision vgg16 state dict")
    prefix = "head." if isinstance(head, FCBranch) else "head.branches.{}."
    init = {}
    for index, branch in enumerate(branches):
        w6, b6 = decimate_fc6(fc[needed[0]], fc[needed[1]], branch.fc6.kernel_size[0], branch.fc6.out_channels)
        w7, b7 = decimate_fc7(fc[needed[2]], fc[needed[3]], branch.fc7.out_channels)
        if w6.shape != branch.fc6.weight.shape or w7.shape != branch.fc7.weight.shape:
            raise ValueError(f"{name}: decimated fc6 {tuple(w6.shape)} / fc7 {tuple(w7.shape)} do not fit "
                             f"the model's {tuple(branch.fc6.weight.shape)} / {tuple(branch.fc7.weight.shape)}")
        p = prefix.format(index)
        init.update({f"{p}fc6.weight": (branch.fc6.weight, w6), f"{p}fc6.bias": (branch.fc6.bias, b6),
                     f"{p}fc7.weight": (branch.fc7.weight, w7), f"{p}fc7.bias": (branch.fc7.bias, b7)})
    return init


# --- helpers ----------------------------------------------------------------------------------

def _read_state_dict(path) -> dict[str, torch.Tensor]:
    if isinstance(path, Mapping):
        state = path
    else:
        if not os.path.isfile(path):
            raise ValueError(f"no weights file at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{_name(path)} is not a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _family(backbone: nn.Module | None) -> str:
    if isinstance(backbone, nn.Sequential):
        return "vgg16"
    if isinstance(backbone, AtrousResNet):
        return "resnet"
    if type(backbone).__name__ == "AlignedXception65":  # not imported: timm pulls in wandb
        return "xception65"
    raise ValueError("load_backbone_weights needs a model from build_model (VGG-16, ResNet or Xception-65 "
                     f"backbone), got backbone {type(backbone).__name__}")


def _first_conv(backbone: nn.Module) -> nn.Conv2d:
    return next(m for m in backbone.modules() if isinstance(m, nn.Conv2d))


def _check_width(backbone: nn.Module, family: str, state: Mapping[str, torch.Tensor], name: str) -> None:
    """The file's width is the model's (its first conv's channels), before any key is compared."""
    ours, width_1 = _first_conv(backbone).out_channels, FIRST_CONV_CHANNELS[family]
    key = _file_key(STEM[family][0], family)
    if key not in state:
        return  # the key comparison names what is missing
    theirs = state[key].shape[0]
    if theirs != ours:
        raise ValueError(f"widths differ: {name} is a width-{theirs / width_1:g} {family} trunk (first conv "
                         f"{theirs} channels) and this backbone width {ours / width_1:g} ({ours}); ImageNet "
                         "files are width 1, the tiny scale's shipped trunks width 0.125")


def _backbone_key(key: str, family: str) -> str:
    return key.removeprefix("features.") if family == "vgg16" else key


def _file_key(key: str, family: str) -> str:
    return f"features.{key}" if family == "vgg16" else key


def _sorted(keys) -> list[str]:
    """Natural order: layer3.6 before layer3.10."""
    return sorted(keys, key=lambda k: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in k.split(".")])


def _is_cascaded(key: str, family: str) -> bool:
    return family == "resnet" and key.split(".")[0] in ("layer5", "layer6", "layer7")


def _hint(family: str, missing: list[str], unexpected: list[str]) -> str:
    if family == "vgg16" and any(".running_mean" in k for k in missing + unexpected):
        return " (vgg16 vs vgg16_bn: batch_norm=True needs torchvision's vgg16_bn weights)"
    if family == "resnet" and any(k.startswith("layer3.") for k in missing + unexpected):
        return " (resnet50 vs resnet101?)"
    return ""


def _name(path) -> str:
    return "the state dict" if isinstance(path, Mapping) else str(path)


def _short(keys: list[str], n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
