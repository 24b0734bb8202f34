"""Real data sets: PASCAL VOC 2012 (+ SBD trainaug) and Cityscapes, from small trees on disk.

The trees mimic the official layouts: VOC's palette PNGs (the label is the palette index, not the
colour) with 255 outlines, SBD's plain 8-bit masks with a train_aug.txt of path pairs, and
Cityscapes' labelIds PNGs with ids the benchmark leaves out.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.datamodule import SegmentationDataModule
from bench.data.spec import num_classes_of
from bench.data import cityscapes, voc
from bench.data.datamodule import holdout_indices
from bench.data.files import LabelledFiles
from bench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, MEAN_RGB, apply, train_transform
from bench.errors import BenchError
from bench.evaluation.pictures import voc_palette

ENV = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
TRAIN_IDS = [f"2008_{i:06d}" for i in range(10)]
VAL_IDS = [f"2007_{i:06d}" for i in (5, 1, 3, 2)]  # unsorted on purpose
SIZES = [(64, 80), (56, 72), (80, 64), (64, 64), (72, 88)]  # (height, width)
COLOURS = np.array([[20, 20, 20], [230, 30, 30], [30, 220, 40], [40, 40, 230], [240, 240, 30],
                    [220, 40, 220], [30, 230, 230]], np.uint8)


def _scene(rng, height, width, labels):
    """An image whose colour edges are the label edges, and its labels (one class per box)."""
    mask = np.zeros((height, width), np.uint8)
    colour_of = {0: COLOURS[0]}
    for k, label in enumerate(labels, start=1):
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        y1, x1 = y0 + rng.integers(12, height // 2), x0 + rng.integers(12, width // 2)
        mask[y0:y1, x0:x1] = label
        colour_of[int(label)] = COLOURS[k % len(COLOURS)]
    image = np.stack([colour_of[int(v)] for v in mask.ravel()]).reshape(height, width, 3)
    return image, mask


def _outline(mask):
    """VOC's void band: 255 on the pixels whose 4-neighbour has another label."""
    edge = np.zeros(mask.shape, bool)
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    out = mask.copy()
    out[edge] = 255
    return out


def _save_palette_png(labels, path):
    """A palette PNG as the VOC devkit writes them: pixel = label, palette = the VOC colours."""
    img = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    img.putpalette(voc_palette().ravel().tolist())
    img.save(path)


def make_voc(root: Path, seed: int = 0) -> Path:
    """VOCdevkit/VOC2012 with 10 train and 4 val images of several sizes; returns VOCdevkit."""
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for n, image_id in enumerate(TRAIN_IDS + VAL_IDS):
        height, width = SIZES[n % len(SIZES)]
        image, mask = _scene(rng, height, width, labels=(15, 1 + n % 20))  # 15 = person
        Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        _save_palette_png(_outline(mask), base / "SegmentationClass" / f"{image_id}.png")
    (base / "ImageSets/Segmentation/train.txt").write_text("\n".join(TRAIN_IDS) + "\n")
    (base / "ImageSets/Segmentation/val.txt").write_text("\n".join(VAL_IDS) + "\n")
    return root / "VOCdevkit"


def add_sbd(devkit: Path, extra: int = 3) -> list[str]:
    """SegmentationClassAug (plain 8-bit PNGs) for every image plus `extra` SBD-only images, and
    a train_aug.txt in the path-pair format that also lists the val images (to be left out)."""
    base = devkit / "VOC2012"
    aug = base / "SegmentationClassAug"
    aug.mkdir()
    extra_ids = [f"2011_{i:06d}" for i in range(extra)]
    rng = np.random.default_rng(1)
    for image_id in extra_ids:
        image, mask = _scene(rng, 60, 70, labels=(7,))
        Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        Image.fromarray(_outline(mask)).save(aug / f"{image_id}.png")
    for image_id in TRAIN_IDS + VAL_IDS:
        labels = np.asarray(Image.open(base / "SegmentationClass" / f"{image_id}.png"))
        Image.fromarray(labels).save(aug / f"{image_id}.png")  # mode L
    ids = TRAIN_IDS + VAL_IDS + extra_ids
    lines = [f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" for i in ids]
    (base / "ImageSets/Segmentation/train_aug.txt").write_text("\n".join(lines) + "\n")
    return extra_ids


CS_IDS = (0, 1, 4, 7, 8, 11, 21, 23, 26, 33)  # 0, 1, 4 are not benchmark classes


def make_cityscapes(root: Path) -> Path:
    """10 train images in two cities and 4 val images in two, labelIds PNGs of mixed ids."""
    rng = np.random.default_rng(2)
    for split, cities, per_city in (("train", ("aachen", "bochum"), 5), ("val", ("frankfurt", "lindau"), 2)):
        for city in cities:
            for k in range(per_city):
                stem = f"{city}_{k:06d}_000019"
                for folder in (root / "leftImg8bit" / split / city, root / "gtFine" / split / city):
                    folder.mkdir(parents=True, exist_ok=True)
                height, width = (48, 96) if k % 2 else (40, 80)
                ids = rng.choice(CS_IDS, size=(height // 8, width // 8))
                labels = np.kron(ids, np.ones((8, 8), np.int64)).astype(np.uint8)
                image = COLOURS[np.searchsorted(CS_IDS, labels) % len(COLOURS)]
                Image.fromarray(image).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
                Image.fromarray(labels).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
    return root


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="module")
def cityscapes_dir(tmp_path_factory):
    return make_cityscapes(tmp_path_factory.mktemp("cityscapes"))


def raw(files, split):
    """The Dataset with an identity transform: uint8 image and label map as read."""
    samples = getattr(files, split)
    return LabelledFiles(samples, files.label_table, files.valid_raw, lambda image, labels: (image, labels))


# ------------------------------------------------------------------------------- (a) loaders


def test_voc_takes_the_devkit_or_the_voc2012_folder(voc_dir):
    for path in (voc_dir, voc_dir / "VOC2012"):
        files = voc.index(str(path))
        assert files.name == "VOC 2012 train"
        assert [s.image.stem for s in files.train] == TRAIN_IDS
        assert [s.image.stem for s in files.val] == sorted(VAL_IDS)


def test_voc_masks_give_palette_indices_not_colours(voc_dir):
    files = voc.index(str(voc_dir))
    image, labels = raw(files, "train")[0]
    stored = Image.open(files.train[0].mask)
    assert stored.mode == "P"
    assert image.shape == (*labels.shape, 3) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 15, 255}  # person (15) is pink (192, 128, 128) in RGB
    assert np.array_equal(labels, np.asarray(stored))


def test_voc_trainaug_replaces_train_and_leaves_out_val(tmp_path):
    devkit = make_voc(tmp_path)
    extra = add_sbd(devkit)
    files = voc.index(str(devkit))
    assert files.name == "VOC 2012 trainaug"
    assert [s.image.stem for s in files.train] == TRAIN_IDS + extra
    assert all(s.mask.parent.name == "SegmentationClassAug" for s in files.train)
    assert all(s.mask.parent.name == "SegmentationClass" for s in files.val)
    _, labels = raw(files, "train")[len(TRAIN_IDS)]  # an SBD-only image, 8-bit PNG
    assert set(np.unique(labels)) == {0, 7, 255}
    # without a list file, every mask in SegmentationClassAug less val (DeepLab's 10,582)
    (devkit / "VOC2012/ImageSets/Segmentation/train_aug.txt").unlink()
    assert sorted(s.image.stem for s in voc.index(str(devkit)).train) == sorted(TRAIN_IDS + extra)


def test_cityscapes_maps_label_ids_to_the_19_train_ids(cityscapes_dir):
    files = cityscapes.index(str(cityscapes_dir))
    assert len(files.train) == 10 and len(files.val) == 4
    assert [s.image.parent.name for s in files.val] == ["frankfurt"] * 2 + ["lindau"] * 2
    expected = {0: 255, 1: 255, 4: 255, 7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 26: 13, 33: 18}
    for i in range(len(files.train)):
        _, labels = raw(files, "train")[i]
        ids = np.asarray(Image.open(files.train[i].mask))
        for label_id, train_id in expected.items():
            assert (labels[ids == label_id] == train_id).all()
    assert len(cityscapes.ID_TO_TRAIN_ID) == 19 == len(set(cityscapes.ID_TO_TRAIN_ID.values()))


def test_num_classes_come_from_the_spec_without_reading_data():
    assert num_classes_of("synthetic") == 21
    assert num_classes_of("voc:/nowhere") == 21
    assert num_classes_of("cityscapes:/nowhere") == 19


def test_training_batches_are_crops_and_val_batches_whole_padded_images(voc_dir):
    dm = SegmentationDataModule(f"voc:{voc_dir}", image_size=48, batch_size=4, num_workers=0)
    assert dm.num_classes == 21 and dm.class_names[15] == "person"
    torch.manual_seed(0)
    images, masks = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 48, 48) and images.dtype == torch.float32
    assert masks.shape == (4, 48, 48) and masks.dtype == torch.int64
    assert set(masks.unique().tolist()) <= {*range(21), 255}

    files = voc.index(str(voc_dir))
    sizes = [np.asarray(Image.open(s.mask)).shape for s in files.val]
    H, W = max(h for h, _ in sizes), max(w for _, w in sizes)
    assert dm.eval_size() == (H, W) and len(set(sizes)) > 1  # the largest height and width of val
    images, masks = next(iter(dm.val_dataloader()))
    assert images.shape == (4, 3, H, W) and masks.shape == (4, H, W)
    for i, sample in enumerate(files.val):  # the whole image, at the top left; the rest padding
        h, w = np.asarray(Image.open(sample.mask)).shape
        assert torch.equal(masks[i, :h, :w], torch.from_numpy(np.array(Image.open(sample.mask))).long())
        assert (masks[i, h:] == 255).all() and (masks[i, :, w:] == 255).all()
        pad = torch.cat([images[i, :, h:, :].reshape(3, -1), images[i, :, :, w:].reshape(3, -1)], 1)
        assert pad.numel() > 0 and pad.abs().amax() < 0.01  # the mean colour, ~0 once normalised


def test_holdout_is_spread_evenly_over_the_sorted_val_list(cityscapes_dir):
    assert holdout_indices(1449, 100)[:3] == [0, 14, 28] and len(holdout_indices(1449, 100)) == 100
    assert holdout_indices(500, 100)[-1] == 495 and holdout_indices(4, 100) == [0, 1, 2, 3]
    dm = SegmentationDataModule(f"cityscapes:{cityscapes_dir}", image_size=32, batch_size=4, num_workers=0)
    assert len(dm.dataset("holdout", 2)) == 2
    assert [s.image.parent.name for s in dm.dataset("holdout", 2).samples] == ["frankfurt", "lindau"]
    assert len(dm.dataset("val")) == 4  # val stays the full official list


# ------------------------------------------------------------------------- (c) alignment


def _grow(edges: np.ndarray) -> np.ndarray:
    """edges dilated by 1 px (3 x 3): "within 1 px" allows for interpolation at corners."""
    grown = edges.copy()
    grown[1:] |= edges[:-1]
    grown[:-1] |= edges[1:]
    wide = grown.copy()
    wide[:, 1:] |= grown[:, :-1]
    wide[:, :-1] |= grown[:, 1:]
    return wide


def _edges_agree(image: np.ndarray, mask: np.ndarray) -> bool:
    """Every place the mask changes label, the image changes colour (within 1 px), and every
    strong colour change in the image is a label change (within 1 px), along rows and columns."""
    img = image.astype(np.int32)
    for axis in (0, 1):
        changes = np.abs(np.diff(img, axis=axis)).max(axis=2)
        mask_edge = np.diff(mask.astype(np.int32), axis=axis) != 0
        image_edge = changes > 60  # any two colours differ by >= 190 in some channel
        if (mask_edge & ~_grow(changes > 20)).any() or (image_edge & ~_grow(mask_edge)).any():
            return False
    return True


def _denormalise(x: torch.Tensor) -> np.ndarray:
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def test_scale_crop_flip_keep_mask_edges_on_image_edges():
    rng = np.random.default_rng(3)
    image, mask = _scene(rng, 90, 120, labels=(3, 9, 12))
    mask[mask == 0] = 5  # no void, so every label edge is a colour edge
    image[mask == 5] = COLOURS[0]
    assert _edges_agree(image, mask)
    transform = train_transform(64)
    for seed in range(24):
        torch.manual_seed(seed)
        x, y = apply(transform, image, mask)
        assert x.shape == (3, 64, 64) and y.shape == (64, 64)
        out, labels = _denormalise(x), y.numpy()
        pad = labels == 255  # padding: mean colour in the image, void in the mask
        assert (np.abs(out[pad].astype(int) - MEAN_RGB).max(initial=0)) <= 1
        assert _edges_agree(out, labels), f"seed {seed}: mask edges left the image edges"
    # the check has teeth: the mask flipped alone no longer agrees
    torch.manual_seed(0)
    x, y = apply(transform, image, mask)
    assert not _edges_agree(_denormalise(x), y.numpy()[:, ::-1])


# -------------------------------------------------------------------- (b) end to end, (d) errors


def bench(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=ENV, timeout=600)


def run_args(spec, results):
    return ("run", "ablation-aspp", "--data", spec, "--variants", "largefov", "--max-steps", "2",
            "--seeds", "1", "--results-dir", str(results), "--wandb", "disabled")


@pytest.mark.parametrize("kind", ["voc", "cityscapes"])
def test_bench_run_on_real_data_writes_records_with_crf(kind, voc_dir, cityscapes_dir, tmp_path):
    spec = f"voc:{voc_dir}" if kind == "voc" else f"cityscapes:{cityscapes_dir}"
    proc = bench(*run_args(spec, tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "runs/ablation-aspp/largefov/seed-0.json").read_text())
    assert record["status"] == "ok" and record["config"]["data"] == spec
    n_classes = 21 if kind == "voc" else 19
    assert record["knobs"]["num_classes"] == n_classes
    assert len(record["metrics"]["per_class_iou"]) == n_classes
    assert record["metrics"]["crf_images"] == 4 and "miou_crf" in record["metrics"]
    assert (tmp_path / "pictures/ablation-aspp/largefov-seed-0.png").is_file()


def _broken(tmp_path, voc_dir, case):
    """(spec, file the message must name) of a VOC tree broken in one way."""
    if case == "missing folder":
        return f"voc:{tmp_path / 'nowhere'}", str(tmp_path / "nowhere")
    devkit = tmp_path / "VOCdevkit"
    shutil.copytree(voc_dir, devkit)
    base = devkit / "VOC2012"
    val = base / "SegmentationClass" / f"{sorted(VAL_IDS)[1]}.png"
    if case == "missing split file":
        (base / "ImageSets/Segmentation/val.txt").unlink()
        return f"voc:{devkit}", "val.txt"
    if case == "image without mask":
        (base / "SegmentationClass" / f"{TRAIN_IDS[3]}.png").unlink()
        return f"voc:{devkit}", f"{TRAIN_IDS[3]}.png"
    labels = np.asarray(Image.open(val))
    if case == "size mismatch":
        labels = labels[:-4]
    else:  # label 30 in a mask
        labels = labels.copy()
        labels[5:9, 5:9] = 30
    _save_palette_png(np.ascontiguousarray(labels), val)
    return f"voc:{devkit}", val.name


@pytest.mark.parametrize("case", ["missing folder", "missing split file", "image without mask",
                                  "size mismatch", "label 30"])
def test_bad_real_data_exits_2_with_one_line_naming_the_file(case, voc_dir, tmp_path):
    spec, named = _broken(tmp_path, voc_dir, case)
    proc = bench(*run_args(spec, tmp_path / "results"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    # stderr may hold the progress bars of the training steps before the bad file is met
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0] == proc.stderr.strip().splitlines()[-1], proc.stderr[-3000:]
    assert errors[0].startswith("bench: error: ") and named in errors[0]
    if case == "label 30":
        assert "mask value 30" in errors[0] and "0..20 and 255" in errors[0]
    assert "Traceback" not in proc.stderr


def test_bench_error_from_a_dataloader_worker_keeps_one_line():
    loader = torch.utils.data.DataLoader(_Failing(), num_workers=1)
    with pytest.raises(BenchError) as err:
        next(iter(loader))
    assert str(err.value) == "/data/x.png: mask value 30 is not a label"


class _Failing(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        raise BenchError("/data/x.png: mask value 30 is not a label")
