"""Conv+BN folding and channels-last give the eager model's outputs, for every flagship."""

import pytest
import torch

from bench.models import build_model
from bench.models.fuse import fold_batch_norms, optimize_for_inference
from bench.registry import get_experiment


def _flagships() -> list:
    """The variants of experiments/versions.py (what `make bench` times folded), as
    (version, experiment knobs), plus the one backbone they leave out."""
    exp = get_experiment("versions")
    cases = [pytest.param(exp.version_of(v), exp.knobs_of(v), id=v.name) for v in exp.variants]
    # v3+ on Xception-65: its modules are timm's (ConvNormAct, separable convs with BN after the
    # depthwise and the pointwise conv), not torchvision's or ours, and folding finds a BN by its
    # place right after the conv; versions.py has no Xception row.
    cases.append(pytest.param("v3+", {"backbone": "xception65"}, id="v3plus-xception65"))
    return cases


@pytest.mark.parametrize("version,knobs", _flagships())
def test_folded_channels_last_model_matches_the_eager_one(version, knobs):
    torch.manual_seed(0)
    vgg_bn = {"batch_norm": True} if version in ("v1", "v2") else {}  # VGG has no BN to fold otherwise
    model = build_model(version, **{**knobs, "width": 0.125, **vgg_bn}).eval()
    for bn in model.modules():  # running statistics that are not the identity, so folding matters
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 65, 97)
    fast = optimize_for_inference(model)
    with torch.inference_mode():
        expected, got = model(x), fast(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original untouched


def test_folding_removes_the_batch_norms_of_a_resnet_and_refuses_training_mode():
    model = build_model("v3", backbone="resnet50", width=0.125)
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batch_norms(model)
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert fold_batch_norms(model.eval()) == bns
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
