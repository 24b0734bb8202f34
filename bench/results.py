"""The run record: one JSON file per finished (experiment, variant, seed), and loading them.

Layout (DESIGN.md contract): RESULTS_DIR/runs/EXPERIMENT/VARIANT/seed-N.json.
Records are written atomically (temporary file in the same folder, fsync, os.replace), so a
killed run leaves either the whole record or none. Tables are only ever built from records.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError

SCHEMA_VERSION = 1

# Keys every record must hold; anything else is a foreign or corrupt file.
REQUIRED_KEYS = ("schema", "experiment", "variant", "seed", "status", "config", "metrics")


def record_path(results_dir: str | Path, experiment: str, variant: str, seed: int) -> Path:
    return Path(results_dir) / "runs" / experiment / variant / f"seed-{seed}.json"


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_record(results_dir: str | Path, record: dict[str, Any]) -> Path:
    path = record_path(results_dir, record["experiment"], record["variant"], record["seed"])
    return write_json_atomic(path, record)


def read_record(path: str | Path) -> dict[str, Any]:
    """Read and validate one record; a corrupt or foreign file is a BenchError naming it."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BenchError(f"corrupt run record {path}: {err}; delete it to rerun that run") from err
    if not isinstance(record, dict):
        raise BenchError(f"corrupt run record {path}: expected a JSON object; delete it to rerun that run")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise BenchError(
            f"not a deeplab-bench run record: {path} lacks {', '.join(missing)}; "
            "delete or move it out of the runs folder"
        )
    if record["schema"] != SCHEMA_VERSION:
        raise BenchError(f"run record {path} has schema {record['schema']}, this version reads {SCHEMA_VERSION}")
    return record


def find_records(results_dir: str | Path, experiment: str) -> list[Path]:
    return sorted((Path(results_dir) / "runs" / experiment).glob("*/seed-*.json"))


def load_records(results_dir: str | Path, experiment: str) -> pd.DataFrame:
    """All records of one experiment as a flat DataFrame, one row per (variant, seed).

    Columns: experiment, variant, variant_index, seed, status, error, the metrics (miou, miou_crf,
    pixel_acc, mean_acc), speed (fps, fps_iqr), params_m, gflops, train_seconds, paper_miou,
    paper_miou_crf, and one ``knob.NAME`` column per knob of the variant. mIoU is in percent.
    """
    rows = [flatten_record(read_record(p)) for p in find_records(results_dir, experiment)]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["variant_index", "seed"], kind="stable").reset_index(drop=True)
    return frame


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics") or {}
    speed = record.get("speed") or {}
    paper = record.get("paper") or {}
    row: dict[str, Any] = {
        "experiment": record["experiment"],
        "variant": record["variant"],
        "variant_index": record.get("variant_index", 0),
        "seed": record["seed"],
        "status": record["status"],
        "error": record.get("error"),
        "miou": metrics.get("miou"),
        "miou_crf": metrics.get("miou_crf"),
        "pixel_acc": metrics.get("pixel_acc"),
        "mean_acc": metrics.get("mean_acc"),
        "fps": speed.get("fps"),
        "fps_iqr": speed.get("fps_iqr"),
        "params_m": record.get("params_m"),
        "gflops": record.get("gflops"),
        "train_seconds": (record.get("env") or {}).get("train_seconds"),
        "paper_miou": paper.get("miou"),
        "paper_miou_crf": paper.get("miou_crf"),
    }
    for knob, value in (record.get("knobs") or {}).items():
        row[f"knob.{knob}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return row
