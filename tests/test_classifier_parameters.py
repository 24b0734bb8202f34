"""Every model names its classifier, the layer the v1/v2 recipe trains at 10x the base rate.

The classifier is fc8 in v1/v2 (every ASPP branch's fc8, the MSc model's fc8 on the concatenated
features, and on ResNet each rate's 3x3 conv to the classes) and the 1x1 logits conv in v3/v3+.
Before models declared it, the LightningModule matched the name ".fc8."; for v1/v2 the declared
set and the optimizer's groups are exactly what that rule gave, so committed runs train the same.
"""

import re

import pytest
import torch

from bench.models import build_model
from bench.module import SegmentationModule
from bench.registry import experiments, get_experiment

# The classifier's parameter names, per version: fc8 (v1/v2), the logits conv (v3/v3+).
CLASSIFIER_NAMES = {"v1": r"(^|\.)fc8\.", "v2": r"(^|\.)fc8\.",
                    "v3": r"^head\.classifier\.", "v3+": r"^(head|decoder)\.classifier\."}

# Models build_model can return that no registered experiment uses yet: v2 on ResNet
# (AtrousClassifiers), v2's multi-scale inputs (MultiScaleDeepLab) on both backbones, and v3 with
# torchvision's head (an extra refine block before the logits).
EXTRA_MODELS = {
    "v2-resnet50-aspp-l": ("v2", {"backbone": "resnet50", "head": "aspp-l"}),
    "v2-msc-aspp-l": ("v2", {"head": "aspp-l", "msc": True}),
    "v2-msc-resnet50-largefov": ("v2", {"backbone": "resnet50", "head": "largefov", "msc": True}),
    "v3-torchvision-head": ("v3", {"backbone": "resnet50", "torchvision_head": True}),
}


def _registry_models():
    """(id, version, knobs) of every variant of every experiment, as the tiny scale resolves them."""
    from bench.registry import resolve_variant

    cases = []
    for name, exp in sorted(experiments().items()):
        for variant in exp.variants:
            version, _, knobs = resolve_variant(exp, variant, "tiny")
            cases.append(pytest.param(version, {**knobs, "width": min(knobs["width"], 0.125)},
                                      id=f"{name}/{variant.name}"))
    return cases


def _extra_models():
    return [pytest.param(version, {**knobs, "width": 0.125, "num_classes": 21}, id=name)
            for name, (version, knobs) in EXTRA_MODELS.items()]


def _old_fc8_rule(model):
    """The LightningModule's rule before models declared their classifier."""
    return [p for n, p in model.named_parameters() if ".fc8." in f".{n}"]


@pytest.mark.parametrize("version,knobs", _registry_models() + _extra_models())
def test_every_model_declares_its_classifier_the_per_class_layers(version, knobs):
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = build_model(version, **knobs)
    classifier = model.classifier_parameters()
    assert classifier
    named = dict(model.named_parameters())
    declared = {n for n, p in named.items() if any(p is c for c in classifier)}
    assert len(declared) == len(classifier), "a classifier parameter that is not the model's (or twice)"
    assert all(p.shape[0] == knobs["num_classes"] for p in classifier)
    assert declared == {n for n in named if re.search(CLASSIFIER_NAMES[version], n)}
    if version in ("v1", "v2"):
        assert [id(p) for p in _old_fc8_rule(model)] == [id(p) for p in classifier]


@pytest.mark.parametrize("version,knobs", _registry_models() + _extra_models())
def test_the_optimizer_gives_the_classifier_its_own_rate_and_v1_v2_groups_are_unchanged(version, knobs):
    with torch.device("meta"):
        model = build_model(version, **knobs)
    module = SegmentationModule(model, num_classes=knobs["num_classes"],
                                max_steps=10, lr=1e-3, classifier_lr_mult=10.0)
    rest, classifier = module.configure_optimizers()["optimizer"].param_groups
    assert classifier["lr"] == pytest.approx(1e-2) and rest["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in classifier["params"]} == {id(p) for p in model.classifier_parameters()}
    # every parameter in exactly one group, in the model's order within each group
    order = {id(p): i for i, p in enumerate(model.parameters())}
    for group in (rest, classifier):
        positions = [order[id(p)] for p in group["params"]]
        assert positions == sorted(positions)
    assert len(rest["params"]) + len(classifier["params"]) == len(order)
    if version in ("v1", "v2"):  # the groups the ".fc8." name rule made
        old = _old_fc8_rule(model)
        old_ids = {id(p) for p in old}
        assert [id(p) for p in classifier["params"]] == [id(p) for p in old]
        assert [id(p) for p in rest["params"]] == [id(p) for p in model.parameters() if id(p) not in old_ids]


def test_the_versions_flagships_classifiers_have_the_papers_shapes():
    """v1 LargeFOV: one fc8 1024 -> 21; v2 ASPP-L: four fc8s 1024 -> 21 (v2 Fig. 4(b)); v3 and v3+:
    one 1x1 conv 256 -> 21 (v3 Sec. 3.3; v3+ Fig. 2)."""
    exp = get_experiment("versions")
    shapes = {}
    for variant in exp.variants:
        with torch.device("meta"):
            model = build_model(exp.version_of(variant), **exp.knobs_of(variant))
        shapes[variant.name] = [tuple(p.shape) for p in model.classifier_parameters()]
    fc8 = [(21, 1024, 1, 1), (21,)]
    assert shapes == {"v1-largefov": fc8, "v2-aspp-l": fc8 * 4,
                      "v3": [(21, 256, 1, 1), (21,)], "v3plus": [(21, 256, 1, 1), (21,)]}
