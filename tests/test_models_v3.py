"""DeepLab v3 (arXiv'17) and v3+ (ECCV'18) against the papers' claims.

Narrow networks (width 1/8) on odd input sizes keep this fast on a 2-core CPU; the few claims
about the paper-width networks (parameter counts, weight layouts) build them once.
"""

import pytest
import torch
from torch import nn

from bench.evaluation.speed import count_params_m
from bench.models import build_model, make_config
from bench.models.aspp import ConvBNReLU, SeparableConvBNReLU
from bench.models.decoder import DeepLabV3Plus
from bench.models.deeplab import DeepLab
from bench.models.torchvision_port import TORCHVISION_DEEPLABV3_KNOBS, load_torchvision_deeplabv3

WIDTH = 0.125
BLOCK4_RATE = {8: 4, 16: 2, 32: 1}  # v3 Fig. 3: block4 runs at rate 2 for OS 16 (4 for OS 8)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tiny networks gain nothing from two threads, and OpenMP spin-waits badly when the
    other core is busy (a 20 ms step became seconds); restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def narrow(version, **knobs):
    torch.manual_seed(0)
    return build_model(version, width=WIDTH, **knobs)


def conv2_rates(stage):
    return [unit.conv2.dilation[0] for unit in stage]


# -- every knob combination trains: input-sized logits, finite, a gradient for every parameter --

V3_KNOBS = [
    dict(),  # the v3 Table 5 best: ResNet-101, OS 16, multigrid (1, 2, 4), ASPP (6, 12, 18) + image pooling
    dict(output_stride=8),
    dict(output_stride=32),
    dict(multigrid=(1, 1, 1)),
    dict(multigrid=(2, 2, 2)),
    dict(image_pooling=False),
    dict(backbone="resnet50"),
    dict(backbone="resnet50", cascade_blocks=3, multigrid=(1, 2, 1)),  # going deeper: block7
    dict(cascade_blocks=1, output_stride=8),
    dict(aspp_rates=(6, 12, 18, 24)),
    dict(output_stride=8, torchvision_head=True, contracted=True),
]
V3PLUS_KNOBS = [
    dict(),  # ResNet-101 with the decoder
    dict(decoder=False),
    dict(separable=True),
    dict(output_stride=8),
    dict(backbone="xception65"),  # separable ASPP and decoder by default
    dict(backbone="xception65", separable=False),
    dict(backbone="xception65", decoder=False),
    dict(backbone="xception65", output_stride=8, image_pooling=False),
]
CASES = [("v3", k) for k in V3_KNOBS] + [("v3+", k) for k in V3PLUS_KNOBS]


@pytest.mark.parametrize("version,knobs", CASES, ids=[f"{v}-{k}" for v, k in CASES])
def test_forward_backward_on_odd_sizes_gives_input_sized_logits(version, knobs):
    model = narrow(version, num_classes=5, **knobs).train()
    x = torch.randn(2, 3, 65, 97)  # batch 2: batch norm on the 1x1 image-pooling map needs it
    logits = model(x)
    assert logits.shape == (2, 5, 65, 97)
    logits.logsumexp(dim=1).mean().backward()
    assert torch.isfinite(logits).all()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_image_pooling_trains_on_a_batch_of_one():
    model = narrow("v3", output_stride=32).train()
    logits = model(torch.randn(1, 3, 33, 33))  # the pooled map holds one value per channel
    assert logits.shape == (1, 21, 33, 33) and torch.isfinite(logits).all()


# -- output stride: striding replaced by atrous rates -----------------------------------------

@pytest.mark.parametrize("version,backbone", [("v3", "resnet50"), ("v3", "resnet101"), ("v3+", "xception65")])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_backbone_features_have_the_requested_output_stride(version, backbone, output_stride):
    model = narrow(version, backbone=backbone, output_stride=output_stride)
    low_level, out = model.backbone.forward_with_low_level(torch.randn(1, 3, 64, 96))
    assert out.shape[-2:] == (64 // output_stride, 96 // output_stride)
    assert low_level.shape[-2:] == (16, 24)  # the v3+ decoder's stride-4 features
    assert model.output_stride == model.backbone.output_stride == output_stride


def test_cascaded_blocks_keep_the_output_stride():
    model = narrow("v3", backbone="resnet50", cascade_blocks=3)
    assert model.backbone(torch.randn(1, 3, 64, 96)).shape[-2:] == (4, 6)


# -- multigrid (v3 Sec. 3.2): block4's three units at rate x (r1, r2, r3) -------------------------

@pytest.mark.parametrize("multigrid", [(1, 1, 1), (1, 2, 1), (2, 2, 2), (1, 2, 4)])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_multigrid_multiplies_the_rate_of_block4s_units(multigrid, output_stride):
    backbone = narrow("v3", backbone="resnet50", output_stride=output_stride, multigrid=multigrid).backbone
    rate = BLOCK4_RATE[output_stride]
    assert conv2_rates(backbone.layer4) == [rate * m for m in multigrid]
    assert set(conv2_rates(backbone.layer3)) == {max(1, rate // 2)}  # block3 is atrous only at OS 8


def test_cascaded_blocks_5_to_7_double_the_rate_and_repeat_the_multigrid():
    # v3 Fig. 3(b): at OS 16 block4..block7 have rates 2, 4, 8, 16
    backbone = narrow("v3", backbone="resnet50", cascade_blocks=3, multigrid=(1, 2, 4)).backbone
    for name, rate in [("layer4", 2), ("layer5", 4), ("layer6", 8), ("layer7", 16)]:
        assert conv2_rates(getattr(backbone, name)) == [rate, 2 * rate, 4 * rate]
    assert len(backbone.layer7) == len(backbone.layer4) == 3


def test_every_unit_of_a_dilated_stage_runs_at_its_rate_unless_contracted():
    import torchvision

    paper = narrow("v3", backbone="resnet50", output_stride=8, multigrid=(1, 1, 1)).backbone
    assert conv2_rates(paper.layer3) == [2] * 6 and conv2_rates(paper.layer4) == [4] * 3
    contracted = build_model("v3", backbone="resnet50", output_stride=8, multigrid=(1, 1, 1), contracted=True).backbone
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    for name in ("layer1", "layer2", "layer3", "layer4"):
        assert conv2_rates(getattr(contracted, name)) == conv2_rates(getattr(reference, name))


def test_xception_multigrid_multiplies_the_rates_of_exit_flow_block2():
    backbone = narrow("v3+", backbone="xception65", output_stride=16, multigrid=(1, 2, 4)).backbone
    exit_block2 = backbone.blocks[-1].stack
    assert [exit_block2.get_submodule(f"conv{i}").conv_dw.dilation[0] for i in (1, 2, 3)] == [2, 4, 8]


# -- ASPP (v3 Sec. 3.3) ------------------------------------------------------------------------

@pytest.mark.parametrize("output_stride,knobs,rates", [
    (16, {}, (6, 12, 18)),
    (8, {}, (12, 24, 36)),  # "the rates are doubled when output_stride = 8"
    (32, {}, (3, 6, 9)),  # our choice: halved at OS 32
    (8, dict(aspp_rates=(4, 8, 12)), (8, 16, 24)),  # aspp_rates are given at OS 16
])
def test_aspp_has_a_1x1_branch_and_one_3x3_branch_per_rate(output_stride, knobs, rates):
    aspp = narrow("v3", output_stride=output_stride, **knobs).head.aspp
    one_by_one, *atrous = aspp.branches
    assert one_by_one[0].kernel_size == (1, 1)
    assert tuple(b[0].dilation[0] for b in atrous) == rates
    assert all(b[0].kernel_size == (3, 3) and isinstance(b[1], nn.BatchNorm2d) for b in atrous)


@pytest.mark.parametrize("image_pooling", [True, False])
def test_v3_head_concatenates_256_channel_branches_projects_to_256_then_1x1_logits(image_pooling):
    head = narrow("v3", image_pooling=image_pooling, num_classes=21).head
    branches = 4 + image_pooling  # 1x1 + three rates (+ image pooling)
    assert (head.aspp.image_pooling is not None) == image_pooling
    assert all(b[0].out_channels == 32 for b in head.aspp.branches)  # 256 * width
    project = head.aspp.project[0]
    assert (project.in_channels, project.out_channels, project.kernel_size) == (branches * 32, 32, (1, 1))
    assert head.refine is None  # no extra 3x3 conv: torchvision's addition, not the paper's
    assert (head.classifier.in_channels, head.classifier.out_channels, head.classifier.kernel_size) == (32, 21, (1, 1))


def test_image_pooling_gives_the_same_feature_at_every_position():
    pooling = narrow("v3").head.aspp.image_pooling.eval()
    with torch.no_grad():
        out = pooling(torch.randn(2, pooling.conv.in_channels, 5, 7))
    assert torch.allclose(out, out[..., :1, :1].expand_as(out))


# -- v3+ decoder (v3+ Sec. 3.1) ----------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["resnet101", "xception65"])
def test_decoder_fuses_48_channel_stride_4_features_with_the_upsampled_encoder(backbone):
    model = narrow("v3+", backbone=backbone, num_classes=21).eval()
    decoder = model.decoder
    assert decoder.reduce[0].kernel_size == (1, 1) and decoder.reduce[0].out_channels == 6  # 48 * width
    assert len(decoder.refine) == 2 and all(_out_channels(block) == 32 for block in decoder.refine)  # 256 * width
    assert decoder.classifier.kernel_size == (1, 1)
    seen = {}
    decoder.register_forward_hook(lambda m, args, out: seen.update(low=args[0], logits=out))
    with torch.no_grad():
        full = model(torch.randn(1, 3, 65, 97))
    assert seen["logits"].shape[-2:] == seen["low"].shape[-2:] == (17, 25)  # stride 4, then x4 to the input
    assert full.shape[-2:] == (65, 97)


def test_separable_makes_aspp_and_decoder_3x3_convs_depthwise_then_pointwise():
    model = narrow("v3+", backbone="resnet101", separable=True)
    separable = list(model.aspp.branches[1:]) + list(model.decoder.refine)
    assert all(isinstance(b, SeparableConvBNReLU) for b in separable)
    for block in separable:
        dw, pw = block.depthwise, block.pointwise
        assert dw.kernel_size == (3, 3) and dw.groups == dw.in_channels == dw.out_channels
        assert pw.kernel_size == (1, 1) and pw.groups == 1
        assert isinstance(block.depthwise_bn, nn.BatchNorm2d) and isinstance(block.pointwise_bn, nn.BatchNorm2d)
    assert isinstance(model.aspp.branches[0], ConvBNReLU)  # the 1x1 branch stays a plain conv
    assert [b.depthwise.dilation[0] for b in model.aspp.branches[1:]] == [6, 12, 18]


def test_v3plus_without_decoder_is_v3_on_the_same_backbone():
    v3plus = narrow("v3+", backbone="resnet101", decoder=False, multigrid=(1, 2, 4))
    v3 = narrow("v3", backbone="resnet101", multigrid=(1, 2, 4))
    assert isinstance(v3plus, DeepLab) and not isinstance(v3plus, DeepLabV3Plus)
    assert {k: v.shape for k, v in v3plus.state_dict().items()} == {k: v.shape for k, v in v3.state_dict().items()}


def test_v3plus_defaults_follow_the_paper_per_backbone():
    resnet, xception = make_config("v3+", {}), make_config("v3+", dict(backbone="xception65"))
    assert (resnet.backbone, resnet.multigrid, resnet.separable, resnet.output_stride) == ("resnet101", (1, 2, 4), False, 16)
    assert (xception.multigrid, xception.separable, xception.low_level_channels) == ((1, 1, 1), True, 48)
    assert make_config("v3", dict(multigrid=[1, 2, 1])).multigrid == (1, 2, 1)  # lists (JSON) become tuples


# -- width narrows every channel and changes nothing else -------------------------------------

def _out_channels(block):
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def _conv_layout(model):
    return [(m.kernel_size, m.stride, m.dilation, m.groups == m.in_channels > 1)
            for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("version,knobs", [("v3", dict(backbone="resnet50")), ("v3+", dict(backbone="xception65"))])
def test_width_narrows_channels_and_keeps_layers_strides_and_rates(version, knobs):
    wide, thin = build_model(version, **knobs), narrow(version, **knobs)
    assert _conv_layout(wide) == _conv_layout(thin)
    wide_convs = [m for m in wide.modules() if isinstance(m, nn.Conv2d)]
    thin_convs = [m for m in thin.modules() if isinstance(m, nn.Conv2d)]
    hidden = [(w.out_channels, t.out_channels) for w, t in zip(wide_convs, thin_convs)][:-1]  # not the logits
    assert all(t == max(1, round(w * WIDTH)) for w, t in hidden)


# -- paper-width layouts: torchvision / timm weights load, parameter counts --------------------

@pytest.fixture(scope="module")
def torchvision_deeplabv3():
    from torchvision.models.segmentation import deeplabv3_resnet101

    torch.manual_seed(0)
    return deeplabv3_resnet101(weights=None, weights_backbone=None, aux_loss=False, num_classes=21)


def test_resnet_backbone_keeps_torchvisions_names_so_imagenet_weights_load():
    import torchvision

    ours = build_model("v3", backbone="resnet50").backbone.state_dict()
    imagenet = {k: v for k, v in torchvision.models.resnet50().state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in imagenet.items()}


def test_xception65_backbone_is_timms_so_its_weights_load_and_give_its_features():
    import timm

    ours = build_model("v3+", backbone="xception65", output_stride=16).backbone.eval()
    reference = timm.create_model("xception65", pretrained=False, num_classes=0, output_stride=16).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 33, 33)
    with torch.no_grad():
        assert torch.equal(ours(x), reference.forward_features(x))


def test_torchvision_deeplabv3_resnet101_weights_give_torchvisions_outputs(torchvision_deeplabv3, tmp_path):
    reference = torchvision_deeplabv3.eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BN statistics, so a swapped BN would show
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=generator))
    path = tmp_path / "deeplabv3_resnet101.pth"
    torch.save(reference.state_dict(), path)

    ours = load_torchvision_deeplabv3(build_model("v3", **TORCHVISION_DEEPLABV3_KNOBS), path).eval()
    x = torch.randn(1, 3, 65, 65)
    with torch.no_grad():
        expected, got = reference(x)["out"], ours(x)
    assert got.shape == expected.shape == (1, 21, 65, 65)
    assert (got - expected).abs().max() < 1e-5


def test_torchvision_port_refuses_a_model_without_torchvisions_layout():
    with pytest.raises(ValueError, match="torchvision_head=True"):
        load_torchvision_deeplabv3(narrow("v3", output_stride=8), {})


def _conv_bn(c_in, c_out, k):
    return c_in * c_out * k * k + 2 * c_out


def test_v3_resnet101_parameters_are_torchvisions_deeplabv3_minus_its_extra_3x3_conv(torchvision_deeplabv3):
    import torchvision

    ours = build_model("v3", backbone="resnet101", output_stride=16, image_pooling=True, num_classes=21)
    n_ours = sum(p.numel() for p in ours.parameters())
    # the paper's head: 1x1 + three 3x3 ASPP branches + image pooling, 256 each with BN;
    # concat (5 x 256) -> 1x1 projection 256 + BN -> 1x1 logits (with bias)
    head = (_conv_bn(2048, 256, 1) + 3 * _conv_bn(2048, 256, 3) + _conv_bn(2048, 256, 1)
            + _conv_bn(5 * 256, 256, 1) + 256 * 21 + 21)
    resnet101 = torchvision.models.resnet101()
    backbone = sum(p.numel() for p in resnet101.parameters()) - sum(p.numel() for p in resnet101.fc.parameters())
    assert n_ours == backbone + head
    torchvision_extra = _conv_bn(256, 256, 3)  # DeepLabHead's 3x3 conv 256 + BN before the logits
    assert n_ours == sum(p.numel() for p in torchvision_deeplabv3.parameters()) - torchvision_extra
    assert count_params_m(ours) == pytest.approx(58.04, abs=0.01)


# -- invalid knobs name the valid values -------------------------------------------------------

@pytest.mark.parametrize("version,knobs,message", [
    ("v3", dict(output_stride=4), "output_stride 4 is not valid; valid: 8, 16, 32"),
    ("v3+", dict(output_stride=64), "valid: 8, 16, 32"),
    ("v3", dict(multigrid=(1, 2)), "multigrid must be three positive integers"),
    ("v3", dict(multigrid=(1, 0, 2)), "multigrid must be three positive integers"),
    ("v3+", dict(multigrid=(1.5, 2, 4)), "multigrid must be three positive integers"),
    ("v3", dict(backbone="xception65"), "valid: resnet50, resnet101"),
    ("v3+", dict(backbone="vgg16"), "valid: resnet50, resnet101, xception65"),
    ("v3", dict(aspp_rates=(6, 0, 18)), "aspp_rates must be one or more positive integers (rates >= 1)"),
    ("v3", dict(aspp_rates=()), "aspp_rates must be one or more positive integers"),
    ("v3", dict(cascade_blocks=4), "cascade_blocks 4 is not valid; valid: 0, 1, 2, 3"),
    ("v3", dict(image_pooling="yes"), "valid: True, False"),
    ("v3", dict(decoder=True), "knob 'decoder' is not valid for v3"),
    ("v3+", dict(cascade_blocks=1), "knob 'cascade_blocks' is not valid for v3+"),
    ("v3+", dict(torchvision_head=True), "knob 'torchvision_head' is not valid for v3+"),
    ("v3+", dict(low_level_channels=0), "low_level_channels must be a positive integer"),
    ("v3", dict(width=5), "width must be a number in (0, 4]"),
    ("v3", dict(num_classes=0), "num_classes must be a positive integer"),
])
def test_invalid_knobs_raise_valueerror_naming_the_valid_values(version, knobs, message):
    with pytest.raises(ValueError) as error:
        build_model(version, **knobs)
    assert message in str(error.value)
