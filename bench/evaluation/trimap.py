"""Trimap evaluation (v1 Sec. 5, Fig. 5; v2 Fig. 14): mIoU restricted to a band around boundaries.

A pixel is in the band of width w when it lies within w pixels (Chebyshev distance) of a
ground-truth boundary, i.e. of a pixel whose 4-neighbourhood holds another label (the VOC void
outline, label 255, counts as another label, so the band surrounds it as in the papers). The
band is the boundary mask dilated w times by a 3x3 max-pool. Ignore pixels stay out of the score.
"""

from __future__ import annotations

import torch

from bench.evaluation.metrics import confusion_from_labels, summarize_confusion

TRIMAP_WIDTHS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40)  # px, the papers' x-axis spans 0-40


def boundary_mask(masks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool: pixels with a differently labelled 4-neighbour."""
    m = masks
    edge = torch.zeros_like(m, dtype=torch.bool)
    edge[:, 1:, :] |= m[:, 1:, :] != m[:, :-1, :]
    edge[:, :-1, :] |= m[:, :-1, :] != m[:, 1:, :]
    edge[:, :, 1:] |= m[:, :, 1:] != m[:, :, :-1]
    edge[:, :, :-1] |= m[:, :, :-1] != m[:, :, 1:]
    return edge


def _dilate3x3(mask: torch.Tensor) -> torch.Tensor:
    """One 3x3 binary dilation of (B, H, W) bool, as a row pass then a column pass."""
    rows = mask.clone()
    rows[:, 1:, :] |= mask[:, :-1, :]
    rows[:, :-1, :] |= mask[:, 1:, :]
    grown = rows.clone()
    grown[:, :, 1:] |= rows[:, :, :-1]
    grown[:, :, :-1] |= rows[:, :, 1:]
    return grown


def boundary_distance(masks: torch.Tensor, max_width: int) -> torch.Tensor:
    """(B, H, W) Chebyshev distance to the nearest boundary pixel, capped at max_width + 1.

    Grown one 3x3 dilation at a time, so all band widths cost max_width cheap dilations; one
    (2w + 1)^2 max-pool per width would be ~w^2 times the work.
    """
    reached = boundary_mask(masks)
    distance = torch.full(masks.shape, max_width + 1, dtype=torch.int16)
    distance[reached] = 0
    for d in range(1, max_width + 1):
        grown = _dilate3x3(reached)
        distance[grown & ~reached] = d
        if bool(grown.all()):
            break
        reached = grown
    return distance


def band_mask(masks: torch.Tensor, width: int) -> torch.Tensor:
    return boundary_distance(masks, width) <= width


class TrimapMetric:
    """Confusion matrices of the pixels within each band width, accumulated over images."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = TRIMAP_WIDTHS, ignore_index: int = 255):
        self.num_classes, self.widths, self.ignore_index = num_classes, tuple(widths), ignore_index
        self.confusion = {w: torch.zeros(num_classes, num_classes, dtype=torch.long) for w in self.widths}

    def update(self, preds: torch.Tensor, masks: torch.Tensor) -> None:
        masks = masks.long().cpu()
        distance = boundary_distance(masks, max(self.widths)).numpy()
        # numpy's boolean indexing and bincount are much faster than torch's on the CPU here
        gt, pred = masks.numpy(), preds.long().cpu().numpy()
        valid = gt != self.ignore_index
        for w in self.widths:
            keep = valid & (distance <= w)
            self.confusion[w] += confusion_from_labels(pred[keep], gt[keep], self.num_classes, self.ignore_index)

    def compute(self) -> dict[int, float]:
        """Band width (px) -> mIoU (percent) within that band."""
        return {w: summarize_confusion(cm)["miou"] for w, cm in self.confusion.items()}
