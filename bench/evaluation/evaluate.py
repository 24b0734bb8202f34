"""Evaluation beyond the training loop: mIoU after dense CRF and the trimap curves.

The network's softmax for each validation image is computed in chunks (a paper-scale val split
would not fit in memory at once), the CRF runs on each chunk in a process pool, and confusion
matrices accumulate for the raw and the CRF predictions alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.data.transforms import denormalize
from bench.evaluation.crf import CRFParams, dense_crf_batch
from bench.evaluation.inference import Inference, predict_probs
from bench.evaluation.metrics import confusion_from_labels, summarize_confusion
from bench.evaluation.trimap import TrimapMetric

CHUNK = 32  # images whose probabilities are held at once


def predict_chunks(model: nn.Module, loader: DataLoader, device: torch.device,
                   inference: Inference = Inference()) -> Iterator[tuple]:
    """Yields (uint8 images (N,H,W,3), probabilities (N,C,H,W) float32, masks (N,H,W)) chunks."""
    model.eval()
    images, probs, masks = [], [], []
    with torch.inference_mode():
        for x, y in loader:
            p = predict_probs(model, x.to(device), inference).float().cpu().numpy()
            images.extend(denormalize(x)), probs.extend(p), masks.extend(y.numpy())
            if len(images) >= CHUNK:
                yield np.stack(images), np.stack(probs), np.stack(masks)
                images, probs, masks = [], [], []
    if images:
        yield np.stack(images), np.stack(probs), np.stack(masks)


def _curve(trimap: TrimapMetric) -> dict[str, list]:
    """{"width_px": [...], "miou": [...]}: lists keep the order through JSON."""
    curve = trimap.compute()
    return {"width_px": list(curve), "miou": list(curve.values())}


def evaluate_with_crf(model: nn.Module, loader: DataLoader, *, num_classes: int, device: torch.device,
                      params: CRFParams = CRFParams(), workers: int | None = None,
                      ignore_index: int = 255, inference: Inference = Inference()) -> dict:
    """mIoU before and after CRF, trimap curves of both, and the CRF's seconds per image."""
    raw_cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
    crf_cm = torch.zeros_like(raw_cm)
    raw_trimap, crf_trimap = TrimapMetric(num_classes), TrimapMetric(num_classes)
    crf_seconds, n_images = 0.0, 0
    for images, probs, masks in predict_chunks(model, loader, device, inference):
        raw = probs.argmax(axis=1)
        start = time.perf_counter()
        refined = np.stack(dense_crf_batch(list(images), list(probs), params, workers))
        crf_seconds += time.perf_counter() - start
        n_images += len(images)
        raw_cm += confusion_from_labels(raw, masks, num_classes, ignore_index)
        crf_cm += confusion_from_labels(refined, masks, num_classes, ignore_index)
        raw_trimap.update(torch.from_numpy(raw), torch.from_numpy(masks))
        crf_trimap.update(torch.from_numpy(refined), torch.from_numpy(masks))
    raw_summary, crf_summary = summarize_confusion(raw_cm), summarize_confusion(crf_cm)
    return {
        "miou": raw_summary["miou"],
        "miou_crf": crf_summary["miou"],
        "per_class_iou_crf": crf_summary["per_class_iou"],
        "pixel_acc_crf": crf_summary["pixel_acc"],
        "trimap": _curve(raw_trimap),
        "trimap_crf": _curve(crf_trimap),
        "crf_seconds_per_image": crf_seconds / max(1, n_images),
        "crf_images": n_images,
        "crf_params": {k: getattr(params, k) for k in params.__dataclass_fields__},
    }
