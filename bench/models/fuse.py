"""Inference-only rewrites of a model: conv+BN folding and channels-last memory layout.

At inference a BatchNorm after a convolution is an affine map per channel, so it folds into the
convolution's weight and bias (torch.nn.utils.fusion.fuse_conv_bn_eval): one memory pass fewer
per layer. Channels-last (NHWC) is the layout oneDNN's CPU convolutions and cuDNN's tensor-core
kernels run natively, so no reorders happen between layers.

Folding needs to know which BN follows which conv. Every module in our models registers a conv
and the BN that normalises it one after the other (torchvision's Bottleneck: conv1, bn1, conv2,
bn2, ...; our ConvBNReLU and Sequential blocks: conv, bn, relu), so we fold a Conv2d and the
BatchNorm2d registered right after it in the same parent. The result is checked against the
eager model (tests/test_fuse.py, and `make bench` prints the largest difference).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every (Conv2d, BatchNorm2d) pair registered back to back into the conv, in place.

    The model must be in eval mode (folding uses the running statistics). Returns the number of
    pairs folded; the folded BN becomes an Identity.
    """
    if model.training:
        raise ValueError("fold_batch_norms needs an eval-mode model (it uses BN running statistics)")
    folded = 0
    for parent in model.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = parent._modules[first], parent._modules[second]
            if (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d
                    and bn.track_running_stats and conv.out_channels == bn.num_features):
                parent._modules[first] = fuse_conv_bn_eval(conv, bn)
                parent._modules[second] = nn.Identity()
                folded += 1
    return folded


def optimize_for_inference(model: nn.Module, *, channels_last: bool = True) -> nn.Module:
    """A folded, channels-last eval copy of ``model`` (the original is left untouched).

    Feed it channels-last inputs (``x.contiguous(memory_format=torch.channels_last)``) or any
    input: convolutions convert once at the first layer.
    """
    fast = copy.deepcopy(model).eval()
    fold_batch_norms(fast)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast
