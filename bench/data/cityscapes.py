"""Cityscapes fine annotations, mapped to the 19 classes of the official benchmark.

`cityscapes:PATH` is the folder holding leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and
gtFine/{train,val}/CITY/*_gtFine_labelIds.png. The labelIds PNGs hold the 34 raw label IDs
(0..33); the benchmark scores 19 of them ("trainId", cityscapesScripts' labels.py), everything
else is void (255), as in v2 Sec. 4.4 and v3+ Sec. 4.3. Train is the 2,975 train images, val the
500 val images (the test split has no public labels).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.files import FileSplits, Sample, check_files, label_table
from bench.errors import BenchError

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
# labelId -> trainId of the 19 evaluated classes (cityscapesScripts helpers/labels.py).
ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                  24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
NUM_LABEL_IDS = 34  # 0 unlabeled .. 33 bicycle; license plate (-1) is not written to the PNGs
LABEL_TABLE = label_table({i: ID_TO_TRAIN_ID.get(i, 255) for i in range(NUM_LABEL_IDS)})
VALID_RAW = "label IDs 0..33 and 255"
LAYOUT = ("leftImg8bit/{train,val}/CITY/*_leftImg8bit.png and "
          "gtFine/{train,val}/CITY/*_gtFine_labelIds.png")


def label_path(root: Path, split: str, image: Path) -> Path:
    """gtFine/SPLIT/CITY/STEM_gtFine_labelIds.png of leftImg8bit/SPLIT/CITY/STEM_leftImg8bit.png."""
    return root / "gtFine" / split / image.parent.name / image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")


def _split(root: Path, split: str) -> tuple[Sample, ...]:
    folder = root / "leftImg8bit" / split
    if not folder.is_dir():
        raise BenchError(f"{folder}: missing split folder; expected {LAYOUT}")
    images = sorted(folder.glob("*/*_leftImg8bit.png"))
    if not images:
        raise BenchError(f"{folder}: no CITY/*_leftImg8bit.png images; expected {LAYOUT}")
    return tuple(Sample(img, label_path(root, split, img)) for img in images)


def index(path: str) -> FileSplits:
    """Train and val samples, sorted by city and name; every mask checked to exist."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise BenchError(f"cityscapes:{path}: no such folder; expected {LAYOUT}")
    for sub in ("leftImg8bit", "gtFine"):
        if not (root / sub).is_dir():
            raise BenchError(f"cityscapes:{path}: no {sub} folder; expected {LAYOUT}")
    train, val = _split(root, "train"), _split(root, "val")
    check_files(train, "Cityscapes train")
    check_files(val, "Cityscapes val")
    return FileSplits(name="Cityscapes fine", train=train, val=val, label_table=LABEL_TABLE,
                      class_names=CITYSCAPES_CLASSES, valid_raw=VALID_RAW)
