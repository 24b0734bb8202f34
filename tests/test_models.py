"""The DeepLab v1/v2 VGG-16 models against the papers' claims."""

import pytest
import torch

from bench.evaluation.speed import count_params_m
from bench.models import build_model
from bench.models.heads import FCBranch, SummedBranches

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Narrow networks gain nothing from two threads, and OpenMP spin-waits badly when the other
    core is busy (see tests/test_models_v3.py); restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


# -- v1 MSc (v1 Sec. 4.3): the image and pool1..pool4 -> two-layer MLPs -> 640 channels into fc8 --

def test_v1_msc_concatenates_five_128_channel_mlps_to_fc7_before_fc8():
    model = build_model("v1", msc=True, width=0.125)
    assert [b.conv1.in_channels for b in model.msc] == [3, 8, 16, 32, 64]  # image, pool1..pool4 (x width)
    assert [b.conv1.stride[0] for b in model.msc] == [8, 4, 2, 1, 1]  # every branch lands on stride 8
    assert all(b.conv1.kernel_size == (3, 3) and b.conv2.kernel_size == (1, 1) for b in model.msc)
    assert all(b.conv1.out_channels == b.conv2.out_channels == 16 for b in model.msc)  # 128 * width
    assert model.head.fc8.in_channels == 128 + 5 * 16  # fc7 (1024 * width) + 5 x 128 * width


def test_v1_msc_adds_the_mlps_and_640_fc8_inputs_to_largefov():
    mlp = lambda c_in: (c_in * 128 * 9 + 128) + (128 * 128 + 128)
    extra = sum(mlp(c) for c in (3, 64, 128, 256, 512)) + 640 * 21
    largefov = sum(p.numel() for p in build_model("v1").parameters())
    assert sum(p.numel() for p in build_model("v1", msc=True).parameters()) == largefov + extra
    assert count_params_m(build_model("v1", msc=True)) == pytest.approx(21.71, abs=0.01)


@pytest.mark.parametrize("knobs", [dict(), dict(kernel_size=4, rate=4, fc_channels=4096)])
def test_v1_msc_forward_backward_on_odd_sizes(knobs):
    model = build_model("v1", msc=True, width=0.125, **knobs)
    logits = model(torch.randn(2, 3, 41, 57))
    assert logits.shape == (2, 21, 41, 57)
    logits.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


# -- v2 MSC (v2 Sec. 4.1): scales 1, 0.75, 0.5, shared weights, max fusion, a loss on each ------

def test_v2_msc_trains_on_every_scale_and_evaluates_the_max_fused_logits():
    torch.manual_seed(0)
    model = build_model("v2", head="aspp-s", msc=True, width=0.125, dropout=0.0).train()
    seen = []
    model.backbone.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape[-2:])))
    x = torch.randn(2, 3, 41, 57)
    out = model(x)
    assert seen == [(41, 57), (31, 43), (21, 29)]  # (n - 1) * s + 1: 1, 0.75, 0.5
    assert set(out) == {"out", "scales"} and len(out["scales"]) == 3
    assert all(t.shape == (2, 21, 41, 57) for t in [out["out"], *out["scales"]])
    assert torch.equal(out["out"], torch.stack(out["scales"]).amax(dim=0))
    loss = sum(t.logsumexp(dim=1).mean() for t in [out["out"], *out["scales"]])
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        fused = model.eval()(x)
    assert isinstance(fused, torch.Tensor) and torch.allclose(fused, out["out"], atol=1e-6)


def test_v2_msc_shares_the_single_scale_models_weights():
    single, multi = build_model("v2", head="largefov"), build_model("v2", head="largefov", msc=True)
    assert {k: v.shape for k, v in single.state_dict().items()} == {k: v.shape for k, v in multi.state_dict().items()}


def test_caffe_interp_sizes_of_the_msc_scales():
    from bench.models.multiscale import scaled_size

    assert [scaled_size(321, s) for s in (1, 0.75, 0.5)] == [321, 241, 161]


# -- v2 ResNet-101 (v2 Table 4): OS 8, each ASPP branch one 3x3 atrous conv to the classes -------

@pytest.mark.parametrize("head,rates", [("largefov", [12]), ("aspp-s", [2, 4, 8, 12]), ("aspp-l", [6, 12, 18, 24])])
def test_v2_resnet_heads_are_one_atrous_3x3_classifier_per_rate_summed(head, rates):
    model = build_model("v2", backbone="resnet101", head=head, width=0.125, num_classes=5).eval()
    convs = list(model.head.fc8)
    assert [c.dilation[0] for c in convs] == rates
    assert all(c.kernel_size == (3, 3) and c.in_channels == 256 and c.out_channels == 5 for c in convs)
    features = torch.randn(1, 256, 9, 11)
    with torch.no_grad():
        assert torch.allclose(model.head(features), sum(c(features) for c in convs), atol=1e-6)


def test_v2_resnet_runs_at_output_stride_8_with_block3_rate_2_and_block4_rate_4():
    backbone = build_model("v2", backbone="resnet101", width=0.125).backbone
    assert [u.conv2.dilation[0] for u in backbone.layer3] == [2] * 23
    assert [u.conv2.dilation[0] for u in backbone.layer4] == [4] * 3
    assert backbone(torch.randn(1, 3, 32, 48)).shape[-2:] == (4, 6)


@pytest.mark.parametrize("knobs", [dict(backbone="resnet101", head="aspp-l"),
                                   dict(backbone="resnet50", head="largefov", msc=True)])
def test_v2_resnet_forward_backward_on_odd_sizes(knobs):
    model = build_model("v2", width=0.125, num_classes=5, **knobs).train()
    out = model(torch.randn(2, 3, 33, 49))
    logits = out["out"] if isinstance(out, dict) else out
    assert logits.shape == (2, 5, 33, 49)
    logits.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_v2_resnet101_aspp_l_is_resnet101_plus_four_atrous_classifiers():
    import torchvision

    resnet101 = torchvision.models.resnet101()
    backbone = sum(p.numel() for n, p in resnet101.named_parameters() if not n.startswith("fc."))
    model = build_model("v2", backbone="resnet101", head="aspp-l")
    assert sum(p.numel() for p in model.parameters()) == backbone + 4 * (2048 * 21 * 9 + 21)
    assert count_params_m(model) == pytest.approx(44.05, abs=0.01)


@pytest.mark.parametrize("version,knobs,message", [
    ("v2", dict(backbone="xception65"), "valid: vgg16, resnet50, resnet101"),
    ("v2", dict(msc="yes"), "msc must be true or false"),
    ("v1", dict(msc=1), "msc must be true or false"),
])
def test_new_knobs_reject_invalid_values(version, knobs, message):
    with pytest.raises(ValueError, match=message):
        build_model(version, **knobs)


# -- receptive field (v1 Table 2) --------------------------------------------------------------

@pytest.mark.parametrize("knobs,paper,theoretical", [
    (dict(kernel_size=7, rate=4, fc_channels=4096), 224, 419),   # DeepLab-CRF-7x7
    (dict(kernel_size=4, rate=4, fc_channels=4096), 128, 323),   # DeepLab-CRF
    (dict(kernel_size=4, rate=8, fc_channels=4096), 224, 419),   # DeepLab-CRF-4x4
    (dict(kernel_size=3, rate=12, fc_channels=1024), 224, 419),  # DeepLab-CRF-LargeFOV
])
def test_v1_field_of_view_rows_have_the_papers_receptive_fields(knobs, paper, theoretical):
    from bench.models import make_config, receptive_field

    config = make_config("v1", knobs)
    assert receptive_field(config) == paper
    assert receptive_field(config, convention="theoretical") == theoretical
    assert receptive_field(build_model("v1", width=0.125, **knobs)) == paper  # a model works too


def test_theoretical_receptive_field_of_imagenet_vgg16_fc6_is_the_papers_404():
    # v1 Sec. 3.2: VGG-16 applied convolutionally has a 404-pixel receptive field
    import torchvision

    from bench.models.receptive_field import _walk

    layers = [m for m in torchvision.models.vgg16().features if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    assert _walk(layers + [torch.nn.Conv2d(512, 1, 7)])[0] == 404


def test_receptive_field_of_aspp_is_its_largest_branch_and_undefined_without_fc6():
    from bench.models import make_config, receptive_field

    assert receptive_field(make_config("v2", dict(head="aspp-s"))) == 224  # rate 12
    assert receptive_field(make_config("v2", dict(head="aspp-l"))) == 8 * 24 * 2 + 32
    with pytest.raises(ValueError, match="VGG-16 only"):
        receptive_field(make_config("v2", dict(backbone="resnet101")))
    assert receptive_field(make_config("v2", dict(backbone="resnet101", head="largefov")),
                           convention="theoretical") > 1000
    with pytest.raises(ValueError, match="v1/v2"):
        receptive_field(build_model("v3", width=0.125))


@pytest.mark.parametrize("version,knobs", [
    ("v1", dict(kernel_size=4, rate=3, fc_channels=4096)),  # 3 x (4 - 1) odd: one extra pixel of padding
    ("v1", dict(kernel_size=4, rate=8, fc_channels=4096)),
    ("v1", dict(kernel_size=7, rate=4, fc_channels=4096)),
    ("v2", dict(head="aspp-l")),
])
@pytest.mark.parametrize("image_size", [128, 256])
def test_tap_coverage_counts_the_taps_the_built_convs_see_inside_the_map(version, knobs, image_size):
    """Each fc6 conv of the built network, with ones for weights on a map of ones, sums the taps
    inside the map at each position: their mean over k x k is the coverage."""
    from bench.models.receptive_field import _fc6_convs, tap_coverage

    model = build_model(version, width=0.125, **knobs)
    side = model.backbone(torch.zeros(1, 3, image_size, image_size)).shape[-1]
    for conv, (kernel, rate, coverage) in zip(_fc6_convs(model), tap_coverage(model, image_size), strict=True):
        ones = torch.nn.Conv2d(1, 1, kernel, dilation=rate, padding=conv.padding, bias=False)
        ones.__class__, ones.extra_pad = type(conv), getattr(conv, "extra_pad", 0)  # the same forward
        torch.nn.init.ones_(ones.weight)
        with torch.no_grad():
            counted = ones(torch.ones(1, 1, side, side)).mean().item() / kernel ** 2
        assert coverage == pytest.approx(counted)


def test_a_rate_at_least_the_maps_side_leaves_the_centre_tap_alone():
    from bench.models.receptive_field import tap_coverage

    # 128 px at output stride 8: a 16x16 map, where ASPP-L's rates 18 and 24 are 1x1 convs
    assert [round(c, 3) for _, _, c in tap_coverage(build_model("v2", width=0.125, head="aspp-l"), 128)] == \
        [round((36 / 48) ** 2, 3), 0.25, round(1 / 9, 3), round(1 / 9, 3)]
