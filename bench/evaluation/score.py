"""Score label PNGs from any framework against ground-truth label PNGs, with our metric code.

Files pair up by stem (``2007_000033.png`` with ``2007_000033.png``); palette PNGs (VOC's
SegmentationClass) are read as their indices, grey PNGs as their values. 255 in the ground truth
is ignored; a predicted value outside 0..N-1 is an error (one line naming the file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.errors import BenchError
from bench.evaluation.metrics import confusion_matrix_metric, summarize_confusion


def read_label_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "I", "I;16"):
                raise BenchError(f"{path}: a label PNG must be palette or grey, not {image.mode}")
            return np.array(image).astype(np.int64)
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: not a readable PNG ({err})") from err


def score_dirs(pred_dir: Path, gt_dir: Path, num_classes: int, ignore_index: int = 255) -> dict:
    for name, folder in (("prediction", pred_dir), ("ground-truth", gt_dir)):
        if not Path(folder).is_dir():
            raise BenchError(f"{name} folder {folder} does not exist")
    if num_classes < 1:
        raise BenchError(f"--num-classes must be at least 1, got {num_classes}")
    gts = {p.stem: p for p in sorted(Path(gt_dir).glob("*.png"))}
    if not gts:
        raise BenchError(f"no .png label files in {gt_dir}")
    preds = {p.stem: p for p in sorted(Path(pred_dir).glob("*.png"))}
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise BenchError(f"{len(missing)} ground-truth file(s) have no prediction in {pred_dir}, "
                         f"e.g. {missing[0]}.png")
    metric = confusion_matrix_metric(num_classes, ignore_index)
    for stem, gt_path in gts.items():
        gt, pred = read_label_png(gt_path), read_label_png(preds[stem])
        if gt.shape != pred.shape:
            raise BenchError(f"{preds[stem]}: size {pred.shape[::-1]} differs from {gt_path} {gt.shape[::-1]}")
        bad = np.setdiff1d(np.unique(gt), [*range(num_classes), ignore_index])
        if bad.size:
            raise BenchError(f"{gt_path}: label {bad[0]} is outside 0..{num_classes - 1} and {ignore_index}")
        bad = np.setdiff1d(np.unique(pred), range(num_classes))
        if bad.size:
            raise BenchError(f"{preds[stem]}: predicted label {bad[0]} is outside 0..{num_classes - 1}")
        metric.update(torch.from_numpy(pred), torch.from_numpy(gt))
    summary = summarize_confusion(metric.compute())
    summary["images"] = len(gts)
    return summary
