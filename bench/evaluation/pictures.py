"""Pictures a person would rather look at: image | ground truth | prediction | prediction + CRF.

Labels are drawn with the PASCAL VOC colour map (the devkit's bit-interleaving palette), void
(255) in its cream colour, so the grids look like the papers' qualitative figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench.evaluation.crf import CRFParams, dense_crf_batch
from bench.evaluation.inference import Inference, predict_probs


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8: the VOC devkit's colour map (labelcolormap.m)."""
    palette = np.zeros((n, 3), np.uint8)
    for label in range(n):
        c, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[label] = (r, g, b)
    return palette


PALETTE = voc_palette()


def colorize(labels: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(labels, np.int64).clip(0, 255)]


def prediction_grid(images: np.ndarray, truths: np.ndarray, preds: np.ndarray,
                    preds_crf: np.ndarray | None = None, gap: int = 2) -> np.ndarray:
    """One row per image: image | ground truth | prediction [| prediction + CRF], uint8 RGB."""
    rows = []
    for i in range(len(images)):
        panels = [images[i], colorize(truths[i]), colorize(preds[i])]
        if preds_crf is not None:
            panels.append(colorize(preds_crf[i]))
        height = panels[0].shape[0]
        spacer = np.full((height, gap, 3), 255, np.uint8)
        row = np.concatenate([p for panel in panels for p in (panel, spacer)][:-1], axis=1)
        rows.append(row)
        rows.append(np.full((gap, row.shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def predict_examples(model: nn.Module, images: torch.Tensor, uint8_images: np.ndarray,
                     crf_params: CRFParams | None, device: torch.device,
                     inference: Inference = Inference()) -> tuple[np.ndarray, np.ndarray | None]:
    """Argmax predictions of a few normalised images, and their CRF refinement when asked."""
    model.eval()
    with torch.inference_mode():
        probs = predict_probs(model, images.to(device), inference).float().cpu().numpy()
    preds = probs.argmax(axis=1)
    if crf_params is None:
        return preds, None
    return preds, np.stack(dense_crf_batch(list(uint8_images), list(probs), crf_params, workers=1))


def save_png(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
