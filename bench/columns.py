"""The table columns, declared once. Flattening a record, aggregating over seeds, the Markdown and
LaTeX tables, the paper comparison and the W&B run summary all derive from ``COLUMNS``.

A new metric column is one line here, e.g. pixel accuracy as mean ± std over seeds:

    Column("pixel_acc", "metrics.pixel_acc", "mean_std", "pixel acc", percent=True),

Aggregations (over one variant's runs; means and spreads count ``ok`` runs only):
- ``mean_std``: the mean and the sample std over seeds (NAME, NAME_std); the best mean is bold
  and means within one pooled std of it carry a dagger (bench.report).
- ``mean``: the mean.
- ``size``: the first ok run's value, else any run's (size and cost do not depend on training,
  so a failed run still gives them).
- ``count``: how many runs succeeded (``source`` None: it is not a record field).
``paper`` names the Variant field with the paper's published number: the tables put it beside
ours (read from the experiment file when the table is built, never from the record).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

AGGREGATIONS = ("mean_std", "mean", "size", "count")
KNOB_PREFIX = "knob."


@dataclass(frozen=True)
class Column:
    name: str                 # summary column and W&B summary key
    source: str | None        # dotted path in a record ("metrics.miou"); None for "count"
    aggregate: str            # one of AGGREGATIONS
    label: str                # table header ("mIoU"; " (%)" added when percent)
    percent: bool = False
    decimals: int = 2
    paper: str | None = None  # Variant field of the paper's number, e.g. "paper_miou"
    optional: bool = False    # a column only when some record has a value (the CRF's)

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATIONS:
            raise ValueError(f"column {self.name}: unknown aggregation {self.aggregate!r}; valid: {AGGREGATIONS}")

    @property
    def header(self) -> str:
        return f"{self.label} (%)" if self.percent else self.label

    @property
    def std(self) -> str | None:
        """The spread's column, for mean_std columns."""
        return f"{self.name}_std" if self.aggregate == "mean_std" else None

    def value(self, record: dict[str, Any]) -> Any:
        """This column's value in one record (None when absent)."""
        value: Any = record
        for key in (self.source or "").split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def summarize(self, runs: pd.DataFrame, ok: pd.DataFrame) -> dict[str, Any]:
        """This column's summary cells of one variant, from its runs and its ok runs."""
        if self.aggregate == "count":
            return {self.name: len(ok)}
        values = numeric(ok[self.name])
        if self.aggregate == "mean_std":
            return {self.name: values.mean(), self.std: values.std(ddof=1)}
        if self.aggregate == "mean":
            return {self.name: values.mean()}
        return {self.name: first(ok[self.name]) if values.notna().any() else first(runs[self.name])}


COLUMNS = (
    Column("miou", "metrics.miou", "mean_std", "mIoU", percent=True, paper="paper_miou"),
    Column("n_seeds", None, "count", "seeds", decimals=0),
    Column("miou_crf", "metrics.miou_crf", "mean_std", "mIoU CRF", percent=True, paper="paper_miou_crf",
           optional=True),
    Column("fps", "speed.fps", "mean", "fps", decimals=1),
    Column("params_m", "params_m", "size", "params (M)"),
    Column("gflops", "gflops", "size", "GFLOPs"),
)
# what a summary holds besides the variant, its knobs and the columns above
BOOKKEEPING = ("n_failed", "status")


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """One run as a flat row: names, status, every column with a source, ``knob.NAME`` per knob."""
    row: dict[str, Any] = {"experiment": record["experiment"], "variant": record["variant"],
                           "seed": record["seed"], "status": record["status"], "error": record.get("error")}
    row.update({c.name: c.value(record) for c in COLUMNS if c.source})
    for knob, value in (record.get("knobs") or {}).items():
        row[f"{KNOB_PREFIX}{knob}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return row


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The records as a DataFrame, one row per (variant, seed) in the records' order."""
    return pd.DataFrame([flatten_record(r) for r in records])


def present(runs: pd.DataFrame) -> list[Column]:
    """The columns of a summary of these runs: every column, an optional one only when some run
    has a value."""
    return [c for c in COLUMNS if not c.optional
            or (c.name in runs.columns and numeric(runs[c.name]).notna().any())]


def summary_columns(columns: list[Column], knobs: list[str]) -> list[str]:
    """The summary's column order: variant, knobs, each column (its std after it), the paper's
    numbers, then the bookkeeping."""
    names = [name for c in columns for name in (c.name, c.std) if name]
    papers = [c.paper for c in columns if c.paper]
    return ["variant", *knobs, *names, *papers, *BOOKKEEPING]


def reserved_names() -> frozenset[str]:
    """Summary column names that are not knobs: a knob of the same name keeps its ``knob.`` prefix."""
    return frozenset(summary_columns(list(COLUMNS), []))


def wandb_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A run's numbers for its W&B summary: every column a record holds."""
    return {c.name: c.value(record) for c in COLUMNS if c.source}


def numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(float)


def first(values: pd.Series) -> float:
    present_values = numeric(values).dropna()
    return float(present_values.iloc[0]) if len(present_values) else math.nan
