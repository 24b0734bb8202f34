"""`bench data prepare` and `bench data check`, against real archives on a loopback server.

The archives are tools/voc_fixture.py's: VOC 2012 and SBD in their official layouts (tar of JPEGs
and palette PNGs, tgz of SBD's GTcls .mat files), 6 VOC images and 4 SBD ones, 500x375. The
server (same module) honours Range requests and can drop a connection mid-file. No test reaches
anything but 127.0.0.1: every prepare is given a sources file naming the loopback server.
"""

import importlib.util
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data import voc
from bench.data.check import MANIFEST, OFFICIAL_VOC

ROOT = Path(__file__).resolve().parents[1]


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location("voc_fixture", ROOT / "tools" / "voc_fixture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["voc_fixture"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


vf = _load_fixture_module()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """A proxy set in the environment must not see the loopback requests."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    return vf.write_voc_archives(tmp_path_factory.mktemp("archives"))


@pytest.fixture(scope="module")
def prepared(archives, tmp_path_factory):
    """A ROOT prepared once from the archives (the check tests break copies of it)."""
    root = tmp_path_factory.mktemp("prepared") / "voc"
    with vf.serve(archives.folder) as server:
        sources = archives.write_sources(root.parent / "sources.json", server.url)
        assert main(["data", "prepare", "voc", str(root), "--sources", str(sources)]) == 0
    return root


def bench(capsys, *args):
    """(exit code, stdout lines, stderr lines) of `bench ARGS`."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_a_prepared_tree_is_voc_with_trainaug_that_bench_reads_and_check_accepts(archives, prepared, capsys):
    base = prepared / "VOC2012"
    lists = base / "ImageSets" / "Segmentation"
    assert lists.joinpath("train_aug.txt").read_text().split() == list(archives.trainaug_ids)
    assert archives.val_ids[0] in archives.sbd_val_ids and archives.val_ids[0] not in archives.trainaug_ids
    files = voc.index(str(prepared))  # voc:ROOT
    assert files.name == "VOC 2012 trainaug"
    assert [s.image.stem for s in files.train] == list(archives.trainaug_ids)
    assert [s.image.stem for s in files.val] == sorted(archives.val_ids)
    # SBD labels the first VOC train image too: VOC's labels (with their 255 band) win
    both = archives.train_ids[0]
    assert both in archives.sbd_train_ids
    aug = np.asarray(Image.open(base / voc.AUG_DIR / f"{both}.png"))
    assert Image.open(base / voc.AUG_DIR / f"{both}.png").mode == "L"
    assert np.array_equal(aug, np.asarray(Image.open(base / "SegmentationClass" / f"{both}.png")))
    assert (aug == 255).any()
    sbd_only = archives.sbd_train_ids[-1]  # labelled by SBD alone: its GTcls.Segmentation, no void
    assert set(np.unique(np.asarray(Image.open(base / voc.AUG_DIR / f"{sbd_only}.png")))) <= set(range(21))
    manifest = json.loads((base / MANIFEST).read_text())
    assert manifest["official"] is False
    assert manifest["counts"] == {"train": 4, "val": 2, "trainaug": 6, "aug_labels": 8}
    assert [a["md5"] for a in manifest["archives"]] == [archives.md5["voc2012"], archives.md5["sbd"]]
    assert not (prepared / "downloads").exists() and not list(prepared.glob(".prepare-*"))
    code, out, err = bench(capsys, "data", "check", f"voc:{prepared}")
    assert code == 0 and err == [] and len(out) == 1
    assert out[0].startswith(f"voc:{prepared}: 4 train, 2 val, 6 trainaug images")
    assert "archives other than the official ones" in out[0]


def test_a_second_prepare_finds_the_tree_done_without_downloading(archives, prepared, capsys):
    with vf.serve(archives.folder) as server:
        sources = archives.write_sources(prepared.parent / "sources2.json", server.url)
        code, out, err = bench(capsys, "data", "prepare", "voc", prepared, "--sources", sources)
    assert code == 0 and err == [] and server.requests == []
    assert out == [f"voc:{prepared}: already prepared (4 train, 2 val, 6 trainaug); "
                   f"`bench data check voc:{prepared}` reads every file again"]


def test_a_dropped_download_resumes_with_a_range_request(archives, tmp_path, capsys):
    root = tmp_path / "voc"
    sbd_bytes = (archives.folder / vf.SBD_TGZ).read_bytes()
    (root / "downloads").mkdir(parents=True)  # a run killed halfway through benchmark.tgz
    (root / "downloads" / f"{vf.SBD_TGZ}.part").write_bytes(sbd_bytes[:50_000])
    with vf.serve(archives.folder, cut_after=100_000) as server:  # the first response stops at 100 kB
        sources = archives.write_sources(tmp_path / "sources.json", server.url)
        code, out, err = bench(capsys, "data", "prepare", "voc", root, "--sources", sources, "--keep-downloads")
    assert code == 0, err
    assert server.requests == [(f"/{vf.VOC_TAR}", None), (f"/{vf.VOC_TAR}", "bytes=100000-"),
                               (f"/{vf.SBD_TGZ}", "bytes=50000-")]
    assert (root / "downloads" / vf.VOC_TAR).read_bytes() == (archives.folder / vf.VOC_TAR).read_bytes()
    assert (root / "downloads" / vf.SBD_TGZ).read_bytes() == sbd_bytes
    assert len(voc.index(str(root)).train) == len(archives.trainaug_ids)


def test_a_wrong_checksum_is_one_line_and_leaves_nothing_half_extracted(archives, tmp_path, capsys):
    root = tmp_path / "voc"
    with vf.serve(archives.folder) as server:
        sources = archives.sources(server.url)
        sources["sbd"]["md5"] = "0" * 32
        (tmp_path / "sources.json").write_text(json.dumps(sources))
        code, out, err = bench(capsys, "data", "prepare", "voc", root, "--sources", tmp_path / "sources.json")
    assert code == 2 and len(err) == 1
    assert err[0] == (f"bench: error: benchmark.tgz: md5 {archives.md5['sbd']}, expected {'0' * 32}; the download "
                      f"from {server.url}/benchmark.tgz was removed; rerun to fetch it again")
    # the good archive stays for the rerun; no tree, no temporary folder, no corrupt download
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["downloads", f"downloads/{vf.VOC_TAR}"]


def test_check_names_every_problem_of_a_half_prepared_tree(prepared, archives, tmp_path, capsys):
    root = tmp_path / "voc"
    shutil.copytree(prepared, root)
    base = root / "VOC2012"
    (base / "ImageSets/Segmentation/val.txt").unlink()
    sbd_only = archives.sbd_val_ids[-1]
    (base / voc.AUG_DIR / f"{sbd_only}.png").unlink()
    bad = base / "SegmentationClass" / f"{archives.train_ids[1]}.png"
    labels = np.asarray(Image.open(bad)).copy()
    labels[:4, :4] = 30
    Image.fromarray(labels, mode="L").save(bad)
    jpeg = base / "JPEGImages" / f"{archives.train_ids[2]}.jpg"  # in train and trainaug: one line
    jpeg.write_bytes(b"not a jpeg")
    code, out, err = bench(capsys, "data", "check", f"voc:{root}")
    assert code == 2 and out == []
    assert len(err) == 4, err
    assert err[0].startswith(f"{base / 'ImageSets/Segmentation/val.txt'}: missing split file")
    assert sum(line.startswith(f"{jpeg}: unreadable image") for line in err) == 1
    assert f"{bad}: label values 30 are not labels; valid: 0..20 and 255 (void)" in err
    assert f"{base / voc.AUG_DIR / sbd_only}.png: missing label file of image {sbd_only}" in err


def test_a_tree_without_manifest_is_held_to_the_official_counts(prepared, tmp_path, capsys):
    root = tmp_path / "voc"
    shutil.copytree(prepared, root)
    (root / "VOC2012" / MANIFEST).unlink()
    code, out, err = bench(capsys, "data", "check", f"voc:{root}")
    lists = root / "VOC2012/ImageSets/Segmentation"
    assert code == 2 and err == [
        f"{lists / name}: {n} {split} IDs, expected {OFFICIAL_VOC[split]:,} (the official counts; no {MANIFEST}, "
        "so taken for the official archives)"
        for name, n, split in (("train.txt", 4, "train"), ("val.txt", 2, "val"), ("train_aug.txt", 6, "trainaug"))]


def test_cityscapes_without_its_zips_explains_the_download(tmp_path, capsys):
    code, out, err = bench(capsys, "data", "prepare", "cityscapes", tmp_path)
    assert code == 2
    assert any("gtFine_trainvaltest.zip" in line for line in out)
    assert any("leftImg8bit_trainvaltest.zip" in line for line in out)
    assert any("https://www.cityscapes-dataset.com/downloads/" in line for line in out)
    assert err == [f"bench: error: cityscapes:{tmp_path}: gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
                   "not found there; download them as above (a login is needed)"]


def test_cityscapes_zips_are_extracted_and_checked_against_the_official_counts(tmp_path, capsys):
    stems = {"train": ["aachen_000000_000019", "bochum_000001_000019"], "val": ["lindau_000000_000019"]}
    with zipfile.ZipFile(tmp_path / "leftImg8bit_trainvaltest.zip", "w") as images, \
            zipfile.ZipFile(tmp_path / "gtFine_trainvaltest.zip", "w") as labels:
        images.writestr("license.txt", "the dataset's terms")
        for split, names in stems.items():
            for stem in names:
                city = stem.split("_")[0]
                images.writestr(f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png",
                                vf.encode(Image.new("RGB", (64, 32), (90, 60, 30)), "PNG"))
                ids = np.full((32, 64), 7, np.uint8)
                ids[:, :8] = 40 if stem.startswith("bochum") else 26  # 40 is no Cityscapes label ID
                labels.writestr(f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png",
                                vf.encode(Image.fromarray(ids, mode="L"), "PNG"))
    code, out, err = bench(capsys, "data", "prepare", "cityscapes", tmp_path)
    label = tmp_path / "gtFine/train/bochum/bochum_000001_000019_gtFine_labelIds.png"
    assert code == 2 and err == [
        f"{tmp_path / 'leftImg8bit/train'}: 2 images, expected 2,975 (the official counts)",
        f"{tmp_path / 'leftImg8bit/val'}: 1 images, expected 500 (the official counts)",
        f"{label}: label values 40 are not labels; valid: label IDs 0..33 and 255"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gtFine", "gtFine_trainvaltest.zip", "leftImg8bit",
                                                           "leftImg8bit_trainvaltest.zip"]
