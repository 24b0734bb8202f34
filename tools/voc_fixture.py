"""VOC 2012 and SBD archives in the official layouts, made of generated images, and a loopback
HTTP server with Range support: what tests/test_data_prepare.py downloads from, and what a
full-size smoke check of `bench data prepare voc` can serve.

    fixture = write_voc_archives(folder, train=4, val=2, sbd_only=2, size=(500, 375))
    with serve(folder) as server:
        sources = fixture.write_sources(folder / "sources.json", server.url)
        # bench data prepare voc ROOT --sources FOLDER/sources.json

or from a shell: `python tools/voc_fixture.py FOLDER [--train N ...] [--serve]`.

The archives, as the official ones lay them out:
- VOCtrainval_11-May-2012.tar: VOCdevkit/VOC2012/JPEGImages/ID.jpg, SegmentationClass/ID.png
  (palette PNGs: the index is the label; 255 along object boundaries) and
  ImageSets/Segmentation/{train,val,trainval}.txt. JPEGImages also holds the SBD-only images, as
  the real one holds every VOC 2012 image, labelled or not.
- benchmark.tgz: benchmark_RELEASE/dataset/cls/ID.mat (a struct GTcls with Segmentation,
  Boundaries and CategoriesPresent, as SBD's), img/ID.jpg, train.txt and val.txt.
SBD also labels the first VOC train image (its own labels, without VOC's void band, so a test can
see whose labels won) and the first VOC val image (which trainaug must leave out); its SBD-only
images are split between its train and val lists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat
from scipy.sparse import csc_matrix

from bench.evaluation.pictures import voc_palette

VOC_TAR = "VOCtrainval_11-May-2012.tar"
SBD_TGZ = "benchmark.tgz"
PALETTE = voc_palette()  # (256, 3): palette index -> the devkit's colour, for viewing only


@dataclass(frozen=True)
class VocFixture:
    folder: Path
    train_ids: tuple[str, ...]       # VOC train.txt
    val_ids: tuple[str, ...]         # VOC val.txt
    sbd_train_ids: tuple[str, ...]   # SBD train.txt
    sbd_val_ids: tuple[str, ...]     # SBD val.txt
    md5: dict[str, str]              # "voc2012", "sbd" -> the md5 of its archive

    @property
    def trainaug_ids(self) -> tuple[str, ...]:
        """What `bench data prepare` must list: VOC train + SBD train + SBD val, less VOC val."""
        return tuple(sorted((set(self.train_ids) | set(self.sbd_train_ids) | set(self.sbd_val_ids))
                            - set(self.val_ids)))

    def sources(self, base_url: str) -> dict:
        """The content of a `--sources` file for these archives served at base_url."""
        base = base_url.rstrip("/")
        return {"voc2012": {"url": f"{base}/{VOC_TAR}", "md5": self.md5["voc2012"]},
                "sbd": {"url": f"{base}/{SBD_TGZ}", "md5": self.md5["sbd"]}}

    def write_sources(self, path: Path, base_url: str) -> Path:
        Path(path).write_text(json.dumps(self.sources(base_url), indent=2) + "\n")
        return Path(path)


def scene(rng: np.random.Generator, size: tuple[int, int], classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image (H, W, 3) and its labels (H, W): one box per class on background, each class
    its own colour plus a little noise (so the JPEG is not trivially flat)."""
    width, height = size
    labels = np.zeros((height, width), np.uint8)
    for label in classes:
        h, w = rng.integers(height // 4, height // 2 + 1), rng.integers(width // 4, width // 2 + 1)
        y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        labels[y:y + h, x:x + w] = label
    colours = PALETTE.astype(np.int16)
    noise = rng.integers(-12, 13, (height, width, 3))
    image = np.clip(colours[labels] + noise + 40, 0, 255).astype(np.uint8)
    return image, labels


def void_band(labels: np.ndarray) -> np.ndarray:
    """VOC's labels: 255 on the pixels whose right or lower neighbour has another label."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[:-1, :] |= labels[1:, :] != labels[:-1, :]
    out = labels.copy()
    out[edge] = 255
    return out


def palette_png(labels: np.ndarray) -> bytes:
    image = Image.fromarray(labels, mode="L").convert("P")
    image.putpalette(PALETTE.ravel().tolist())
    return encode(image, "PNG")


def jpeg(image: np.ndarray) -> bytes:
    return encode(Image.fromarray(image), "JPEG", quality=90)


def sbd_mat(labels: np.ndarray) -> bytes:
    """cls/ID.mat as SBD stores it: GTcls.Segmentation (uint8 labels), GTcls.Boundaries (a 20 x 1
    cell of sparse boundary maps, one per class) and GTcls.CategoriesPresent."""
    inner = void_band(labels) == 255
    boundaries = np.empty((20, 1), dtype=object)
    for c in range(1, 21):
        boundaries[c - 1, 0] = csc_matrix(inner & (labels == c))
    present = np.array([c for c in np.unique(labels) if c], np.uint8).reshape(-1, 1)
    buffer = io.BytesIO()
    savemat(buffer, {"GTcls": {"Segmentation": labels, "Boundaries": boundaries, "CategoriesPresent": present}})
    return buffer.getvalue()


def write_voc_archives(folder: str | Path, *, train: int = 4, val: int = 2, sbd_only: int = 2,
                       size: tuple[int, int] = (500, 375), seed: int = 0) -> VocFixture:
    """FOLDER/VOCtrainval_11-May-2012.tar and FOLDER/benchmark.tgz; size is (width, height)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_ids = tuple(f"2008_{i:06d}" for i in range(train))
    val_ids = tuple(f"2007_{i:06d}" for i in range(val))
    extra = tuple(f"2011_{i:06d}" for i in range(sbd_only))
    sbd_train, sbd_val = train_ids[:1] + extra[: (sbd_only + 1) // 2], val_ids[:1] + extra[(sbd_only + 1) // 2:]
    images, labels = {}, {}
    for n, image_id in enumerate(train_ids + val_ids + extra):
        images[image_id], labels[image_id] = scene(rng, size, [15, 1 + n % 20])  # 15: person
    voc_dir, sbd_dir = "VOCdevkit/VOC2012", "benchmark_RELEASE/dataset"
    voc_files = {f"{voc_dir}/JPEGImages/{i}.jpg": jpeg(images[i]) for i in images}
    voc_files |= {f"{voc_dir}/SegmentationClass/{i}.png": palette_png(void_band(labels[i])) for i in train_ids + val_ids}
    for name, ids in (("train", train_ids), ("val", val_ids), ("trainval", train_ids + val_ids)):
        voc_files[f"{voc_dir}/ImageSets/Segmentation/{name}.txt"] = _lines(ids)
    sbd_files = {f"{sbd_dir}/cls/{i}.mat": sbd_mat(labels[i]) for i in sbd_train + sbd_val}
    sbd_files |= {f"{sbd_dir}/img/{i}.jpg": voc_files[f"{voc_dir}/JPEGImages/{i}.jpg"] for i in sbd_train + sbd_val}
    sbd_files |= {f"{sbd_dir}/train.txt": _lines(sbd_train), f"{sbd_dir}/val.txt": _lines(sbd_val)}
    md5 = {"voc2012": _write_tar(folder / VOC_TAR, voc_files, "w"), "sbd": _write_tar(folder / SBD_TGZ, sbd_files, "w:gz")}
    return VocFixture(folder, train_ids, val_ids, sbd_train, sbd_val, md5)


def _lines(ids) -> bytes:
    return "".join(f"{i}\n" for i in ids).encode()


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    """The bytes of `image` saved as `fmt` (PNG, JPEG), e.g. for a zip or tar member."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _write_tar(path: Path, files: dict[str, bytes], mode: str) -> str:
    """A tar of `files` (with their folders, as tar writes a tree); returns its md5."""
    folders = sorted({"/".join(name.split("/")[:k]) for name in files for k in range(1, name.count("/") + 1)})
    with tarfile.open(path, mode) as tar:
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


class RangeServer(ThreadingHTTPServer):
    """Serves the files of a folder on 127.0.0.1, honouring Range requests (206, 416).

    `requests` records (path, Range header or None) of every GET. With cut_after=N the first
    `cuts` responses send only N bytes of their body and close the connection: a dropped download.
    """

    daemon_threads = True

    def __init__(self, folder: Path, cut_after: int | None = None, cuts: int = 1):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder, self.cut_after, self.cuts = Path(folder), cut_after, cuts
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take_cut(self) -> bool:
        with self.lock:
            if self.cut_after is None or self.cuts <= 0:
                return False
            self.cuts -= 1
            return True


class _Handler(BaseHTTPRequestHandler):
    server: RangeServer

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = self.server.folder / self.path.lstrip("/")
        if "/" in self.path.lstrip("/") or not path.is_file():  # only the folder's own files
            self.send_error(404)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if asked:
            start, end = int(asked[1]), min(int(asked[2] or size - 1), size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        todo = end - start + 1
        if self.server.take_cut():
            todo = min(todo, self.server.cut_after)
        with open(path, "rb") as f:
            f.seek(start)
            while todo > 0 and (chunk := f.read(min(todo, 1 << 20))):
                self.wfile.write(chunk)
                todo -= len(chunk)
        self.close_connection = True

    def log_message(self, *args):  # quiet: the tests read `requests`
        pass


@contextmanager
def serve(folder: str | Path, *, cut_after: int | None = None, cuts: int = 1) -> Iterator[RangeServer]:
    """A RangeServer of `folder` running in a thread for the duration of the block."""
    server = RangeServer(Path(folder), cut_after, cuts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description="Write VOC 2012 + SBD archives of generated images.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=int, default=4)
    parser.add_argument("--val", type=int, default=2)
    parser.add_argument("--sbd-only", type=int, default=2)
    parser.add_argument("--size", default="500x375", help="WIDTHxHEIGHT of every image")
    parser.add_argument("--serve", action="store_true", help="then serve them on 127.0.0.1 until Ctrl-C")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    fixture = write_voc_archives(args.folder, train=args.train, val=args.val, sbd_only=args.sbd_only,
                                 size=(width, height))
    print(f"{args.folder}: {VOC_TAR} {fixture.md5['voc2012']}, {SBD_TGZ} {fixture.md5['sbd']}; "
          f"{len(fixture.trainaug_ids)} trainaug images")
    if args.serve:
        with serve(args.folder) as server:
            sources = fixture.write_sources(args.folder / "sources.json", server.url)
            print(f"serving {server.url}; bench data prepare voc ROOT --sources {sources}")
            threading.Event().wait()


if __name__ == "__main__":
    main()
