"""Cross-validating the dense CRF's bilateral kernel, as the papers do (v1 Sec. 4.1, v2 Sec. 4.1).

The papers fix w2 = 3 and sigma_gamma = 3 and search w1, sigma_alpha and sigma_beta on 100
held-out images (v2: w1 in [3:6], sigma_alpha in [30:10:100], sigma_beta in [3:6]); v1 calls its
search "coarse-to-fine". We search the same grid coordinate by coordinate - each parameter over
its values with the others fixed at their best so far (one round by default) - which costs
4 + 8 + 4 evaluations instead of the 128 of the full grid. sigma_alpha is a distance in pixels, so its
grid scales with the image size (VOC images are about 500 px on the long side).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from bench.evaluation.crf import CRFParams, dense_crf_batch
from bench.evaluation.evaluate import predict_chunks
from bench.evaluation.metrics import confusion_from_labels, summarize_confusion

VOC_SIZE = 500  # px, the long side of a PASCAL VOC image, which the papers' grid refers to


def paper_grid(image_size: int) -> dict[str, tuple[float, ...]]:
    scale = image_size / VOC_SIZE
    return {
        "w1": (3.0, 4.0, 5.0, 6.0),
        "sigma_alpha": tuple(round(a * scale, 1) for a in range(30, 101, 10)),
        "sigma_beta": (3.0, 4.0, 5.0, 6.0),
    }


def search_crf(model: nn.Module, loader: DataLoader, *, num_classes: int, image_size: int,
               device: torch.device, start: CRFParams = CRFParams(), rounds: int = 1,
               workers: int | None = None, ignore_index: int = 255) -> tuple[CRFParams, list[dict]]:
    """Best CRFParams on the loader's images and every (params, mIoU) tried, best last."""
    chunks = list(predict_chunks(model, loader, device))
    images = [img for c in chunks for img in c[0]]
    probs = [p for c in chunks for p in c[1]]
    masks = np.concatenate([c[2] for c in chunks])

    tried: dict[CRFParams, float] = {}

    def score(params: CRFParams) -> float:
        if params not in tried:
            labels = np.stack(dense_crf_batch(images, probs, params, workers))
            tried[params] = summarize_confusion(confusion_from_labels(labels, masks, num_classes, ignore_index))["miou"]
        return tried[params]

    grid = paper_grid(image_size)
    bar = tqdm(total=rounds * sum(len(v) for v in grid.values()), desc="CRF search", unit="setting",
               leave=False, dynamic_ncols=True)
    best = start
    for _ in range(rounds):
        for name, values in grid.items():
            candidates = [replace(best, **{name: v}) for v in values]
            for params in candidates:
                score(params)
                bar.update()
                bar.set_postfix_str(f"best mIoU {max(tried.values()):.2f}")
            best = max([best, *candidates], key=score)
    bar.close()
    history = [{**{k: getattr(p, k) for k in p.__dataclass_fields__}, "miou": m}
               for p, m in sorted(tried.items(), key=lambda item: item[1])]
    return best, history
