"""mIoU the way the VOC devkit computes it, from one confusion matrix accumulated over the split.

torchmetrics' macro Jaccard gives a class absent from both prediction and ground truth an IoU of
0 (torchmetrics issues 1693, 2866), which lowers mIoU against the devkit. We accumulate
``MulticlassConfusionMatrix`` (it syncs across DDP ranks, ignores label 255) and take
IoU = diag / (row + col - diag), averaged over the classes whose union is non-empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix


def confusion_matrix_metric(num_classes: int, ignore_index: int = 255) -> MulticlassConfusionMatrix:
    """Rows are ground truth, columns predictions (torchmetrics' convention)."""
    return MulticlassConfusionMatrix(num_classes=num_classes, ignore_index=ignore_index, normalize=None)


@contextmanager
def cpu_bincount_allowed(device: torch.device) -> Iterator[None]:
    """Let torchmetrics use torch.bincount on the CPU under deterministic mode.

    With deterministic algorithms on, torchmetrics replaces bincount by a loop over all
    classes^2 cells - measured 0.29 s instead of 0.003 s per 8 x 128 x 128 batch here. On the CPU
    torch.bincount is deterministic anyway, so the flag is lifted there for the update only.
    """
    lift = device.type == "cpu" and torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if lift:
        torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        if lift:
            torch.use_deterministic_algorithms(True, warn_only=warn_only)


def summarize_confusion(confusion: torch.Tensor) -> dict:
    """mIoU, pixel accuracy, mean accuracy (all in percent) and per-class IoU from a confusion matrix.

    Classes with an empty union (absent from ground truth and prediction) get IoU None and are
    left out of the mean; classes absent from the ground truth are left out of the mean accuracy.
    """
    cm = confusion.double()
    tp = cm.diag()
    gt = cm.sum(dim=1)
    pred = cm.sum(dim=0)
    union = gt + pred - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    acc = torch.where(gt > 0, tp / gt.clamp(min=1), torch.full_like(tp, float("nan")))
    total = cm.sum()
    return {
        "miou": 100.0 * float(torch.nanmean(iou)) if (union > 0).any() else float("nan"),
        "pixel_acc": 100.0 * float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_acc": 100.0 * float(torch.nanmean(acc)) if (gt > 0).any() else float("nan"),
        "per_class_iou": [None if torch.isnan(v) else 100.0 * float(v) for v in iou],
    }


def confusion_from_labels(preds: np.ndarray, masks: np.ndarray, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """The same confusion matrix as confusion_matrix_metric, for label arrays outside a training
    loop (CRF outputs, trimap bands): rows ground truth, columns prediction, 255 left out."""
    keep = masks != ignore_index
    codes = masks[keep].astype(np.int64) * num_classes + preds[keep].astype(np.int64)
    return torch.from_numpy(np.bincount(codes, minlength=num_classes ** 2).reshape(num_classes, num_classes))
