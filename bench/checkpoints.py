"""Trained weights of each run, kept beside the records so evaluation can be redone without training.

ResultsDir.checkpoint (RESULTS_DIR/checkpoints/EXPERIMENT/VARIANT/seed-N.pt), written atomically,
holds {"version", "knobs", "state_dict"} and "training" (what made the weights, bench.reuse): plain tensors and JSON types only, so
it loads with ``torch.load(weights_only=True)``. The folder is git-ignored (bulky); records and
tables do not depend on it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.atomic import atomic_write
from bench.errors import BenchError
from bench.models import build_model


def save_checkpoint(path: Path, model: nn.Module, version: str, knobs: dict,
                    training: dict | None = None) -> Path:
    """``training``: the run's training identity (bench.reuse), so the weights can serve another
    experiment's identical run."""
    payload = {"version": version, "knobs": knobs, "state_dict": model.state_dict()}
    if training is not None:
        payload["training"] = training
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: Path, version: str, knobs: dict) -> nn.Module:
    """The model of a run; a checkpoint of another variant or a broken file is a BenchError."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise BenchError(f"no checkpoint {path}; run `bench run` for this variant first") from err
    except Exception as err:
        raise BenchError(f"unreadable checkpoint {path}: {type(err).__name__}") from err
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
