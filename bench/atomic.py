"""One atomic write for every file a reader must see whole or not at all: run records, CRF
search results, checkpoints, resume checkpoints and the synthetic-data cache.

The content goes to a temporary file in the destination's folder (same file system), is flushed
and fsynced, then renamed over the destination (``os.replace``, atomic on POSIX), and the folder
is fsynced so the rename survives a power cut. A reader sees the old file or the whole new one;
a write that fails (a full disk, an I/O error) removes its temporary file and leaves the old one
intact, and its OSError names the destination (``[Errno 28] No space left on device: 'PATH'``).
A process killed mid-write (SIGKILL) can leave only its hidden temporary file (``.NAME.*.tmp``),
never a half-written destination.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` writes the content to the temporary path ``tmp``; then it becomes ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # whoever wrote it (json, torch.save, numpy), it reaches the disk
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a quota, an I/O error: named by the file the user knows
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> Path:
    """``payload`` as indented JSON with sorted keys (stable diffs of committed records)."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n"))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a file system that cannot open folders: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
