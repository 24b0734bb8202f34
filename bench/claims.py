"""Claim files: which process is doing which run, so several `bench run` on one results dir share
the work instead of duplicating it.

A claim file (ResultsDir.claim: RESULTS_DIR/claims/EXPERIMENT/VARIANT/seed-N.claim) holds
{"pid", "host", "started", "proc_start"} of the process doing that run. A claim is created with all its content at once: written to a
temporary file, then hard-linked to the claim's name; the link fails when the name exists, which
is the O_CREAT|O_EXCL test, and no reader ever sees a half-written claim. The holder removes it
once the run's record is written (or the run is given up).

A claim is stale when its holder is gone: on this host, its pid does not exist, is a zombie, or is
another process that reused the pid (its start time differs from the claim's). A stale claim is
taken over (moved aside with a rename, which only one taker can win, then claimed afresh). A claim
from another host cannot be checked and is trusted; the message names the file to delete when
that host's process is known to be gone.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.provenance import utc_now

def _proc_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[19] if len(fields) > 19 else None  # field 22 of proc(5); fields[0] is field 3


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].startswith("Z")


def my_identity() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": platform.node(), "started": utc_now(),
            "proc_start": _proc_start(os.getpid())}


def is_stale(holder: dict[str, Any]) -> bool:
    """True when the claim's process is known to be gone (only decidable on this host)."""
    if holder.get("host") != platform.node() or not isinstance(holder.get("pid"), int):
        return False
    pid = holder["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    if _is_zombie(pid):
        return True
    start = _proc_start(pid)
    return start is not None and holder.get("proc_start") not in (None, start)


def describe(holder: dict[str, Any] | None, path: Path) -> str:
    if not holder or "pid" not in holder:
        return f"claimed by an unreadable claim file {path} (delete it if no process is doing that run)"
    return (f"claimed by pid {holder['pid']} on {holder.get('host')} since {holder.get('started')} "
            f"({path}; delete it if that process is gone)")


def read_claim(path: Path) -> dict[str, Any] | None:
    """The holder written in a claim; None when there is no claim; {} when it is unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


@dataclass
class Claim:
    path: Path
    holder: dict[str, Any]

    def release(self) -> None:
        """Remove the claim if it is still ours (never another process's)."""
        if read_claim(self.path) == self.holder:
            self.path.unlink(missing_ok=True)


def _create(path: Path, holder: dict[str, Any]) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(holder, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic; fails if a claim exists
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _take_over(path: Path, stale: dict[str, Any]) -> bool:
    """Move a stale claim aside; False when another process won the race (or it changed)."""
    aside = path.with_name(f".{path.name}.stale-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if read_claim(aside) != stale:  # a live claim made in between: put it back
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def acquire(path: Path) -> tuple[Claim | None, dict[str, Any] | None]:
    """(our claim, None), or (None, the live holder's info) when another process holds the run."""
    holder: dict[str, Any] | None = None
    for _ in range(5):
        mine = my_identity()
        if _create(path, mine):
            return Claim(path, mine), None
        holder = read_claim(path)
        if holder is None:  # released in between: try again
            continue
        if holder and is_stale(holder) and _take_over(path, holder):
            continue
        return None, holder
    return None, holder


def clear_stale(path: Path) -> bool:
    """Remove the claim at ``path`` when its holder is gone (True); a live or foreign one stays."""
    holder = read_claim(path)
    return bool(holder) and is_stale(holder) and _take_over(path, holder)


def held_by_other(path: Path) -> dict[str, Any] | None:
    """The holder of a live claim (not ours, not stale), or None."""
    holder = read_claim(path)
    if holder is None or (holder and is_stale(holder)):
        return None
    if holder.get("pid") == os.getpid() and holder.get("host") == platform.node():
        return None
    return holder


def wait_and_acquire(path: Path, *, poll_s: float = 0.2, timeout_s: float = 600.0) -> Claim | None:
    """Block until we hold ``path`` (a short critical section such as writing the tables)."""
    deadline = time.monotonic() + timeout_s
    while True:
        claim, _ = acquire(path)
        if claim is not None or time.monotonic() > deadline:
            return claim
        time.sleep(poll_s)
