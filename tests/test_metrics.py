"""mIoU equals an independent numpy confusion-matrix computation (the VOC devkit's definition)."""

import numpy as np
import pytest
import torch

from bench.evaluation.metrics import confusion_matrix_metric, summarize_confusion
from bench.module import poly_lr_factor


def numpy_miou(pred, gt, num_classes, ignore=255):
    keep = gt != ignore
    cm = np.bincount(num_classes * gt[keep] + pred[keep], minlength=num_classes ** 2).reshape(num_classes, num_classes)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return 100 * np.mean(inter[present] / union[present]), cm


def test_miou_matches_numpy_with_ignore_pixels_and_absent_classes():
    rng = np.random.default_rng(0)
    num_classes = 21
    gt = rng.integers(0, 15, size=(4, 33, 47))          # classes 15..20 absent from ground truth
    pred = rng.integers(0, 18, size=gt.shape)          # 18..20 absent from both
    gt[rng.random(gt.shape) < 0.1] = 255
    metric = confusion_matrix_metric(num_classes)
    for i in range(len(gt)):                             # accumulated over batches, as in validation
        metric.update(torch.from_numpy(pred[i:i + 1]), torch.from_numpy(gt[i:i + 1]))
    summary = summarize_confusion(metric.compute())
    expected, cm = numpy_miou(pred, gt, num_classes)
    assert summary["miou"] == pytest.approx(expected, abs=1e-6)
    assert summary["per_class_iou"][20] is None          # absent from both: not in the mean
    assert summary["per_class_iou"][16] == 0.0          # predicted but absent: IoU 0, counted
    assert summary["pixel_acc"] == pytest.approx(100 * np.trace(cm) / cm.sum(), abs=1e-6)


def test_poly_learning_rate_follows_the_v2_policy():
    assert poly_lr_factor(0, 100) == 1.0
    assert poly_lr_factor(50, 100) == pytest.approx(0.5 ** 0.9)
    assert poly_lr_factor(100, 100) == 0.0
    assert poly_lr_factor(150, 100) == 0.0


def test_msc_loss_sums_the_fused_and_every_scale_output():
    from bench.models import build_model
    from bench.module import SegmentationModule

    torch.manual_seed(0)
    model = build_model("v2", head="largefov", msc=True, width=0.125).train()
    module = SegmentationModule(model, num_classes=21, max_steps=10, lr=0.01)
    images, masks = torch.randn(2, 3, 49, 49), torch.randint(0, 21, (2, 49, 49))
    out = model(images)
    ce = lambda x: torch.nn.functional.cross_entropy(x, masks, ignore_index=255)
    assert len(out["scales"]) == 3
    assert torch.allclose(module.loss(out, masks), ce(out["out"]) + sum(ce(s) for s in out["scales"]))


def test_deterministic_mode_is_restored_after_a_fast_cpu_confusion_update():
    from bench.evaluation.metrics import cpu_bincount_allowed

    metric = confusion_matrix_metric(21)
    pred, gt = torch.randint(0, 21, (2, 16, 16)), torch.randint(0, 21, (2, 16, 16))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with cpu_bincount_allowed(pred.device):
            assert not torch.are_deterministic_algorithms_enabled()
            metric.update(pred, gt)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    expected, _ = numpy_miou(pred.numpy(), gt.numpy(), 21)
    assert summarize_confusion(metric.compute())["miou"] == pytest.approx(expected, abs=1e-6)
