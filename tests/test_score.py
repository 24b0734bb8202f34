"""`bench score`: label PNGs from any framework scored with our metric code."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from test_metrics import numpy_miou


def write_png(path, labels, palette=False):
    image = Image.fromarray(labels.astype(np.uint8), mode="L")
    if palette:
        image = image.convert("P")
        image.putpalette([v for c in range(256) for v in (c, 255 - c, (7 * c) % 256)])
    image.save(path)


def score(*args):
    return subprocess.run([sys.executable, "-m", "bench", "score", *map(str, args)], capture_output=True, text=True)


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(3)
    gts, preds = [], []
    for i, size in enumerate([(37, 50), (41, 29), (64, 64)]):
        gt = rng.integers(0, 12, size=size)
        gt[rng.random(size) < 0.15] = 255
        pred = rng.integers(0, 14, size=size)
        (tmp_path / "gt").mkdir(exist_ok=True), (tmp_path / "pred").mkdir(exist_ok=True)
        write_png(tmp_path / "gt" / f"img{i}.png", gt, palette=True)   # VOC-style palette masks
        write_png(tmp_path / "pred" / f"img{i}.png", pred)
        gts.append(gt.ravel()), preds.append(pred.ravel())
    return tmp_path, np.concatenate(preds), np.concatenate(gts)


def test_score_equals_the_numpy_confusion_matrix_miou(folders):
    root, pred, gt = folders
    proc = score(root / "pred", root / "gt", "--num-classes", 21)
    assert proc.returncode == 0, proc.stderr
    expected, _ = numpy_miou(pred, gt, 21)
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"mIoU: {expected:.4f}"
    assert "class  20  IoU     - (absent)" in proc.stdout


@pytest.mark.parametrize("breakage,message", [
    ("missing_pred", "have no prediction"),
    ("bad_label", "label 30 is outside 0..20 and 255"),
    ("size", "differs from"),
    ("no_dir", "does not exist"),
])
def test_bad_label_folders_are_one_line_and_exit_code_2(folders, breakage, message):
    root, _, _ = folders
    if breakage == "missing_pred":
        (root / "pred" / "img1.png").unlink()
    elif breakage == "bad_label":
        write_png(root / "gt" / "img0.png", np.full((37, 50), 30))
    elif breakage == "size":
        write_png(root / "pred" / "img2.png", np.zeros((10, 10)))
    gt_dir = root / "nowhere" if breakage == "no_dir" else root / "gt"
    proc = score(root / "pred", gt_dir, "--num-classes", 21)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr
