"""`bench scorecard`: how many of the papers' findings our tables reproduce.

Each experiment file names the findings of its paper table that its rows test
(``Experiment.findings``), each a few claims about the rows: ``Better(a, b)``, row a beats row b,
and ``CrfGain()``, the dense CRF gains at least a point on every row. The rule is issue 17's: a
claim "A > B" holds when mean(A) - mean(B) is larger than the pooled std of the two rows over
their seeds, s_p = sqrt(((n1-1)·s1² + (n2-1)·s2²) / (n1+n2-2)) (bench.report.pooled_std, the one
behind the tables' † mark); with one seed in each row s_p is undefined and the claim does not
hold. A CRF gain holds when mean mIoU after CRF - mean mIoU before is at least ``min_points`` on
every row. A finding holds when all its claims hold. Means and stds are over each variant's ok
runs, aggregated as the tables aggregate them (bench.tables.summarize); an experiment without
records is "not run", and its findings count as not holding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.columns import COLUMNS
from bench.errors import BenchError
from bench.registry import Experiment, experiments
from bench.report import format_number, pooled_std
from bench.results import load_records
from bench.results_dir import ResultsDir

_MEAN_STD = {c.name: c for c in COLUMNS if c.aggregate == "mean_std"}  # the columns a claim can compare


class _Gap(Exception):
    """A number a claim needs is missing (a row not run, all its runs failed, no CRF column)."""


def _stats(table: pd.DataFrame, variant: str, column: str) -> tuple[float, float, int]:
    """(mean, std, ok runs) of ``column`` in ``variant``'s row; _Gap naming what is missing."""
    status = table.at[variant, "status"]
    if status != "ok":
        raise _Gap(f"{variant}: {'no records' if pd.isna(status) else 'no ok runs'}")
    mean = table.at[variant, column] if column in table.columns else math.nan
    if pd.isna(mean):
        raise _Gap(f"{variant}: no {_MEAN_STD[column].label}")
    return float(mean), float(table.at[variant, f"{column}_std"]), int(table.at[variant, "n_seeds"])


def _signed(value: float) -> str:
    text = format_number(value)
    return text if text.startswith("-") else "+" + text


@dataclass(frozen=True)
class Better:
    """Row ``a`` beats row ``b`` in ``column`` (mIoU before CRF; ``"miou_crf"``: after CRF) by more
    than their pooled std over seeds."""

    a: str
    b: str
    column: str = "miou"

    def __post_init__(self) -> None:
        if self.column not in _MEAN_STD:
            raise ValueError(f"Better({self.a!r}, {self.b!r}): column {self.column!r} is not a "
                             f"mean ± std column; valid: {', '.join(_MEAN_STD)}")

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def check(self, table: pd.DataFrame) -> tuple[bool, str]:
        mean_a, std_a, n_a = _stats(table, self.a, self.column)
        mean_b, std_b, n_b = _stats(table, self.b, self.column)
        s_p = pooled_std(std_a, n_a, std_b, n_b)
        difference = mean_a - mean_b
        text = f"{self.a} {format_number(mean_a)} vs {self.b} {format_number(mean_b)}: {_signed(difference)}"
        if math.isnan(s_p):
            return False, f"{text}, s_p undefined (one seed each)"
        holds = difference > s_p
        return holds, f"{text} {'>' if holds else '<='} s_p {format_number(s_p)}"


@dataclass(frozen=True)
class CrfGain:
    """On every row of the experiment, mean mIoU after CRF - mean mIoU before >= ``min_points``."""

    min_points: float = 1.0

    @property
    def variants(self) -> tuple[str, ...]:
        return ()  # every row, none by name

    def check(self, table: pd.DataFrame) -> tuple[bool, str]:
        rows = [self._row(table, variant) for variant in table.index]
        return all(holds for holds, _ in rows), "; ".join(text for _, text in rows)

    def _row(self, table: pd.DataFrame, variant: str) -> tuple[bool, str]:
        try:
            before, after = _stats(table, variant, "miou")[0], _stats(table, variant, "miou_crf")[0]
        except _Gap as gap:
            return False, str(gap)
        holds = after - before >= self.min_points
        return holds, (f"{variant} {format_number(before)} -> {format_number(after)}: {_signed(after - before)} "
                       f"{'>=' if holds else '<'} {format_number(self.min_points)}")


@dataclass(frozen=True)
class Finding:
    """A paper's finding as our rows can test it: where it is (``paper``), what it says
    (``claim``, the papers' names) and the claims that must all hold."""

    paper: str
    claim: str
    claims: tuple[Any, ...]  # Better and CrfGain

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for c in self.claims for name in c.variants))

    def check(self, experiment: str, table: pd.DataFrame | None) -> FindingResult:
        """Its result on ``table`` (the experiment's summary indexed by variant, one row per
        variant of the experiment file); None: the experiment has no records."""
        if table is None:
            return FindingResult(experiment, self.paper, self.claim, (), holds=False, run=False)
        evidence = []
        for claim in self.claims:
            try:
                evidence.append(claim.check(table))
            except _Gap as gap:
                evidence.append((False, str(gap)))
        return FindingResult(experiment, self.paper, self.claim, tuple(text for _, text in evidence),
                             holds=all(holds for holds, _ in evidence))


@dataclass(frozen=True)
class FindingResult:
    experiment: str
    paper: str
    claim: str
    evidence: tuple[str, ...]  # one entry per claim; none when not run
    holds: bool
    run: bool = True           # False: no records of the experiment

    @property
    def verdict(self) -> str:
        return "no records" if not self.run else "yes" if self.holds else "no"


def table_of(experiment: Experiment, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The tables' summary indexed by variant, one row per variant of the experiment file (a row
    without records has status NaN), none for a variant since removed from the file."""
    # imported here: bench.tables loads matplotlib (the plots); the experiment files import this
    # module for its claims, and loading the registry need not load matplotlib
    from bench.tables import summarize

    return summarize(experiment, records).set_index("variant").reindex(experiment.variant_names())


def scorecard(results_dir: str | Path | ResultsDir) -> list[FindingResult]:
    """Every registered finding checked on the records in ``results_dir``, in the registry's order."""
    results = ResultsDir.of(results_dir)
    if not results.root.is_dir():
        problem = "is not a folder" if results.root.exists() else "does not exist"
        raise BenchError(f"results dir {results.root} {problem}; pass --results-dir DIR, the folder holding runs/")
    found = []
    for name, experiment in experiments().items():
        records = load_records(results, name)
        table = table_of(experiment, records) if records else None
        found.extend(finding.check(name, table) for finding in experiment.findings)
    return found


def to_markdown(results: list[FindingResult]) -> str:
    """The scorecard as a Markdown section: a heading, the rule, one row per finding, the total."""
    lines = [
        "## Scorecard: the papers' findings in our tables",
        "",
        'A claim "A > B" holds when mean(A) - mean(B) is larger than the pooled std of the two rows over',
        "their seeds, s_p = sqrt(((n1-1)·s1² + (n2-1)·s2²) / (n1+n2-2)) (issue 17); a CRF gain, when on",
        "every row mean mIoU after CRF - mean mIoU before is at least the points the claim names. A",
        "finding holds when all its claims hold. mIoU in %, before CRF unless the claim says after CRF;",
        "differences are of the unrounded means (so may differ by 0.01 from those of the printed ones).",
        "Generated by `bench scorecard` from the run records.",
        "",
        "| experiment | paper | claim | evidence | holds |",
        "| :-- | :-- | :-- | :-- | :-- |",
    ]
    for r in results:
        cells = (r.experiment, r.paper, r.claim, "; ".join(r.evidence) or "-", r.verdict)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    holding = [r.experiment for r in results if r.holds]
    not_run = [r.experiment for r in results if not r.run]
    total = f"{len(holding)} of {len(results)} findings hold" + (f" ({', '.join(holding)})" if holding else "")
    total += f"; {len(not_run)} of {len(results)} not run" + (f" ({', '.join(not_run)})" if not_run else "")
    lines += ["", total + "."]
    return "\n".join(lines) + "\n"

