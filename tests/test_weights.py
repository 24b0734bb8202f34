"""ImageNet backbone weights from a state dict into our networks (the papers fine-tune from them).

The files are torchvision's / timm's networks with random values, written by the tests themselves
(tests/conftest.py, once per session): what matters is where every tensor lands, not what it holds.
Where the files come from (torchvision's and timm's caches) is tests/test_trunks.py.
"""

import pytest
import torch

from bench.models import build_model, load_backbone_weights


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def vgg16_file(torch_home):
    return torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"


@pytest.fixture(scope="module")
def resnet101_file(torch_home):
    return torch_home / "hub" / "checkpoints" / "resnet101-63fe2227.pth"


# -- VGG-16: conv layers unchanged, fc6/fc7 by decimation (v1 Sec. 3.2) --------------------------

def test_largefov_gets_imagenet_convs_and_fc6_fc7_decimated_to_3x3_and_1024_channels(vgg16_file):
    imagenet = torch.load(vgg16_file, weights_only=True)
    model = build_model("v1")  # LargeFOV: fc6 3x3 rate 12, 1024 channels
    report = load_backbone_weights(model, vgg16_file)

    for key, value in imagenet.items():
        if key.startswith("features."):
            assert torch.equal(model.backbone.state_dict()[key.removeprefix("features.")], value), key
    fc6 = imagenet["classifier.0.weight"].view(4096, 512, 7, 7)
    rows = [4 * i for i in range(1024)]  # every 4th of the 4096 channels
    taps = [0, 3, 6]  # 7 taps decimated to 3
    expected_fc6 = fc6[rows][:, :, taps][:, :, :, taps]
    assert torch.equal(model.head.fc6.weight, expected_fc6)
    assert torch.equal(model.head.fc6.bias, imagenet["classifier.0.bias"][rows])
    expected_fc7 = imagenet["classifier.3.weight"][rows][:, rows].view(1024, 1024, 1, 1)
    assert torch.equal(model.head.fc7.weight, expected_fc7)
    assert torch.equal(model.head.fc7.bias, imagenet["classifier.3.bias"][rows])

    assert set(report.missing) == {"head.fc8.weight", "head.fc8.bias"}  # the classifier is new
    assert set(report.unused) == {"classifier.6.weight", "classifier.6.bias"}  # ImageNet's classifier
    assert "head.fc6.weight" in report.loaded and "backbone.0.weight" in report.loaded


def test_4x4_fc6_with_4096_channels_keeps_every_channel_and_every_other_tap(vgg16_file):
    imagenet = torch.load(vgg16_file, weights_only=True)
    model = build_model("v1", kernel_size=4, rate=4, fc_channels=4096)  # DeepLab-CRF
    load_backbone_weights(model, vgg16_file)
    taps = [0, 2, 4, 6]
    expected = imagenet["classifier.0.weight"].view(4096, 512, 7, 7)[:, :, taps][:, :, :, taps]
    assert torch.equal(model.head.fc6.weight, expected)
    assert torch.equal(model.head.fc7.weight.flatten(1), imagenet["classifier.3.weight"])


def test_every_aspp_branch_and_the_msc_model_start_from_imagenet(vgg16_file):
    imagenet = torch.load(vgg16_file, weights_only=True)
    aspp = build_model("v2", head="aspp-s")
    load_backbone_weights(aspp, vgg16_file)
    first = aspp.head.branches[0].fc6.weight
    assert all(torch.equal(b.fc6.weight, first) for b in aspp.head.branches)
    msc = build_model("v1", msc=True)
    report = load_backbone_weights(msc, vgg16_file)
    assert torch.equal(msc.backbone[0].weight, imagenet["features.0.weight"])
    assert any(k.startswith("msc.") for k in report.missing)  # the MLPs are new


def test_wrapped_checkpoints_and_ddp_prefixes_are_unwrapped(vgg16_file):
    imagenet = torch.load(vgg16_file, weights_only=True)
    model = build_model("v1")
    load_backbone_weights(model, {"state_dict": {f"module.{k}": v for k, v in imagenet.items()}})
    assert torch.equal(model.backbone[28].weight, imagenet["features.28.weight"])


@pytest.mark.parametrize("version,knobs,message", [
    ("v1", dict(width=0.125), "widths differ"),
    ("v2", dict(head="largefov", width=0.5), "widths differ"),
    ("v1", dict(batch_norm=True), "vgg16_bn"),
    ("v1", dict(fc_channels=1000), "valid: a divisor of 4096"),
    ("v1", dict(kernel_size=9, rate=1), "valid: 1..7"),
])
def test_vgg_weights_refuse_what_they_do_not_fit(vgg16_file, version, knobs, message):
    with pytest.raises(ValueError, match=message):
        load_backbone_weights(build_model(version, **knobs), vgg16_file)


# -- ResNet-101 (v2 ResNet, v3, v3+) -----------------------------------------------------------

@pytest.mark.parametrize("version,knobs", [("v2", dict(backbone="resnet101", head="aspp-l")),
                                           ("v3", dict(backbone="resnet101"))])
def test_resnet101_backbone_gets_every_imagenet_tensor(resnet101_file, version, knobs):
    imagenet = torch.load(resnet101_file, weights_only=True)
    model = build_model(version, **knobs)
    report = load_backbone_weights(model, resnet101_file)
    ours = model.backbone.state_dict()
    assert set(ours) == {k for k in imagenet if not k.startswith("fc.")}
    assert all(torch.equal(ours[k], imagenet[k]) for k in ours)
    assert set(report.unused) == {"fc.weight", "fc.bias"}
    assert report.missing and all(k.startswith("head.") for k in report.missing)


def test_resnet_weights_refuse_a_narrow_network_and_the_wrong_depth(resnet101_file):
    with pytest.raises(ValueError, match="widths differ"):
        load_backbone_weights(build_model("v2", backbone="resnet101", width=0.125), resnet101_file)
    with pytest.raises(ValueError, match="unexpected layer3.6"):
        load_backbone_weights(build_model("v3", backbone="resnet50"), resnet101_file)


def test_cascaded_blocks_have_no_imagenet_counterpart_and_stay_as_built(resnet101_file):
    model = build_model("v3", backbone="resnet101", cascade_blocks=1)
    report = load_backbone_weights(model, resnet101_file)
    assert any(k.startswith("backbone.layer5.") for k in report.missing)
    assert not any(k.startswith("backbone.layer4.") for k in report.missing)


# -- Xception-65 (v3+): timm's keys ------------------------------------------------------------

def test_xception65_gets_timms_weights(tmp_path):
    import timm

    torch.manual_seed(0)
    reference = timm.create_model("xception65", pretrained=False)
    path = tmp_path / "xception65.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("v3+", backbone="xception65")
    report = load_backbone_weights(model, path)
    assert set(report.unused) == {"head.fc.weight", "head.fc.bias"}
    ours = model.backbone.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in reference.state_dict().items() if k in ours)
    assert len(report.loaded) == len(ours)


def test_xception65s_stem_sees_our_imagenet_normalised_pixels_as_timm_saw_them_normalised_with_0_5(
        random_state_dict):
    """timm's xception65.tf_in1k was trained on (p - 0.5) / 0.5, our pipeline feeds (p - m) / s with
    ImageNet's mean and std: loaded with the file's input_norm, our stem gives timm's stem output
    for the same pixels, away from the zero-padded border (2 pixels); loaded as is, it does not."""
    import timm

    from bench import trunks
    from bench.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    reference = timm.create_model("xception65", pretrained=False).eval()
    generator = torch.Generator().manual_seed(1)
    state = random_state_dict(reference)
    for conv, fan_in in (("stem.0", 3 * 9), ("stem.1", 32 * 9)):  # a stem with O(1) outputs
        channels, shape = state[f"{conv}.bn.weight"].shape, state[f"{conv}.conv.weight"].shape
        state[f"{conv}.conv.weight"] = torch.randn(shape, generator=generator) * (2 / fan_in) ** 0.5
        state[f"{conv}.bn.weight"] = 1 + 0.1 * torch.randn(channels, generator=generator)
        state[f"{conv}.bn.bias"] = 0.1 * torch.randn(channels, generator=generator)
        state[f"{conv}.bn.running_mean"] = 0.3 * torch.randn(channels, generator=generator)
        state[f"{conv}.bn.running_var"] = 0.5 + torch.rand(channels, generator=generator)
    reference.load_state_dict(state)
    input_norm = trunks.IMAGENET["xception65"].input_norm  # timm's pretrained config
    assert input_norm == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    pixels = torch.rand(1, 3, 64, 64, generator=generator)

    def normalised(mean, std):
        return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    interior = (..., slice(2, -2), slice(2, -2))
    with torch.no_grad():
        theirs = reference.stem(normalised(*input_norm))[interior]
    model = build_model("v3+", backbone="xception65").eval()
    report = load_backbone_weights(model, state, input_norm=input_norm)
    assert report.adapted == ["backbone.stem.0.conv.weight", "backbone.stem.0.bn.running_mean"]
    assert "stem adapted" in str(report)
    with torch.no_grad():
        ours = model.backbone.stem(normalised(IMAGENET_MEAN, IMAGENET_STD))[interior]
    scale = theirs.abs().max()
    assert scale > 0.5 and (ours - theirs).abs().max() <= 1e-4 * scale

    report = load_backbone_weights(model, state)  # as is: timm's stem fed our pixels
    assert report.adapted == []
    with torch.no_grad():
        unadapted = model.backbone.stem(normalised(IMAGENET_MEAN, IMAGENET_STD))[interior]
    assert (unadapted - theirs).abs().max() > 0.1 * scale


def test_a_file_without_imagenet_fc6_fc7_is_refused_before_anything_is_copied(vgg16_file):
    features_only = {k: v for k, v in torch.load(vgg16_file, weights_only=True).items() if k.startswith("features.")}
    model = build_model("v1")
    before = model.backbone[0].weight.clone()
    with pytest.raises(ValueError, match="no ImageNet fc6/fc7"):
        load_backbone_weights(model, features_only)
    assert torch.equal(model.backbone[0].weight, before)
