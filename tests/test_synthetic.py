"""The embedded synthetic data set and the DataModule that serves it."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from bench.data import datamodule as dm
from bench.data import synthetic
from bench.data.datamodule import SegmentationArrays, SegmentationDataModule
from bench.data.spec import parse_data_spec
from bench.data.transforms import denormalize, normalize
from bench.errors import BenchError

SIZE = 64


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own disk cache and an empty memory cache."""
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(dm, "_MEMORY_CACHE", type(dm._MEMORY_CACHE)())


@pytest.fixture(scope="module")
def many():
    return synthetic.generate(0, "train", 300, SIZE)


def test_the_label_set_is_voc_sized():
    assert synthetic.NUM_CLASSES == 21 == len(synthetic.CLASS_NAMES)
    assert synthetic.CLASS_NAMES[0] == "background"
    assert len(set(synthetic.CLASS_NAMES)) == 21
    assert synthetic.IGNORE_INDEX == 255


def test_classes_share_colours_and_differ_by_shape():
    families = [c for c, _ in synthetic.CLASSES]
    assert all(families.count(f) >= 2 for f in families)  # colour alone never names a class
    pairs = {tuple(sorted(s for c, s in synthetic.CLASSES if c == f)) for f in set(families)}
    assert len(pairs) == len(set(families))  # each family tests a different shape contrast
    assert synthetic.class_index("red", "disc") == 1
    with pytest.raises(ValueError):
        synthetic.class_index("red", "bar")


def test_shapes_and_dtypes():
    images, masks = synthetic.generate(3, "val", 5, SIZE)
    assert images.shape == (5, SIZE, SIZE, 3) and images.dtype == np.uint8
    assert masks.shape == (5, SIZE, SIZE) and masks.dtype == np.uint8


def test_same_seed_same_arrays_and_splits_and_seeds_differ():
    a = synthetic.generate(7, "train", 4, SIZE)
    b = synthetic.generate(7, "train", 4, SIZE)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], synthetic.generate(7, "val", 4, SIZE)[0])
    assert not np.array_equal(a[0], synthetic.generate(8, "train", 4, SIZE)[0])


def test_a_smaller_n_is_a_prefix():
    big = synthetic.generate(1, "train", 6, SIZE)
    small = synthetic.generate(1, "train", 3, SIZE)
    np.testing.assert_array_equal(big[0][:3], small[0])
    np.testing.assert_array_equal(big[1][:3], small[1])


def test_labels_are_classes_or_ignore(many):
    values = set(np.unique(many[1]).tolist())
    assert values <= set(range(21)) | {255}


def test_every_class_appears_in_a_few_hundred_images(many):
    present = set(np.unique(many[1]).tolist())
    assert set(range(21)) <= present


def test_a_thin_ignore_band_outlines_the_objects(many):
    masks = many[1]
    ignore = masks == 255
    assert 0.005 < ignore.mean() < 0.08  # a band, not whole objects
    # every label boundary has ignore between the two sides: no object pixel touches background
    # (or another class) directly, left-right or up-down
    for a, b in ((masks[:, :, :-1], masks[:, :, 1:]), (masks[:, :-1, :], masks[:, 1:, :])):
        touching = (a != b) & (a != 255) & (b != 255)
        assert touching.sum() == 0
    # the band is about one pixel wide: most ignore pixels have a labelled 4-neighbour
    padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)), constant_values=0)
    neighbours = [padded[:, 1:-1, :-2], padded[:, 1:-1, 2:],
                  padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]]
    has_labelled = np.any([n != 255 for n in neighbours], axis=0)
    assert has_labelled[ignore].mean() > 0.95


def test_objects_range_from_a_few_pixels_to_most_of_the_image(many):
    masks = many[1]
    fractions = [(m == c).mean() for m in masks[:100] for c in np.unique(m) if 0 < c < 255]
    assert min(fractions) < 20 / SIZE**2
    assert max(fractions) > 0.25


def test_disk_cache_round_trip_is_identical(tmp_path, monkeypatch):
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "c"))
    first = synthetic.load_or_generate(2, "train", 4, SIZE)
    path = synthetic.cache_path(2, "train", 4, SIZE)
    assert path.exists() and path.parent == tmp_path / "c"
    again = synthetic.load_or_generate(2, "train", 4, SIZE)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(again[0], synthetic.generate(2, "train", 4, SIZE)[0])
    path.write_bytes(b"truncated")  # a corrupt cache file is rebuilt, not trusted
    rebuilt = synthetic.load_or_generate(2, "train", 4, SIZE)
    np.testing.assert_array_equal(first[1], rebuilt[1])


def test_flip_keeps_image_and_mask_aligned():
    images, masks = synthetic.generate(0, "train", 2, SIZE)
    ds = SegmentationArrays(images, masks, flip=True)
    plain = SegmentationArrays(images, masks, flip=False)
    seen = set()
    torch.manual_seed(0)
    for _ in range(20):
        image, mask = ds[0]
        ref_image, ref_mask = plain[0]
        flipped = not torch.equal(mask, ref_mask)
        seen.add(flipped)
        if flipped:
            assert torch.equal(mask, ref_mask.flip(-1))
            assert torch.equal(image, ref_image.flip(-1))
        else:
            assert torch.equal(image, ref_image)
    assert seen == {True, False}


def test_normalize_and_denormalize_invert():
    images, _ = synthetic.generate(0, "val", 2, SIZE)
    x = normalize(images)
    assert x.shape == (2, 3, SIZE, SIZE) and x.dtype == torch.float32
    np.testing.assert_array_equal(denormalize(x), images)


def _module(**kw):
    args = dict(image_size=SIZE, batch_size=4, num_train=10, num_val=6)
    args.update(kw)
    data = SegmentationDataModule("synthetic", **args)
    data.setup("fit")
    return data


def test_datamodule_batches():
    data = _module()
    assert (data.num_classes, data.ignore_index) == (21, 255)
    assert data.class_names == synthetic.CLASS_NAMES
    train = list(data.train_dataloader())
    assert len(train) == 2  # 10 images, batch 4, last incomplete batch dropped
    images, masks = train[0]
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.float32
    assert masks.shape == (4, SIZE, SIZE) and masks.dtype == torch.int64
    assert abs(images.mean().item()) < 1.5  # normalised, not 0..255
    val = list(data.val_dataloader())
    assert [len(m) for _, m in val] == [4, 2]  # no drop_last
    np.testing.assert_array_equal(val[0][1].numpy(), data.arrays("val")[1][:4])


def test_seed_everything_makes_training_batches_repeatable():
    def first_masks():
        pl.seed_everything(5)
        torch.rand(100)  # model construction drawing random numbers must not matter
        return next(iter(_module().train_dataloader()))[1]

    def first_masks_other_draws():
        pl.seed_everything(5)
        torch.rand(7)
        return next(iter(_module().train_dataloader()))[1]

    a = first_masks()
    assert torch.equal(a, first_masks())
    pl.seed_everything(6)
    b = next(iter(_module().train_dataloader()))[1]
    assert not torch.equal(a, b)
    # the order (not the flips) is independent of other draws from the global RNG
    c = first_masks_other_draws()
    assert [m.sum().item() for m in a] == [m.sum().item() for m in c]  # a flip keeps the sum


def test_datamodule_uses_the_disk_cache(tmp_path):
    _module(data_seed=3)
    names = sorted(p.name for p in synthetic.cache_dir().iterdir())
    assert len(names) == 2 and all(n.endswith(".npz") for n in names)
    assert any("-train-" in n for n in names) and any("-val-" in n for n in names)


@pytest.mark.parametrize("spec, expected", [
    ("synthetic", ("synthetic", None)),
    ("voc:/data/VOCdevkit", ("voc", "/data/VOCdevkit")),
    ("cityscapes:/data/cs", ("cityscapes", "/data/cs")),
    ("voc:C:/data", ("voc", "C:/data")),
])
def test_parse_data_spec(spec, expected):
    assert parse_data_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["voc", "voc:", "cityscapes", "foo:bar", "synthetic:x", "", "VOC:x"])
def test_bad_data_specs_name_the_valid_forms(spec):
    with pytest.raises(BenchError) as err:
        parse_data_spec(spec)
    message = str(err.value)
    assert "\n" not in message and "synthetic" in message and "voc:PATH" in message


@pytest.mark.parametrize("spec", ["voc:/nonexistent/VOCdevkit", "cityscapes:/nonexistent/cs"])
def test_real_data_sets_at_a_missing_path_fail_when_built(spec):
    with pytest.raises(BenchError, match="/nonexistent/.*: no such folder; expected"):
        SegmentationDataModule(spec)
