"""Trained weights shared between experiments: the papers' tables share networks.

DeepLab-LargeFOV is a row of five of our experiments (v1 Table 2 twice, v2 Table 3, the v1 MSc
table, the CRF comparison) and the default v3 of four. A run whose training is the same as an
already recorded run of another experiment or variant - same version, knobs, protocol, data,
seeds, starting weights and precision - would train the same network again (bit-identical on the
CPU, tests/test_reliability.py). The sweep loads that run's checkpoint instead and only evaluates:
mIoU, the CRF with this experiment's parameters, pictures, fps. The record names the run whose
weights it took (env.weights_from) and has no training time.

A checkpoint is reused only when it carries its own training identity and that matches, so a
checkpoint written before this module or for another config is never taken for this one, and
only when its bytes are those its record names (``checkpoint_sha256``): a file altered or replaced
after the run is refused with one warning line, and the run trains. The
identity holds no code version: after a change to the training code, delete
RESULTS_DIR/checkpoints to retrain everything (the same policy as records, which a rerun skips).
Only single-process trainings are reused, by single-process runs: a DDP run splits the batch and
the data order differently, so its weights are not what one process would train.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench.checkpoints import changed_since_record, read_checkpoint
from bench.errors import BenchError
from bench.results import load_records
from bench.results_dir import ResultsDir
from bench.run_config import RunConfig

# what decides the trained weights; the rest of a RunConfig (names, CRF, test-time inference,
# the learning curve) only decides how they are evaluated
TRAINING_FIELDS = ("version", "knobs", "protocol", "data", "data_seed", "seed", "backbone_weights", "precision")


def training_identity(cfg: RunConfig) -> dict[str, Any]:
    """The TRAINING_FIELDS of the run's identity (run_key: the starting weights by name and
    sha256, not by where this machine keeps the file)."""
    config = cfg.run_key()
    return {name: config[name] for name in TRAINING_FIELDS}


@dataclass(frozen=True)
class Twin:
    name: str         # EXPERIMENT/VARIANT/seed-N of the run that trained the weights
    checkpoint: Path
    state_dict: dict  # its weights, as read once (the file may be rewritten later)


def trained_twin(results: ResultsDir, cfg: RunConfig) -> Twin | None:
    """An ok single-process run of another experiment or variant with ``cfg``'s training, whose
    checkpoint carries the same training identity; None when there is none. Records that do not
    read (corrupt, another schema) are not twins; their own experiment reports them."""
    wanted = training_identity(cfg)
    for record in load_records(results, skip_unreadable=True):
        try:
            other = RunConfig.from_dict(record["config"])
        except (BenchError, KeyError, TypeError):
            continue
        if (record["status"] != "ok" or (other.experiment, other.variant) == (cfg.experiment, cfg.variant)
                or (record.get("env") or {}).get("world_size", 1) != 1 or training_identity(other) != wanted):
            continue
        checkpoint = results.checkpoint(other.experiment, other.variant, other.seed)
        payload = _payload(checkpoint, record.get("checkpoint_sha256"))
        if payload is not None and payload.get("training") == wanted:
            return Twin(f"{other.experiment}/{other.variant}/seed-{other.seed}", checkpoint, payload["state_dict"])
    return None


def _payload(checkpoint: Path, expected_sha256: str | None) -> dict[str, Any] | None:
    """The checkpoint's content, or None when it is missing, unreadable or not the file its record
    names (then one warning line: the run trains instead of trusting altered weights)."""
    if not checkpoint.is_file():
        return None
    try:
        payload, sha256 = read_checkpoint(checkpoint)
    except Exception:  # unreadable: not a twin (crf-search reports broken checkpoints itself)
        return None
    changed = changed_since_record(checkpoint, sha256, expected_sha256)
    if changed:
        tqdm.write(f"warning: {changed}; not reusing it", file=sys.stderr)
        return None
    return payload if isinstance(payload, dict) and "state_dict" in payload else None
