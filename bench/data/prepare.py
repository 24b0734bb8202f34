"""`bench data prepare`: PASCAL VOC 2012 with SBD's trainaug from the official archives, and
Cityscapes from the two zips a user downloads by hand (its site needs a login).

VOC: ROOT becomes what `voc:ROOT` reads (ROOT/VOC2012/...), in five steps.
1. VOCtrainval_11-May-2012.tar and SBD's benchmark.tgz are downloaded into ROOT/downloads,
   resumably and checked against their published md5 (download.py); `--mirror URL` fetches the
   same files from another server, `--sources FILE` other archives with their own checksums.
2. VOC2012/ and SBD's cls/*.mat and train/val lists are extracted into ROOT/.prepare-XXXX: inside
   ROOT, so the finished tree moves into place with one rename and a killed run leaves only that
   folder behind (the next run removes it), never a half-extracted ROOT/VOC2012.
3. SegmentationClassAug/ gets one 8-bit label PNG for every image that VOC or SBD labels (12,031
   for the official archives). Where both label an image, VOC's SegmentationClass wins: VOC's
   are the curated annotations, with the 255 band along object boundaries that scoring leaves
   out, while SBD's (Hariharan et al. 2011) have no void band. Only VOC train and val images are
   labelled by both, and val never enters trainaug, so this matters for the VOC train images.
4. ImageSets/Segmentation/train_aug.txt: VOC train + SBD train + SBD val, less VOC val, sorted
   (10,582 IDs for the official archives; v2 Sec. 4.1).
5. VOC2012/bench-prepare.json records the archives (URLs, md5s), whether they were the official
   ones and the counts produced; the tree is checked as `bench data check` does (check.py), then
   renamed to ROOT/VOC2012. The archives are deleted unless keep_downloads. A second run finds
   the manifest and stops.

Cityscapes: with ROOT/gtFine_trainvaltest.zip and ROOT/leftImg8bit_trainvaltest.zip there, their
gtFine/ and leftImg8bit/ are extracted into ROOT (through a temporary folder, as above) and the
tree is checked; without them the instructions to fetch them are printed and the run stops.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.atomic import write_json_atomic
from bench.data import voc
from bench.data.check import MANIFEST, CheckReport, check_cityscapes, check_voc, read_manifest
from bench.data.download import Archive, fetch, progress
from bench.errors import BenchError

# The published files and md5s (host.robots.ox.ac.uk is VOC's own server; thor.robots.ox.ac.uk
# the university's mirror of it, tried second, as torchvision does since the first went down).
VOC_ARCHIVES = (
    Archive("voc2012", "VOCtrainval_11-May-2012.tar",
            ("http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
             "https://thor.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"),
            "6cd6e144f989b92b3379bac3b3de84fd"),
    Archive("sbd", "benchmark.tgz",
            ("https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz",),
            "82b4d87ceb2ed10f6038a1cba92111cb"),
)
SOURCES_FORMAT = '{"voc2012": {"url": URL, "md5": MD5}, "sbd": {"url": URL, "md5": MD5}}'
SBD_NUM_CLASSES = 21  # GTcls.Segmentation holds 0 (background) .. 20, no void
WORK_PREFIX = ".prepare-"
CITYSCAPES_ZIPS = {"gtFine": "gtFine_trainvaltest.zip", "leftImg8bit": "leftImg8bit_trainvaltest.zip"}
CITYSCAPES_HOWTO = """\
Cityscapes needs a login, so bench cannot download it for you:
  1. register at https://www.cityscapes-dataset.com/register/
  2. download these two packages from https://www.cityscapes-dataset.com/downloads/
       gtFine_trainvaltest.zip       fine annotations (about 250 MB)
       leftImg8bit_trainvaltest.zip  left 8-bit images (about 11 GB)
     or, with the login, `pip install cityscapesscripts` and
       csDownload -d {root} gtFine_trainvaltest.zip leftImg8bit_trainvaltest.zip
  3. put both in {root} and rerun `bench data prepare cityscapes {root}`: it extracts them there
     and checks the tree (2,975 train, 500 val images); then `--data cityscapes:{root}`."""

Log = Callable[[str], None]


def voc_archives(mirror: str | None = None, sources: str | Path | None = None) -> tuple[Archive, ...]:
    """The official archives; from `mirror` (a base URL serving the same file names, checked
    against the official md5s); or as a sources file names them (other archives, their md5s)."""
    if mirror and sources:
        raise BenchError("give --mirror or --sources, not both")
    if mirror:
        return tuple(replace(a, urls=(f"{mirror.rstrip('/')}/{a.name}",)) for a in VOC_ARCHIVES)
    if sources is None:
        return VOC_ARCHIVES
    try:
        given = json.loads(Path(sources).read_text())
        entries = {a.key: (str(given[a.key]["url"]), str(given[a.key]["md5"]).lower()) for a in VOC_ARCHIVES}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchError(f"{sources}: unreadable sources file ({type(err).__name__}: {err}); "
                         f"expected {SOURCES_FORMAT}") from err
    for key, (url, md5) in entries.items():
        if not re.fullmatch(r"[0-9a-f]{32}", md5):
            raise BenchError(f"{sources}: {key} md5 {md5!r} is not 32 hex digits; expected {SOURCES_FORMAT}")
    return tuple(replace(a, urls=(entries[a.key][0],), md5=entries[a.key][1]) for a in VOC_ARCHIVES)


def prepare_voc(root: str | Path, *, mirror: str | None = None, sources: str | Path | None = None,
                keep_downloads: bool = False, log: Log = print) -> CheckReport:
    """Download, extract and convert VOC 2012 + SBD into ROOT/VOC2012 (see the module docstring)."""
    root = Path(root).expanduser()
    target = root / "VOC2012"
    manifest = read_manifest(target)
    if manifest is not None:
        return CheckReport((), f"already prepared ({_counts(manifest['counts'])}); `bench data check voc:{root}` "
                               "reads every file again")
    if target.exists():
        raise BenchError(f"{target} exists without {MANIFEST}, so `bench data prepare` did not make it; "
                         "move it away or prepare into another ROOT")
    archives = voc_archives(mirror, sources)
    root.mkdir(parents=True, exist_ok=True)
    downloads = root / "downloads"
    for stale in root.glob(f"{WORK_PREFIX}*"):  # left by a run killed while extracting
        shutil.rmtree(stale)
    paths = {}
    for archive in archives:
        found = (downloads / archive.name).is_file()
        log(f"{archive.name}: {'found in ' + str(downloads) if found else 'downloading from ' + archive.urls[0]}")
        paths[archive.key] = fetch(archive, downloads)
    report = _build_voc(root, paths, archives, log)
    if not keep_downloads:
        for path in paths.values():
            path.unlink()
        if not any(downloads.iterdir()):
            downloads.rmdir()
    return report


def _build_voc(root: Path, paths: dict[str, Path], archives: tuple[Archive, ...], log: Log) -> CheckReport:
    """Steps 2-5: extract, convert, list, record, check, then move the tree into ROOT/VOC2012."""
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=root))
    try:
        voc2012, sbd = work / "VOC2012", work / "sbd"
        log(f"extracting {paths['voc2012'].name}")
        extract_tar(paths["voc2012"], voc2012, anchor="VOC2012")
        log(f"extracting the SBD class labels of {paths['sbd'].name}")
        extract_tar(paths["sbd"], sbd, anchor="dataset", wanted=_is_sbd_label_or_list)
        aug_labels = write_aug_labels(voc2012, sbd)
        trainaug = write_trainaug(voc2012, sbd)
        lists = voc2012 / "ImageSets" / "Segmentation"
        counts = {"train": len(voc.read_ids(lists / "train.txt")), "val": len(voc.read_ids(lists / "val.txt")),
                  "trainaug": len(trainaug), "aug_labels": aug_labels}
        official = all(a.md5 == o.md5 for a, o in zip(archives, VOC_ARCHIVES))
        write_json_atomic(voc2012 / MANIFEST, {
            "prepared_by": "bench data prepare voc", "official": official, "counts": counts,
            "archives": [{"key": a.key, "name": a.name, "urls": list(a.urls), "md5": a.md5} for a in archives],
            "aug_labels": "VOC SegmentationClass where VOC labels the image, else SBD cls/ID.mat GTcls.Segmentation",
            "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        log(f"checking the {counts['train'] + counts['val'] + counts['trainaug']:,} listed images")
        report = check_voc(voc2012)
        if not report.ok:
            raise BenchError(f"the prepared tree fails its check ({len(report.problems)} problems, nothing was put "
                             f"in {root}); the first: {report.problems[0]}")
        voc2012.rename(root / "VOC2012")  # the whole tree appears at once, manifest included
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return replace(report, summary=f"prepared: {report.summary}")


def _is_sbd_label_or_list(rel: PurePosixPath) -> bool:
    """SBD's cls/ID.mat (class labels) and train.txt, val.txt; not img/ (VOC 2012 holds every SBD
    image) nor inst/ (instance labels)."""
    return str(rel) in ("train.txt", "val.txt") or (rel.parent.name == "cls" and len(rel.parts) == 2
                                                    and rel.suffix == ".mat")


def extract_tar(archive: Path, dest: Path, anchor: str,
                wanted: Callable[[PurePosixPath], bool] = lambda rel: True) -> int:
    """The regular files below the folder named `anchor` (wherever it sits in the archive) into
    dest, one streaming pass. Paths are rebuilt from their parts (no '..', no absolute paths) and
    links are skipped, so an archive cannot write outside dest. Returns the files written."""
    written = 0
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar, \
            progress(archive.stat().st_size, f"extract {archive.name}") as bar:
        for member in tar:
            rel = _below(member.name, anchor)
            if member.isfile() and rel is not None and wanted(rel):
                _copy(tar.extractfile(member), dest / Path(*rel.parts))
                written += 1
            bar.update(raw.tell() - bar.n)
    if not written:
        raise BenchError(f"{archive}: no files below a folder {anchor}/ in it; is it the right archive?")
    return written


def _below(name: str, anchor: str) -> PurePosixPath | None:
    """The part of a member's path after the first folder `anchor`; None when there is none."""
    parts = PurePosixPath(name).parts
    if anchor not in parts or ".." in parts or name.startswith("/"):
        return None
    rest = parts[parts.index(anchor) + 1:]
    return PurePosixPath(*rest) if rest else None


def _copy(source, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def sbd_labels(path: Path) -> np.ndarray:
    """SBD's class labels of one image: cls/ID.mat's GTcls.Segmentation, uint8 0..20."""
    from scipy.io import loadmat  # imported here: only this step needs scipy, a slow import

    try:
        labels = np.asarray(loadmat(path)["GTcls"][0]["Segmentation"][0])
    except Exception as err:  # scipy's MatReadError, or a struct without the field: name the file
        raise BenchError(f"{path}: not an SBD class label file (GTcls.Segmentation): {err}") from err
    if labels.ndim != 2 or labels.size == 0 or labels.min() < 0 or labels.max() >= SBD_NUM_CLASSES:
        raise BenchError(f"{path}: GTcls.Segmentation is not a 2-D map of labels 0..{SBD_NUM_CLASSES - 1}")
    return labels.astype(np.uint8)


def voc_labels(path: Path) -> np.ndarray:
    """VOC's labels of one image: the palette indices of SegmentationClass/ID.png."""
    with Image.open(path) as image:
        if image.mode not in ("P", "L"):
            raise BenchError(f"{path}: mode {image.mode}; expected VOC's palette (P) label PNG")
        return np.asarray(image)


def write_aug_labels(voc2012: Path, sbd: Path) -> int:
    """SegmentationClassAug/ID.png (mode L) for every image VOC or SBD labels, VOC's first."""
    ours = {p.stem: p for p in (voc2012 / "SegmentationClass").glob("*.png")}
    theirs = {p.stem: p for p in (sbd / "cls").glob("*.mat")}
    out = voc2012 / voc.AUG_DIR
    out.mkdir()
    for image_id in tqdm(sorted(ours.keys() | theirs.keys()), desc="labels", unit="file", disable=None, leave=False):
        labels = voc_labels(ours[image_id]) if image_id in ours else sbd_labels(theirs[image_id])
        Image.fromarray(labels, mode="L").save(out / f"{image_id}.png")
    return len(ours.keys() | theirs.keys())


def write_trainaug(voc2012: Path, sbd: Path) -> list[str]:
    """ImageSets/Segmentation/train_aug.txt: VOC train + SBD train + SBD val, less VOC val."""
    lists = voc2012 / "ImageSets" / "Segmentation"
    val = set(voc.read_ids(lists / "val.txt"))
    ids = set(voc.read_ids(lists / "train.txt")) | set(voc.read_ids(sbd / "train.txt")) | set(voc.read_ids(sbd / "val.txt"))
    trainaug = sorted(ids - val)
    unlabelled = [i for i in trainaug if not (voc2012 / voc.AUG_DIR / f"{i}.png").is_file()]
    no_image = [i for i in trainaug if not voc.sample(voc2012, i).image.is_file()]
    for missing, what in ((unlabelled, "label (in VOC SegmentationClass or SBD cls)"), (no_image, "VOC JPEG image")):
        if missing:
            raise BenchError(f"{len(missing):,} trainaug IDs have no {what}, e.g. {missing[0]}; "
                             "are the archives VOC 2012 trainval and SBD?")
    (lists / voc.AUG_LISTS[0]).write_text("".join(f"{i}\n" for i in trainaug))
    return trainaug


def prepare_cityscapes(root: str | Path, *, log: Log = print) -> CheckReport:
    """Extract the two Cityscapes zips found in ROOT (unless their folders are there), then check."""
    root = Path(root).expanduser()
    todo = {folder: root / name for folder, name in CITYSCAPES_ZIPS.items() if not (root / folder).is_dir()}
    missing = [path.name for path in todo.values() if not path.is_file()]
    if missing:
        log(CITYSCAPES_HOWTO.format(root=root))
        raise BenchError(f"cityscapes:{root}: {' and '.join(missing)} not found there; download "
                         f"{'them' if len(missing) > 1 else 'it'} as above (a login is needed)")
    for folder, path in todo.items():
        log(f"extracting {path.name}")
        extract_zip(path, root, folder)
    report = check_cityscapes(root)
    return replace(report, summary=f"prepared: {report.summary}")


def extract_zip(archive: Path, root: Path, folder: str) -> None:
    """ROOT/FOLDER from the zip's FOLDER/..., through a temporary folder in ROOT and one rename."""
    for stale in root.glob(f"{WORK_PREFIX}*"):
        shutil.rmtree(stale)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=root))
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and _below(m.filename, folder) is not None
                       and PurePosixPath(m.filename).parts[0] == folder]
            if not members:
                raise BenchError(f"{archive}: no {folder}/ folder in it; is it the right package?")
            for member in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=None, leave=False):
                _copy(zf.open(member), work / folder / Path(*_below(member.filename, folder).parts))
        (work / folder).rename(root / folder)
    except zipfile.BadZipFile as err:
        raise BenchError(f"{archive}: not a zip file ({err}); download it again") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _counts(counts: dict) -> str:
    return ", ".join(f"{int(counts[s]):,} {s}" for s in ("train", "val", "trainaug"))
