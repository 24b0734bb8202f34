"""The run record: one JSON file per finished (experiment, variant, seed), and the one reader.

Records live at ResultsDir.record() (RESULTS_DIR/runs/EXPERIMENT/VARIANT/seed-N.json, a DESIGN.md
contract) and are written atomically (bench.atomic), so a killed run leaves either the whole
record or none. Tables are only ever built from records. ``load_records`` reads each file once;
the tables, the plots, the sweep's finished check, twin reuse and the CRF search all take what
it returns.

A record holds what identifies the run (``config``, a RunConfig) and what it measured. Its
``paper`` numbers are provenance only (what the experiment file said on the day it ran): tables
read the paper's numbers and the variants' order from the experiment file when they are built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.atomic import write_json_atomic
from bench.errors import BenchError
from bench.results_dir import ResultsDir

SCHEMA_VERSION = 1

# Keys every record must hold; anything else is a foreign or corrupt file.
REQUIRED_KEYS = ("schema", "experiment", "variant", "seed", "status", "config", "metrics")


def write_record(results: str | Path | ResultsDir, record: dict[str, Any]) -> Path:
    path = ResultsDir.of(results).record(record["experiment"], record["variant"], record["seed"])
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


def load_records(results: str | Path | ResultsDir, experiment: str | None = None, *,
                 skip_unreadable: bool = False) -> list[dict[str, Any]]:
    """Every record of ``experiment`` (all experiments when None), each file read once, sorted
    by path. A corrupt record raises its BenchError, or is left out with ``skip_unreadable``
    (twin reuse: another experiment's broken record is that experiment's to report)."""
    records = []
    for path in ResultsDir.of(results).record_paths(experiment):
        try:
            records.append(read_record(path))
        except BenchError:
            if not skip_unreadable:
                raise
    return records
