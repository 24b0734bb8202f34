"""An experiment's tables and plots, rebuilt from its records alone (`bench table`, the end of a
sweep, the CRF search). Imports no training stack: no Lightning, no run.

What a table shows that is not a measurement comes from the experiment file when the table is
built: the rows' order (the variants' order in the file) and the paper's published numbers. The
title names the data the runs were evaluated on; the paper columns name the paper's dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench import plots, report
from bench.columns import runs_frame
from bench.data.spec import class_names_of, evaluated_on
from bench.errors import BenchError
from bench.registry import Experiment
from bench.results import load_records
from bench.results_dir import ResultsDir


def summarize(experiment: Experiment, records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant, in the experiment file's order, with the file's paper numbers."""
    return report.aggregate(runs_frame(records), order=experiment.variant_names(),
                            paper=experiment.paper_numbers())


def write_tables(experiment: Experiment, results: str | Path | ResultsDir, *, scale: str | None = None,
                 records: list[dict[str, Any]] | None = None) -> dict[str, Path]:
    """EXPERIMENT.csv/.md/.tex and the plots from ``records`` (read from the results dir when
    not given); their paths by kind: csv, md, tex, png [, trimap, curve, per-class]."""
    results = ResultsDir.of(results)
    name = experiment.name
    records = load_records(results, name) if records is None else records
    if not records:
        raise BenchError(f"no records of {name} under {results.root}/runs; run `bench run {name}` first")
    summary = summarize(experiment, records)
    scale = scale or _the_one(records, "scale") or "mixed"
    data, class_names = _evaluated_on(records)
    title = f"{experiment.paper_table} - ours on {data}"
    tables = report.write_tables(summary, results, name, title=title, scale=scale,
                                 paper_data=experiment.paper_data)
    subtitle = f"(scale: {scale})"
    ok = summary[summary["status"] == "ok"]
    drawn = {
        "png": None if ok.empty else plots.plot_tradeoff(ok, results.table(name, ".png"), title=f"{title} {subtitle}"),
        "trimap": plots.plot_trimap(records, results.table(name, "-trimap.png"), title=f"{name}: trimap {subtitle}"),
        "curve": plots.plot_learning_curves(records, results.table(name, "-curve.png"),
                                            title=f"{name}: learning curves {subtitle}"),
        "per-class": plots.plot_per_class(records, summary, results.table(name, "-per-class.png"),
                                          title=f"{name}: IoU per class {subtitle}",
                                          class_names=class_names),
    }
    tables.update({kind: path for kind, path in drawn.items() if path is not None})
    return tables


def _the_one(records: list[dict[str, Any]], key: str) -> Any:
    """The value of a config field that every record shares; None when they differ."""
    values = {r["config"].get(key) for r in records}
    return values.pop() if len(values) == 1 else None


def _evaluated_on(records: list[dict[str, Any]]) -> tuple[str, tuple[str, ...] | None]:
    """(what the runs were evaluated on, its class names); one dataset at several paths is one."""
    specs = {r["config"].get("data") for r in records}
    if None in specs or len({evaluated_on(s) for s in specs}) != 1:
        return "mixed data", None
    spec = specs.pop()
    return evaluated_on(spec), class_names_of(spec)
