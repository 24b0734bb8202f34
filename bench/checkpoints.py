"""Trained weights of each run, kept beside the records so evaluation can be redone without training.

ResultsDir.checkpoint (RESULTS_DIR/checkpoints/EXPERIMENT/VARIANT/seed-N.pt), written atomically,
holds {"version", "knobs", "state_dict"} and "training" (what made the weights, bench.reuse):
plain tensors and JSON types only, so
it loads with ``torch.load(weights_only=True)``. The folder is git-ignored (bulky); records and
tables do not depend on it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.atomic import atomic_write
from bench.errors import BenchError
from bench.models import build_model


def save_checkpoint(path: Path, model: nn.Module, version: str, knobs: dict,
                    training: dict | None = None) -> str:
    """Write the run's weights atomically; the sha256 of the bytes written, which the record keeps
    (twin reuse and crf-search check the file against it). ``training``: the run's training
    identity (bench.reuse), so the weights can serve another experiment's identical run."""
    payload = {"version": version, "knobs": knobs, "state_dict": model.state_dict()}
    if training is not None:
        payload["training"] = training
    buffer = io.BytesIO()  # torch.save to a file path reports a full disk as a RuntimeError of its
    torch.save(payload, buffer)  # C++ writer; Python's own write raises the OSError that names it
    data = buffer.getvalue()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return hashlib.sha256(data).hexdigest()


def read_checkpoint(path: Path) -> tuple[Any, str]:
    """(payload, sha256 of the file's bytes), the file read once; torch.load's errors pass through."""
    data = Path(path).read_bytes()
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), hashlib.sha256(data).hexdigest()


def changed_since_record(path: Path, sha256: str | None, expected: str | None) -> str | None:
    """One line when a checkpoint's bytes are not the ones its record names (None when they are,
    or when the record predates checkpoint hashes and names none)."""
    if expected is None or sha256 == expected:
        return None
    return (f"checkpoint {path} changed after its record was written (sha256 {sha256[:12]}..., "
            f"the record names {expected[:12]}...)")


def load_checkpoint(path: Path, version: str, knobs: dict, *, sha256: str | None = None) -> nn.Module:
    """The model of a run; a checkpoint of another variant, one whose bytes are not those its
    record names (``sha256``), or a broken file is a BenchError."""
    try:
        payload, actual = read_checkpoint(path)
    except FileNotFoundError as err:
        raise BenchError(f"no checkpoint {path}; run `bench run` for this variant first") from err
    except Exception as err:
        raise BenchError(f"unreadable checkpoint {path}: {type(err).__name__}") from err
    changed = changed_since_record(path, actual, sha256)
    if changed:
        raise BenchError(f"{changed}; delete the run's record to retrain it")
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise BenchError(f"checkpoint {path} is not a deeplab-bench checkpoint "
                         "(expected a dict with version, knobs, state_dict)")
    if payload.get("version") != version or payload.get("knobs") != knobs:
        raise BenchError(f"checkpoint {path} is of {payload.get('version')} {payload.get('knobs')}, "
                         f"not of {version} {knobs}")
    model = build_model(version, **knobs)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as err:  # torch's message spans lines
        raise BenchError(f"checkpoint {path} does not fit {version} {knobs}: "
                         f"{' '.join(str(err).split())[:300]}") from err
    return model.eval()
