"""`bench data check SPEC`: is a VOC or Cityscapes tree complete, before hours of training find out?

Unlike indexing (voc.index, cityscapes.index: the first problem stops a run), a check lists every
problem, one line each: a missing or empty split list, a count other than the expected one, a
missing or unreadable image or label file, a label PNG of the wrong mode, with values outside the
valid set, or of another size than its image. Images are checked from their headers (decoding
17k JPEGs would take minutes and the loaders decode them anyway); label PNGs are decoded, since
their values are the point, in a few threads (PIL decodes without the GIL).

Expected counts: VOC 2012 has 1,464 train and 1,449 val images, and DeepLab's trainaug 10,582 (VOC
train + SBD train and val, less VOC val; v2 Sec. 4.1); Cityscapes 2,975 train and 500 val. A VOC
tree that `bench data prepare` built from other archives (a mirror's subset, the tests' small
ones) carries the counts it produced in VOC2012/bench-prepare.json, and is held to those instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.data import cityscapes, voc
from bench.data.files import INVALID, Sample
from bench.data.spec import parse_data_spec
from bench.errors import BenchError

MANIFEST = "bench-prepare.json"   # in VOC2012/, written by `bench data prepare voc` (prepare.py)
OFFICIAL_VOC = {"train": 1464, "val": 1449, "trainaug": 10582}
OFFICIAL_CITYSCAPES = {"train": 2975, "val": 500}
OFFICIAL = "the official counts"


@dataclass(frozen=True)
class CheckReport:
    problems: tuple[str, ...]   # one line each, naming the file or list
    summary: str                # what was found, when there are no problems

    @property
    def ok(self) -> bool:
        return not self.problems


def check(spec: str) -> CheckReport:
    """Check the tree of a data spec (voc:PATH or cityscapes:PATH)."""
    kind, path = parse_data_spec(spec)
    if kind == "voc":
        return check_voc(path)
    if kind == "cityscapes":
        return check_cityscapes(path)
    raise BenchError("the synthetic data set is generated, there is nothing to check; "
                     "valid: voc:PATH, cityscapes:PATH")


def read_manifest(voc2012: Path) -> dict | None:
    path = voc2012 / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        _ = {split: int(manifest["counts"][split]) for split in OFFICIAL_VOC}, bool(manifest["official"])
    except (ValueError, KeyError, TypeError) as err:
        raise BenchError(f"{path}: unreadable ({err}); delete it to check against the official counts") from err
    return manifest


def expected_voc_counts(voc2012: Path) -> tuple[dict[str, int], str]:
    """The counts a tree must have, and why (for the messages)."""
    manifest = read_manifest(voc2012)
    if manifest is None:
        return OFFICIAL_VOC, f"{OFFICIAL}; no {MANIFEST}, so taken for the official archives"
    if manifest["official"]:
        return OFFICIAL_VOC, OFFICIAL
    counts = {split: int(manifest["counts"][split]) for split in OFFICIAL_VOC}
    return counts, f"the counts in {MANIFEST}: prepared from archives other than the official ones"


def check_voc(path: str | Path) -> CheckReport:
    """Lists, counts and files of a VOC tree; a path that is no VOC tree at all raises BenchError."""
    root = voc.find_root(str(path))
    expected, basis = expected_voc_counts(root)
    lists = root / "ImageSets" / "Segmentation"
    problems: list[str] = []
    ids: dict[str, list[str]] = {}
    list_of = {"train": lists / "train.txt", "val": lists / "val.txt",
               "trainaug": next((lists / n for n in voc.AUG_LISTS if (lists / n).is_file()), lists / voc.AUG_LISTS[0])}
    for split, list_path in list_of.items():
        try:
            ids[split] = voc.read_ids(list_path)
        except BenchError as err:
            problems.append(str(err))
    if "trainaug" in ids and "val" in ids:  # what training reads (voc.index leaves val out)
        held_out = set(ids["val"])
        ids["trainaug"] = [i for i in ids["trainaug"] if i not in held_out]
    for split, found in ids.items():
        if len(found) != expected[split]:
            problems.append(f"{list_of[split]}: {len(found):,} {split} IDs, expected {expected[split]:,} ({basis})")
    samples: list[Sample] = []
    for split, masks in (("train", "SegmentationClass"), ("val", "SegmentationClass"), ("trainaug", voc.AUG_DIR)):
        if not (root / masks).is_dir():  # one line for the folder, not one per file
            problems.append(f"{root / masks}: missing folder of the {split} labels")
        else:
            samples += [voc.sample(root, i, masks) for i in ids.get(split, ())]
    problems += check_samples(samples, voc.LABEL_TABLE, voc.VALID_RAW)
    counts = ", ".join(f"{len(ids.get(s, ())):,} {s}" for s in ("train", "val", "trainaug"))
    return CheckReport(tuple(problems), f"{counts} images ({basis}); every image and label file is there "
                                        f"and readable, labels {voc.VALID_RAW}")


def check_cityscapes(path: str | Path) -> CheckReport:
    """Counts and files of a Cityscapes tree; a path that is no folder raises BenchError."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise BenchError(f"cityscapes:{path}: no such folder; expected {cityscapes.LAYOUT}")
    problems: list[str] = []
    samples: list[Sample] = []
    found = {}
    for split, expected in OFFICIAL_CITYSCAPES.items():
        folder = root / "leftImg8bit" / split
        images = sorted(folder.glob("*/*_leftImg8bit.png"))
        found[split] = len(images)
        if not folder.is_dir():
            problems.append(f"{folder}: missing folder; expected {cityscapes.LAYOUT}")
            continue
        if len(images) != expected:
            problems.append(f"{folder}: {len(images):,} images, expected {expected:,} ({OFFICIAL})")
        labels = root / "gtFine" / split
        if not labels.is_dir():
            problems.append(f"{labels}: missing folder of the {split} labels")
            continue
        samples += [Sample(image, cityscapes.label_path(root, split, image)) for image in images]
    problems += check_samples(samples, cityscapes.LABEL_TABLE, cityscapes.VALID_RAW)
    return CheckReport(tuple(problems), f"{found['train']:,} train, {found['val']:,} val images ({OFFICIAL}); "
                                        f"every image and label file is there and readable, "
                                        f"labels {cityscapes.VALID_RAW}")


def check_samples(samples: Sequence[Sample], table: np.ndarray, valid_raw: str) -> list[str]:
    """The problems of every (image, label) pair, in order; a problem met twice (an image of both
    train and trainaug) is one line."""
    unique = list(dict.fromkeys(samples))
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, tqdm(total=len(unique), desc="checking", unit="file",
                                                   disable=None, leave=False) as bar:
        problems = []
        for found in pool.map(lambda s: check_sample(s, table, valid_raw), unique):
            problems += found
            bar.update()
    return list(dict.fromkeys(problems))


def check_sample(sample: Sample, table: np.ndarray, valid_raw: str) -> list[str]:
    image_size, problems = _image_size(sample.image)
    if not sample.mask.is_file():
        return problems + [f"{sample.mask}: missing label file of image {sample.image.stem}"]
    try:
        with Image.open(sample.mask) as mask:
            if mask.mode not in ("P", "L"):
                return problems + [f"{sample.mask}: label PNG of mode {mask.mode}; expected a palette (P) or "
                                   "8-bit (L) PNG"]
            counts, mask_size = mask.histogram(), mask.size  # decodes every pixel: a cut file fails here
    except (OSError, ValueError) as err:
        return problems + [f"{sample.mask}: unreadable label file ({err})"]
    bad = [value for value, n in enumerate(counts) if n and table[value] == INVALID]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        problems.append(f"{sample.mask}: label values {shown} are not labels; valid: {valid_raw}")
    if image_size is not None and mask_size != image_size:
        problems.append(f"{sample.mask}: {mask_size[0]}x{mask_size[1]} but its image {sample.image.name} is "
                        f"{image_size[0]}x{image_size[1]} (width x height)")
    return problems


def _image_size(path: Path) -> tuple[tuple[int, int] | None, list[str]]:
    if not path.is_file():
        return None, [f"{path}: missing image file"]
    try:
        with Image.open(path) as image:  # the header only
            return image.size, []
    except (OSError, ValueError) as err:
        return None, [f"{path}: unreadable image ({err})"]
