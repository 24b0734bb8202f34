"""Conv+BN folding and channels-last give the eager model's outputs, for every flagship."""

import pytest
import torch

from bench.models import build_model
from bench.models.fuse import fold_batch_norms, optimize_for_inference

FLAGSHIPS = [dict(version="v1"), dict(version="v2", head="aspp-l"),
             dict(version="v2", backbone="resnet50", head="aspp-l"),
             dict(version="v3", backbone="resnet50", output_stride=8),
             dict(version="v3+", backbone="resnet50"), dict(version="v3+", backbone="xception65")]


@pytest.mark.parametrize("knobs", FLAGSHIPS, ids=lambda k: "-".join(map(str, k.values())))
def test_folded_channels_last_model_matches_the_eager_one(knobs):
    torch.manual_seed(0)
    model = build_model(**knobs, width=0.125, batch_norm=True).eval() if knobs["version"] in ("v1", "v2") \
        else build_model(**knobs, width=0.125).eval()
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
