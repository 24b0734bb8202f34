"""PASCAL VOC 2012 segmentation, with DeepLab's SBD "trainaug" training set when it is there.

`voc:PATH` takes the VOCdevkit folder or the VOC2012 folder inside it, in the standard layout:
JPEGImages/ID.jpg, SegmentationClass/ID.png (palette PNGs: the palette index is the label, the
colours are only for viewing), ImageSets/Segmentation/{train,val}.txt (one ID a line).

Why trainaug: every DeepLab paper trains on the 10,582 "trainaug" images, VOC 2012 train plus
the SBD annotations (Hariharan et al. 2011) less VOC 2012 val (v1 Sec. 5, v2 Sec. 4.1, v3 Sec.
4.1). When VOC2012/SegmentationClassAug/ (plain 8-bit label PNGs, as DeepLab's data scripts make
them) is present, train is the IDs of ImageSets/Segmentation/train_aug.txt or trainaug.txt
(lines may be IDs or "/JPEGImages/ID.jpg /SegmentationClassAug/ID.png" pairs), or, without a
list, every mask in that folder - less the val IDs either way. Without it, train is train.txt
(1,464 images). Val is always the official 1,449 val images, as in the papers.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.files import FileSplits, Sample, check_files, label_table
from bench.errors import BenchError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
AUG_LISTS = ("train_aug.txt", "trainaug.txt")
AUG_DIR = "SegmentationClassAug"
LABEL_TABLE = label_table({c: c for c in range(len(VOC_CLASSES))})
VALID_RAW = "0..20 and 255 (void)"
LAYOUT = "VOCdevkit or VOCdevkit/VOC2012 with JPEGImages, SegmentationClass, ImageSets/Segmentation"


def find_root(path: str) -> Path:
    """The VOC2012 folder: PATH itself or PATH/VOC2012, whichever holds JPEGImages."""
    given = Path(path).expanduser()
    if not given.is_dir():
        raise BenchError(f"voc:{path}: no such folder; expected {LAYOUT}")
    for root in (given, given / "VOC2012"):
        if (root / "JPEGImages").is_dir():
            return root
    raise BenchError(f"voc:{path}: no JPEGImages folder in it or in its VOC2012; expected {LAYOUT}")


def read_ids(path: Path) -> list[str]:
    """The image IDs of a split list, in order, without repeats."""
    if not path.is_file():
        raise BenchError(f"{path}: missing split file; expected one image ID a line")
    ids = [Path(line.split()[0]).stem for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise BenchError(f"{path}: empty split file; expected one image ID a line")
    return list(dict.fromkeys(ids))


def sample(root: Path, image_id: str, masks: str = "SegmentationClass") -> Sample:
    """The image and label file of an ID: JPEGImages/ID.jpg and MASKS/ID.png in the VOC2012 folder."""
    return Sample(root / "JPEGImages" / f"{image_id}.jpg", root / masks / f"{image_id}.png")


def index(path: str) -> FileSplits:
    """Train (trainaug when present) and val samples; every listed file checked to exist."""
    root = find_root(path)
    lists = root / "ImageSets" / "Segmentation"
    val_ids = sorted(read_ids(lists / "val.txt"))
    aug_dir = root / AUG_DIR
    aug_list = next((lists / name for name in AUG_LISTS if (lists / name).is_file()), None)
    if aug_dir.is_dir():
        name, masks = "VOC 2012 trainaug", AUG_DIR
        train_ids = read_ids(aug_list) if aug_list else sorted(p.stem for p in aug_dir.glob("*.png"))
    elif aug_list is not None:
        raise BenchError(f"{aug_list}: lists SBD trainaug but {aug_dir} is missing; "
                         "add the SBD label PNGs there or remove the list to train on train.txt")
    else:
        name, masks = "VOC 2012 train", "SegmentationClass"
        train_ids = read_ids(lists / "train.txt")
    held_out = set(val_ids)
    train = tuple(sample(root, i, masks) for i in train_ids if i not in held_out)
    val = tuple(sample(root, i) for i in val_ids)
    if not train:
        raise BenchError(f"voc:{path}: no training images left once the val images are taken out")
    check_files(train, name)
    check_files(val, "VOC 2012 val")
    return FileSplits(name=name, train=train, val=val, label_table=LABEL_TABLE,
                      class_names=VOC_CLASSES, valid_raw=VALID_RAW)
