"""The tiny scale's pretraining (bench pretrain, bench/pretrain.py) and its shipped trunks
(trunks/tiny-v1, bench.trunks.ShippedTrunk): the object data, a pretrained file that the tiny
DeepLabs load, the shipped files' sha256 against their records, and a tiny run that starts from them."""

import hashlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from bench import trunks
from bench.cli import main
from bench.data import objects, synthetic
from bench.models import build_model, load_backbone_weights
from bench.pretrain import TINY_PRETRAIN, TrunkClassifier, pretrain
from bench.registry import get_experiment
from bench.runner import plan_runs

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SHIPPED = trunks.shipped(trunks.TINY_TRUNKS)


def test_the_object_images_are_deterministic_labelled_and_not_the_segmentation_data():
    images, labels = objects.generate(objects.DATA_SEED, "train", 40)
    again, _ = objects.generate(objects.DATA_SEED, "train", 20)
    assert images.shape == (40, objects.IMAGE_SIZE, objects.IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert np.array_equal(images[:20], again)  # image i depends on (seed, split, i) only
    assert labels.min() >= 0 and labels.max() < len(objects.CLASSES) == 50
    assert not np.array_equal(objects.generate(objects.DATA_SEED, "val", 20)[0], again)
    # its own images: not the segmentation generator's at the same seed, split and size
    segmentation, _ = synthetic.generate(objects.DATA_SEED, "train", 1, objects.IMAGE_SIZE)
    assert not np.array_equal(segmentation[0], images[0])


@pytest.mark.parametrize("backbone,version,knobs", [
    ("vgg16", "v2", {"head": "aspp-l", "batch_norm": True, "dropout": 0.0}),
    ("vgg16", "v1", {"kernel_size": 7, "rate": 4, "fc_channels": 4096, "batch_norm": True, "dropout": 0.0}),
    ("resnet50", "v3", {"backbone": "resnet50", "output_stride": 8, "cascade_blocks": 3}),
    ("xception65", "v3+", {"backbone": "xception65"}),
])
def test_a_pretrained_trunk_loads_into_the_tiny_deeplab_as_imagenet_weights_load(backbone, version, knobs):
    classifier = TrunkClassifier(backbone, 0.125, len(objects.CLASSES))
    model = build_model(version, width=0.125, **knobs)
    report = load_backbone_weights(model, classifier.library_state_dict())
    ours = dict(model.named_parameters())
    assert not [k for k in report.missing if k.startswith("backbone.") and not k.startswith("backbone.layer5")
                and not k.startswith(("backbone.layer6", "backbone.layer7"))]
    assert not report.adapted  # pretrained on our normalisation: no stem adaptation
    if backbone == "vgg16":  # fc6 / fc7 decimated from the pretrained 7x7, 512-channel fc6 / fc7
        fc6, fc7 = classifier.fc6, classifier.fc7
        heads = model.head.branches if hasattr(model.head, "branches") else [model.head]
        for head in heads:
            step = fc6.out_channels // head.fc6.out_channels
            taps = {3: [0, 3, 6], 7: list(range(7))}[head.fc6.kernel_size[0]]
            assert torch.equal(head.fc6.weight, fc6.weight[::step][:, :, taps][:, :, :, taps])
            assert torch.equal(head.fc6.bias, fc6.bias[::step])
            assert torch.equal(head.fc7.weight, fc7.weight[::step, ::step])
            assert torch.equal(head.fc7.bias, fc7.bias[::step])
    else:
        key = next(k for k in ours if k.startswith("backbone."))
        assert torch.equal(ours[key], classifier.trunk.state_dict()[key.removeprefix("backbone.")])


def test_pretrain_writes_the_file_and_a_record_naming_its_sha256_and_a_rebuild_gives_the_same_bytes(tmp_path):
    quick = replace(TINY_PRETRAIN, steps=2, warmup_steps=1, num_train=16, num_val=8, batch_size=4)
    threads = torch.get_num_threads()
    record = pretrain("resnet50", tmp_path / "a", quick, progress=False)
    assert torch.get_num_threads() == threads  # restored after training on the recipe's threads
    path = tmp_path / "a" / "resnet50.pt"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "a" / "resnet50.json").read_text())["sha256"] == record["sha256"]
    assert record["data"]["seed"] == objects.DATA_SEED != 0 and record["git_commit"]
    assert 0.0 <= record["val_top1"] <= 100.0 and len(record["curve"]) >= 1
    assert record["rebuild"] == f"bench pretrain resnet50 --scale tiny --steps 2 --out {tmp_path / 'a'}"
    assert set(torch.load(path, weights_only=True)) >= {"conv1.weight", "layer4.2.bn3.running_var", "fc.weight"}
    assert pretrain("resnet50", tmp_path / "b", quick, progress=False)["sha256"] == record["sha256"]


def test_a_pretrained_xception_file_given_by_path_is_not_adapted_as_timms_would_be(tmp_path):
    quick = replace(TINY_PRETRAIN, steps=1, warmup_steps=1, num_train=4, num_val=4, batch_size=2)
    record = pretrain("xception65", tmp_path, quick, progress=False)
    weights = {"backbone": "xception65", "name": "file xception65.pt", "sha256": record["sha256"],
               "path": str(tmp_path / "xception65.pt")}
    assert trunks.input_norm_of(weights) is None  # bench pretrain's record beside it: our inputs
    (tmp_path / "xception65.json").unlink()
    assert trunks.input_norm_of(weights) == ((0.5,) * 3, (0.5,) * 3)  # any other file: timm's convention


def test_a_quick_pretraining_check_cannot_replace_a_shipped_trunk(capsys):
    assert main(["pretrain", "vgg16", "--scale", "tiny", "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --out DIR, not the shipped set" in err[0]


def test_bench_pretrain_refuses_an_unknown_backbone_in_one_line(capsys):
    assert main(["pretrain", "vgg19", "--scale", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg19" in err[0] and "valid: vgg16, resnet50, resnet101, xception65" in err[0]


# -- the shipped set ------------------------------------------------------------------------

def test_every_backbone_has_a_shipped_trunk_whose_bytes_are_its_records():
    assert set(SHIPPED) == set(trunks.BACKBONES)
    for backbone, trunk in SHIPPED.items():
        record = trunk.record()
        assert hashlib.sha256(trunk.path.read_bytes()).hexdigest() == record["sha256"], backbone
        assert record["backbone"] == backbone and record["data"]["seed"] != 0
        assert record["rebuild"].startswith(f"bench pretrain {backbone} --scale tiny")
        assert trunk.path.stat().st_size < 10e6  # a few MB each


@pytest.mark.parametrize("experiment,variant,backbone", [
    ("versions", "v2-aspp-l", "vgg16"), ("ablation-output-stride", "os16", "resnet50"),
    ("versions", "v3", "resnet101"), ("ablation-decoder", "x65-decoder", "xception65"),
])
def test_a_tiny_run_starts_from_the_shipped_trunk(experiment, variant, backbone, tmp_path):
    # plan_runs loads each distinct file into the run's network: a file that does not fit fails here
    (cfg,) = plan_runs(get_experiment(experiment), scale="tiny", data="synthetic", seeds=1, variants=[variant],
                       max_steps=None, results_dir=tmp_path, backbone_weights=trunks.TINY_TRUNKS)
    weights = cfg.backbone_weights
    assert weights["name"] == f"deeplab-bench tiny-v1/{backbone}" and weights["sha256"] == SHIPPED[backbone].record()["sha256"]
    assert trunks.input_norm_of(weights) is None  # no stem adaptation: trained on our inputs


def test_a_changed_missing_or_unreadable_shipped_trunk_is_one_line_before_anything_trains(tmp_path, monkeypatch, capsys):
    folder = tmp_path / trunks.TINY_TRUNKS
    folder.mkdir()
    (folder / "resnet50.json").write_text(json.dumps({"sha256": "0" * 64}))
    (folder / "resnet50.pt").write_bytes(b"not these bytes")
    monkeypatch.setattr(trunks, "TRUNKS_DIR", tmp_path)
    run = ["run", "ablation-output-stride", "--variants", "os16", "--backbone-weights", "tiny-v1",
           "--results-dir", str(tmp_path / "results"), "--wandb", "disabled"]
    for fault, expected in [(None, "is not the resnet50 trunk it should be .*git checkout"),
                            ("corrupt record", "resnet50.json: not a readable trunk record .*git checkout"),
                            ("no file", "resnet50.pt is missing .*bench pretrain resnet50 --scale tiny")]:
        if fault == "corrupt record":
            (folder / "resnet50.json").write_text("{not json")
        if fault == "no file":
            (folder / "resnet50.pt").unlink()
        assert main(run) == 2, fault
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert re.search(expected, err[0]), err[0]
    assert not (tmp_path / "results" / "runs").exists()  # nothing trained
