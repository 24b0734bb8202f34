"""Each version's and dataset's own recipe at the paper scale, and docs/protocols.md equal to the code."""

from dataclasses import fields
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from bench.data import transforms
from bench.data.datamodule import SegmentationDataModule
from bench.models import build_model
from bench.module import SegmentationModule, step_lr_factor
from bench.recipes import (PAPER_V1, PAPER_V2_RESNET, PAPER_V2_VGG, PAPER_V3, PAPER_V3_CITYSCAPES, RECIPES,
                           TINY, TINY_VGG, protocols_markdown)
from bench.registry import get_experiment, resolve_variant
from bench.run_config import Protocol

ROOT = Path(__file__).resolve().parents[1]


def test_docs_protocols_md_is_generated_from_the_code():
    assert (ROOT / "docs" / "protocols.md").read_text() == protocols_markdown(), \
        "docs/protocols.md is stale: run `bench protocols > docs/protocols.md`"


def test_every_source_names_a_protocol_field_and_every_paper_recipe_cites_its_schedule():
    names = {f.name for f in fields(Protocol)}
    for key, recipe in RECIPES.items():
        assert set(recipe.sources) <= names, key
        if key[0] == "paper":
            assert {"crop_size", "batch_size", "max_steps", "lr", "lr_policy"} <= set(recipe.sources), key


def _protocol(experiment: str, variant: str, data: str = "synthetic", scale: str = "paper") -> Protocol:
    exp = get_experiment(experiment)
    return resolve_variant(exp, next(v for v in exp.variants if v.name == variant), scale, data=data)[1]


@pytest.mark.parametrize("experiment", ["ablation-fov", "ablation-kernel", "ablation-msc"])
def test_v1_experiments_train_with_v1s_step_recipe_at_the_paper_scale(experiment):
    exp = get_experiment(experiment)
    for variant in exp.variants:
        protocol = resolve_variant(exp, variant, "paper", data="voc:/nowhere")[1]
        assert protocol == PAPER_V1
    assert (PAPER_V1.lr_policy, PAPER_V1.lr_step, PAPER_V1.max_steps, PAPER_V1.batch_size) == ("step", 2000, 6000, 20)
    assert PAPER_V1.classifier_lr_mult == 10


def test_each_version_of_versions_gets_its_own_recipe_and_cityscapes_its_own():
    expected = {"v1-largefov": PAPER_V1, "v2-aspp-l": PAPER_V2_VGG, "v3": PAPER_V3, "v3plus": PAPER_V3}
    exp = get_experiment("versions")
    assert {v.name: _protocol("versions", v.name, "voc:/x") for v in exp.variants} == expected
    assert _protocol("versions", "v3", "cityscapes:/x") == PAPER_V3_CITYSCAPES
    assert (PAPER_V3_CITYSCAPES.crop_size, PAPER_V3_CITYSCAPES.max_steps, PAPER_V3_CITYSCAPES.num_train) == (769, 90_000, 2975)
    assert (PAPER_V3.crop_size, PAPER_V3.batch_size, PAPER_V3.lr, PAPER_V3.max_steps) == (513, 16, 0.007, 30_000)
    assert PAPER_V3.bn_momentum == pytest.approx(0.0003) and PAPER_V3.scale_range == (0.5, 2.0)


def test_v2_resnet_rows_train_with_the_released_resnet_recipe():
    exp = get_experiment("ablation-crf")
    resnet = [v for v in exp.variants if exp.knobs_of(v).get("backbone", "vgg16").startswith("resnet")]
    for variant in resnet:
        assert resolve_variant(exp, variant, "paper", data="voc:/x")[1] == PAPER_V2_RESNET
    assert PAPER_V2_RESNET.freeze_bn and PAPER_V2_RESNET.scale_range == (0.5, 1.5)


def test_the_tiny_scale_keeps_one_recipe_whatever_the_dataset():
    for (scale, family, dataset), recipe in RECIPES.items():
        if scale == "tiny":
            assert recipe.protocol == (TINY_VGG if family.startswith(("v1", "v2")) else TINY)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_step_policy_divides_by_ten_every_2000_iterations():
    assert [step_lr_factor(s, 2000) for s in (0, 1999, 2000, 4000)] == pytest.approx([1, 1, 0.1, 0.01])
    module = SegmentationModule(build_model("v1", width=0.125), num_classes=21, max_steps=6000, lr=1e-3,
                                classifier_lr_mult=10, lr_policy="step", lr_step=2000)
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    for _ in range(2000):
        scheduler.step()
    assert [g["lr"] for g in scheduler.optimizer.param_groups] == pytest.approx([1e-4, 1e-3])
    with pytest.raises(ValueError, match="lr_policy"):
        SegmentationModule(build_model("v1", width=0.125), num_classes=21, max_steps=10, lr=1e-3, lr_policy="step")


def test_bn_decay_and_frozen_bn_reach_every_batch_norm():
    model = build_model("v3", backbone="resnet50", width=0.125)
    module = SegmentationModule(model, num_classes=21, max_steps=10, lr=0.01, bn_momentum=0.0003)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(bn.momentum == 0.0003 for bn in bns)
    frozen = SegmentationModule(build_model("v2", backbone="resnet50", width=0.125), num_classes=21,
                                max_steps=10, lr=0.01, freeze_bn=True)
    bns = [m for m in frozen.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [bn.running_mean.clone() for bn in bns]
    seen = []

    class Watch(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(all(not bn.training for bn in bns) and module.model.training)

    data = SegmentationDataModule(image_size=64, batch_size=2, num_train=4, num_val=2)
    pl.Trainer(max_steps=3, val_check_interval=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, callbacks=[Watch()],
               accelerator="cpu").fit(frozen, datamodule=data)
    assert seen == [True, True, True]  # BN in eval mode at every step of fit, validations between
    assert all(torch.equal(b, bn.running_mean) for b, bn in zip(before, bns))
    assert all(not bn.weight.requires_grad for bn in bns)


def test_the_vgg_recipes_crop_and_flip_without_random_scaling():
    names = lambda t: [type(x).__name__ for x in t.transforms]
    assert "RandomScale" not in names(transforms.train_transform(321, None))
    assert "RandomScale" in names(transforms.train_transform(513, (0.5, 2.0)))


def test_a_shorter_schedule_keeps_the_step_policys_shape():
    exp = get_experiment("ablation-fov")
    from bench.runner import plan_runs

    [cfg] = plan_runs(exp, scale="paper", data="synthetic", seeds=1, variants=["crf-largefov"], max_steps=1500,
                      backbone_weights="none", fetch_weights=False)
    assert (cfg.protocol.max_steps, cfg.protocol.lr_step) == (1500, 500)  # x0.1 at 1/3 and 2/3, as at 6K
