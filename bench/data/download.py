"""Resumable, checksummed downloads of data set archives, with urllib (no extra dependency).

Why resumable: the VOC 2012 archive is about 2 GB and SBD's about 1.4 GB; a dropped connection
must not start them over. The bytes go to NAME.part beside the destination; the next attempt (a
few within one run, then a rerun of the command) asks for the bytes still missing (HTTP Range)
and appends them. A server that ignores Range answers 200 with the whole file, which then starts
over. Only a file whose md5 matches becomes NAME. A download whose md5 does not match is removed
(resuming it would only keep the damage), and the error names the archive, both checksums and the
URL; a file that was already there (put there by hand) is left alone and named instead.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.errors import BenchError

CHUNK = 1 << 20
ATTEMPTS = 4                    # per run, over the archive's URLs in turn
RETRY_WAIT_S = (0, 5, 30)      # before the 2nd, 3rd and 4th attempt: a blip, then a busy server
TIMEOUT_S = 60                  # a stalled connection counts as a dropped one
USER_AGENT = "deeplab-bench (python urllib)"  # some servers refuse urllib's default agent


@dataclass(frozen=True)
class Archive:
    key: str                # its role, the key in a sources file: "voc2012", "sbd"
    name: str               # file name in the downloads folder
    urls: tuple[str, ...]   # tried in turn
    md5: str


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the checksum the data sets publish, not a secret
    with open(path, "rb") as f, progress(path.stat().st_size, f"md5 {path.name}") as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def progress(total: int | None, desc: str, initial: int = 0) -> tqdm:
    """A byte-count bar on stderr; off where stderr is not a terminal (logs, tests)."""
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=None, leave=False)


def fetch(archive: Archive, folder: Path) -> Path:
    """folder/NAME with the archive's md5: found there, or downloaded (resuming NAME.part)."""
    dest = folder / archive.name
    if dest.is_file():
        _verify(dest, archive, found=True)
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"{archive.name}.part"
    _download(archive, part)
    _verify(part, archive, found=False)
    os.replace(part, dest)
    return dest


def _verify(path: Path, archive: Archive, found: bool) -> None:
    actual = md5sum(path)
    if actual == archive.md5:
        return
    if found:  # the user's file: theirs to delete or to declare (--sources)
        fate = f"{path} was there before this run and is kept; delete it to download the archive again"
    else:
        path.unlink()
        fate = f"the download from {' or '.join(archive.urls)} was removed; rerun to fetch it again"
    raise BenchError(f"{archive.name}: md5 {actual}, expected {archive.md5}; {fate}")


class _Interrupted(Exception):
    """An attempt that ended before the last byte; the next one resumes."""


def _download(archive: Archive, part: Path) -> None:
    last = None
    for attempt in range(ATTEMPTS):
        url = archive.urls[attempt % len(archive.urls)]
        if attempt:
            time.sleep(RETRY_WAIT_S[min(attempt, len(RETRY_WAIT_S)) - 1])
        try:
            _attempt(url, part, archive.name)
            return
        except _Interrupted as err:
            last = f"{url}: {err}"
    have = part.stat().st_size if part.is_file() else 0
    raise BenchError(f"{archive.name}: download failed {ATTEMPTS} times, last {last}; {have:,} bytes are "
                     f"in {part}, rerun the same command to resume")


def _attempt(url: str, part: Path, name: str) -> None:
    """One request for the bytes `part` lacks; returns once it holds the whole file."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the last run ended after the last byte
            return
        raise _Interrupted(f"HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Interrupted(str(getattr(err, "reason", err))) from err
    with response:
        start, total = _range_of(response, have)
        if start != have:  # a server that ignores Range, or answers another one: start over
            part.unlink(missing_ok=True)
            if start:
                raise _Interrupted(f"asked for bytes {have}- and got bytes {start}-")
        try:
            with open(part, "ab") as out, progress(total, name, initial=start) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
        # a dropped or stalled connection; any other OSError (a full disk) is no reason to retry
        except (ConnectionError, TimeoutError, http.client.HTTPException) as err:
            raise _Interrupted(f"connection lost ({err})") from err
    size = part.stat().st_size
    if total is not None and size != total:  # urllib returns b"" on a cut connection, no error
        raise _Interrupted(f"connection closed at byte {size:,} of {total:,}")


def _range_of(response, have: int) -> tuple[int, int | None]:
    """(first byte the response carries, whole file size or None when the server does not say)."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        found = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
        if not found:
            raise _Interrupted(f"unreadable Content-Range {response.headers.get('Content-Range')!r}")
        start, total = found.groups()
        return int(start), None if total == "*" else int(total)
    return 0, int(length) if length is not None else None
