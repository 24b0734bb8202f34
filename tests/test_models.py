"""The DeepLab v1/v2 VGG-16 models against the papers' claims."""

import pytest
import torch

from bench.evaluation.speed import count_params_m
from bench.models import build_model
from bench.models.heads import FCBranch, SummedBranches

# v1 Table 2 (field of view): parameter counts at 21 classes, width 1.
V1_FOV_ROWS = [
    (dict(kernel_size=7, rate=4, fc_channels=4096), 134.3),  # DeepLab-CRF-7x7
    (dict(kernel_size=4, rate=4, fc_channels=4096), 65.1),   # DeepLab-CRF
    (dict(kernel_size=4, rate=8, fc_channels=4096), 65.1),   # DeepLab-CRF-4x4
    (dict(kernel_size=3, rate=12, fc_channels=1024), 20.5),  # DeepLab-CRF-LargeFOV
]


@pytest.mark.parametrize("knobs,params_m", V1_FOV_ROWS)
def test_v1_field_of_view_rows_have_the_papers_parameter_counts(knobs, params_m):
    assert count_params_m(build_model("v1", **knobs)) == pytest.approx(params_m, rel=0.01)


def test_v2_largefov_is_v1_largefov_with_20_5m_parameters():
    assert count_params_m(build_model("v2", head="largefov")) == pytest.approx(20.5, rel=0.01)


@pytest.mark.parametrize("head,rates", [("largefov", [12]), ("aspp-s", [2, 4, 8, 12]), ("aspp-l", [6, 12, 18, 24])])
def test_v2_heads_have_one_fc6_fc7_fc8_branch_per_rate(head, rates):
    model = build_model("v2", head=head, width=0.125)
    branches = model.head.branches if isinstance(model.head, SummedBranches) else [model.head]
    assert [b.fc6.dilation[0] for b in branches] == rates
    assert all(isinstance(b, FCBranch) and b.fc6.kernel_size == (3, 3) for b in branches)
    assert all(b.fc6.out_channels == b.fc7.out_channels == 128 for b in branches)  # 1024 * width


def test_aspp_logits_are_the_sum_of_the_branch_logits():
    model = build_model("v2", head="aspp-l", width=0.125).eval()
    features = torch.randn(2, model.head.branches[0].fc6.in_channels, 9, 11)
    with torch.no_grad():
        expected = sum(branch(features) for branch in model.head.branches)
        assert torch.allclose(model.head(features), expected, atol=1e-6)


@pytest.mark.parametrize("version,knobs", [
    ("v1", dict(kernel_size=4, rate=4, fc_channels=4096)),
    ("v1", dict(kernel_size=7, rate=4, fc_channels=4096)),
    ("v2", dict(head="largefov")),
    ("v2", dict(head="aspp-s")),
    ("v2", dict(head="aspp-l")),
])
def test_forward_backward_on_odd_sizes_gives_input_sized_logits(version, knobs):
    model = build_model(version, width=0.125, num_classes=21, **knobs)
    x = torch.randn(2, 3, 65, 97)
    logits = model(x)
    assert logits.shape == (2, 21, 65, 97)
    logits.logsumexp(dim=1).mean().backward()
    assert torch.isfinite(logits).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_vgg_backbone_has_output_stride_8():
    model = build_model("v2", head="largefov", width=0.125)
    assert model.backbone(torch.randn(1, 3, 64, 96)).shape[-2:] == (8, 12)
    assert model.output_stride == 8


def test_width_narrows_channels_and_keeps_layers():
    wide, narrow = build_model("v2", head="aspp-s"), build_model("v2", head="aspp-s", width=0.25)
    assert len(list(wide.modules())) == len(list(narrow.modules()))
    assert narrow.head.branches[0].fc6.out_channels == 256


@pytest.mark.parametrize("version,knobs,message", [
    ("v2", dict(head="aspp-xl"), "valid: largefov, aspp-s, aspp-l"),
    ("v2", dict(backbone="alexnet"), "valid: vgg16"),
    ("v1", dict(rate=0), "rate must be a positive integer"),
    ("v1", dict(head="aspp-l"), "knob 'head' is not valid for v1"),
    ("v2", dict(width=0), "width must be a number in (0, 4]"),
    ("v9", dict(), "valid: v1, v2"),
])
def test_invalid_knobs_raise_valueerror_naming_the_valid_values(version, knobs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        build_model(version, **knobs)


def test_models_package_imports_no_lightning_wandb_or_registry():
    import subprocess
    import sys

    code = ("import sys, bench.models; bad = [m for m in ('pytorch_lightning', 'lightning', 'wandb', "
            "'bench.registry', 'bench.runner') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_tiny_scale_knobs_add_batch_norm_and_drop_dropout_without_changing_the_layout():
    plain = build_model("v2", head="largefov", width=0.125)
    tiny = build_model("v2", head="largefov", width=0.125, batch_norm=True, dropout=0.0)
    convs = lambda m: [(c.in_channels, c.out_channels, c.dilation) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert convs(plain) == convs(tiny)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in tiny.backbone) == 13  # one per VGG conv
    assert plain.head.dropout.p == 0.5 and tiny.head.dropout.p == 0.0
