"""Comparison tables from run records: one row per variant, aggregated over seeds.

``aggregate`` turns the per-run frame of the records (bench.columns.runs_frame) into the summary;
``write_tables`` writes it as CSV (full precision, for programs), Markdown (for the terminal and
READMEs) and a LaTeX ``table`` fragment (booktabs, for pasting into a paper).

Numbers are printed as the papers print them: mIoU in percent with two decimals, rounded half away
from zero (``format(precision=2)`` and f-strings round the binary value half-to-even, so 65.125
would print as 65.12). Only runs with status ``ok`` count toward means; the spread is the sample
standard deviation over seeds (ddof=1), undefined (NaN, printed ``-``) for a single seed.

Beside the best mean (bold), rows whose mean is within one pooled standard deviation of the best
are marked with a dagger: the difference is inside run-to-run noise. The pooled std of two rows
is the standard one, s_p = sqrt(((n1 - 1) s1^2 + (n2 - 1) s2^2) / (n1 + n2 - 2)), over their seeds.

The papers' numbers sit beside ours. At scale ``paper`` a delta column gives ours - paper; at
other scales (tiny: synthetic data, narrow networks) the paper column is only the reference trend,
so instead each row shows its rank among the rows with both numbers, ours/paper, and a line under
the table says whether our ordering agrees with the paper's (Kendall tau-b over those rows).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from bench.columns import COLUMNS, KNOB_PREFIX, numeric, present, reserved_names, summary_columns
from bench.results_dir import ResultsDir

_MISSING = "-"
DAGGER = "†"  # markdown; LaTeX gets $^\dagger$
# the columns with the paper's number beside ours: (mean, paper, label) per column
_COMPARED = tuple((c.name, c.paper, c.label) for c in COLUMNS if c.paper)


# ---------------------------------------------------------------------------- aggregation


def aggregate(runs: pd.DataFrame, *, order: list[str] | None = None,
              paper: dict[str, dict[str, float | None]] | None = None) -> pd.DataFrame:
    """One row per variant, aggregated over seeds (bench.columns says how, column by column).

    ``runs``: bench.columns.runs_frame of the records. Rows follow ``order`` (the experiment
    file's variant names); variants not in it (since removed from the file) come after, in the
    runs' order. ``paper``: variant -> {"paper_miou": ..., "paper_miou_crf": ...}, the
    experiment file's numbers (NaN where absent).

    Columns: variant, the knobs whose values differ between variants (without the ``knob.``
    prefix), each present column of bench.columns (mean_std ones with NAME_std after), the paper
    columns, n_failed, status. A variant whose runs all failed keeps its row, with NaN metrics
    and status ``failed``.
    """
    columns = present(runs)
    if runs.empty:
        return pd.DataFrame(columns=summary_columns(columns, []))

    knob_cols = [c for c in runs.columns if c.startswith(KNOB_PREFIX)]
    seen = list(dict.fromkeys(runs["variant"]))
    variants = [v for v in (order or []) if v in seen] + [v for v in seen if v not in (order or [])]
    rows = []
    for variant in variants:
        group = runs[runs["variant"] == variant]
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"variant": variant}
        for col in knob_cols:
            row[col] = group[col].iloc[0]
        for column in columns:
            row.update(column.summarize(group, ok))
        published = (paper or {}).get(variant, {})
        for column in columns:
            if column.paper:
                value = published.get(column.paper)
                row[column.paper] = math.nan if value is None else float(value)
        row["n_failed"] = int((group["status"] != "ok").sum())
        row["status"] = "ok" if len(ok) else "failed"
        rows.append(row)
    summary = pd.DataFrame(rows)

    # Keep the knobs that are compared (differ between variants); name them without the prefix.
    varying = [c for c in knob_cols if summary[c].map(_knob_key).nunique() > 1]
    renames = {}
    for col in varying:
        name = col[len(KNOB_PREFIX):]
        renames[col] = col if name in reserved_names() else name
    summary = summary.rename(columns=renames)
    summary = summary[summary_columns(columns, [renames[c] for c in varying])]
    counts = {c.name: int for c in columns if c.aggregate == "count"}
    return summary.astype({**counts, "n_failed": int}).reset_index(drop=True)


def _knob_key(value: Any) -> str:
    """Comparable form of a knob value (NaN equal to NaN, 8 equal to 8.0)."""
    if _is_missing(value):
        return "<missing>"
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))
    return repr(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------- number formatting


def format_number(value: Any, decimals: int = 2) -> str:
    """``value`` with ``decimals`` digits, ties rounded half away from zero; ``-`` when missing.

    The decimal written by ``repr`` is what is rounded, so 65.125 gives 65.13 and 0.285 (stored
    as 0.28499999...) gives 0.29, as a reader rounding the printed number would.
    """
    if _is_missing(value) or (not isinstance(value, (int, float)) and pd.isna(value)):
        return _MISSING
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    quantum = Decimal(1).scaleb(-decimals)
    rounded = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0.00"
    return f"{rounded:f}"


def _format_knob(value: Any) -> str:
    if _is_missing(value):
        return _MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.startswith("["):
        try:  # lists are stored as JSON; print them as the papers do, e.g. (1, 2, 4)
            items = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(items, list):
            return "(" + ", ".join(str(v) for v in items) + ")"
    return str(value)


def _knob_columns(summary: pd.DataFrame) -> list[str]:
    return [c for c in summary.columns if c != "variant" and c not in reserved_names()]


def _best_rows(summary: pd.DataFrame, column: str) -> pd.Series:
    """Rows whose printed mean equals the best printed mean of ``column`` (ties all win)."""
    printed = summary[column].map(format_number)
    values = printed.map(lambda s: Decimal(s) if s not in (_MISSING, "inf", "-inf") else None)
    present = [v for v in values if v is not None]
    if not present:
        return pd.Series(False, index=summary.index)
    best = max(present)
    return values.map(lambda v: v is not None and v == best)


def pooled_std(std_a: Any, n_a: int, std_b: Any, n_b: int) -> float:
    """The pooled sample std of two groups, sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2) / (n_a+n_b-2)).

    A group of one run adds no degrees of freedom (its NaN std counts with weight 0); NaN when
    the two together have fewer than three runs.
    """
    dof = n_a + n_b - 2
    if dof <= 0:
        return math.nan
    total = 0.0
    for std, n in ((std_a, n_a), (std_b, n_b)):
        if n > 1:
            if _is_missing(std):
                return math.nan
            total += (n - 1) * float(std) ** 2
    return math.sqrt(total / dof)


def _within_noise(summary: pd.DataFrame, column: str, std_column: str) -> pd.Series:
    """Rows not best in ``column`` whose mean is within one pooled std of the (first) best row."""
    best = _best_rows(summary, column)
    marked = pd.Series(False, index=summary.index)
    if not best.any():
        return marked
    b = summary.loc[best[best].index[0]]
    n = summary["n_seeds"] if "n_seeds" in summary.columns else pd.Series(1, index=summary.index)
    for i, row in summary.iterrows():
        if best[i] or _is_missing(row[column]):
            continue
        s_p = pooled_std(row[std_column], int(n[i]), b[std_column], int(n[b.name]))
        marked[i] = not math.isnan(s_p) and abs(float(b[column]) - float(row[column])) <= s_p
    return marked


@dataclass(frozen=True)
class Ordering:
    """Our ordering of the rows vs the paper's, over the rows with both numbers."""

    label: str                 # "mIoU" or "mIoU CRF"
    ranks: dict[int, tuple[int, int]]  # summary index -> (our rank, the paper's rank), 1 = best
    tau: float                 # Kendall tau-b; NaN when undefined (fewer than 2 rows, all tied)
    discordant: list[tuple[str, str]]  # pairs the paper orders that we order oppositely or tie

    @property
    def agrees(self) -> bool:
        """Every pair the paper orders, we order the same way (a tie of ours does not agree)."""
        return len(self.ranks) >= 2 and not self.discordant

    def sentence(self) -> str:
        k = len(self.ranks)
        if k < 2:
            return (f"Ordering by {self.label} vs the paper: not compared "
                    f"({k} row(s) with both our and the paper's number).")
        text = (f"Ordering by {self.label} agrees with the paper: {'yes' if self.agrees else 'no'} "
                f"(Kendall tau = {format_number(self.tau)} over {k} rows")
        if self.discordant:
            text += "; not as in the paper: " + ", ".join(f"{a} vs {b}" for a, b in self.discordant)
        return text + ")."


def ordering(summary: pd.DataFrame, column: str = "miou", paper_column: str = "paper_miou",
             label: str = "mIoU") -> Ordering:
    """Ranks (1 = highest; ties share the better rank) and Kendall tau-b of our means against the
    paper's numbers, over the rows that succeeded and have both."""
    ok = summary.get("status", pd.Series("ok", index=summary.index)) == "ok"
    ours, paper = numeric(summary[column]), numeric(summary[paper_column])
    rows = [i for i in summary.index if ok[i] and not math.isnan(ours[i]) and not math.isnan(paper[i])]
    ours, paper = ours[rows], paper[rows]

    def rank(values: pd.Series) -> pd.Series:
        return values.rank(ascending=False, method="min").astype(int)

    ranks = {i: (int(r), int(q)) for i, r, q in zip(rows, rank(ours), rank(paper))}
    concordant = discordant = ties_ours = ties_paper = 0
    swapped = []
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            i, j = rows[a], rows[b]
            x, y = _sign(ours[i] - ours[j]), _sign(paper[i] - paper[j])
            ties_ours += x == 0
            ties_paper += y == 0
            if x * y > 0:
                concordant += 1
            elif x * y < 0:
                discordant += 1
            if y != 0 and x != y:  # the paper orders the pair; we swap or tie it
                swapped.append((str(summary.at[i, "variant"]), str(summary.at[j, "variant"])))
    pairs = len(rows) * (len(rows) - 1) // 2
    denominator = math.sqrt((pairs - ties_ours) * (pairs - ties_paper))
    tau = (concordant - discordant) / denominator if denominator > 0 else math.nan
    return Ordering(label=label, ranks=ranks, tau=tau, discordant=swapped)


def orderings(summary: pd.DataFrame) -> list[Ordering]:
    """The ordering of mIoU, and of mIoU after CRF where the CRF is evaluated."""
    return [ordering(summary, col, paper, label) for col, paper, label in _COMPARED
            if col in summary.columns and paper in summary.columns]


def _sign(value: float) -> int:
    return int(value > 0) - int(value < 0)


def _signed(value: Any) -> str:
    text = format_number(value)
    return "+" + text if text not in (_MISSING, "0.00") and not text.startswith("-") else text


def _display(summary: pd.DataFrame, pm: str, dagger: str = DAGGER, scale: str | None = "tiny",
             paper_data: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The table as strings: (cells, bold mask, labels of the text columns); ``pm`` joins mean
    and std, ``dagger`` marks a mean within one pooled std of the best. One cell column per
    bench.columns column in the summary, then per compared column the paper's number (its header
    names ``paper_data``, the paper's dataset) and at scale ``paper`` our delta to it, otherwise
    the rank ours/paper."""
    failed = summary.get("status", pd.Series("ok", index=summary.index)) == "failed"

    def mean_std(mean_col: str, std_col: str) -> pd.Series:
        noise = _within_noise(summary, mean_col, std_col)

        def cell(mean: Any, std: Any, is_failed: bool, close: bool) -> str:
            if is_failed:
                return "failed"
            if _is_missing(mean):
                return _MISSING
            return f"{format_number(mean)}{pm}{format_number(std)}" + (dagger if close else "")

        cells = [cell(*args) for args in zip(summary[mean_col], summary[std_col], failed, noise)]
        return pd.Series(cells, index=summary.index, dtype=object)

    def numbers(col: str, decimals: int) -> pd.Series:
        return summary[col].map(lambda v: format_number(v, decimals)).astype(object)

    def beside_paper(column) -> None:
        if scale == "paper":
            delta = numeric(summary[column.name]) - numeric(summary[column.paper])
            cells[f"Δ {column.label}"] = pd.Series([_MISSING if f else _signed(d) for d, f in zip(delta, failed)],
                                                    index=summary.index, dtype=object)
        else:
            ranks = ordering(summary, column.name, column.paper, column.label).ranks
            cells[f"rank {column.label}"] = pd.Series(
                [f"{ranks[i][0]}/{ranks[i][1]}" if i in ranks else _MISSING for i in summary.index],
                index=summary.index, dtype=object)

    about = [paper_data] if paper_data else []
    about += [] if scale == "paper" else ["trend"]
    about_text = f" ({', '.join(about)})" if about else ""
    cells: dict[str, pd.Series] = {"variant": summary["variant"].astype(str)}
    text = ["variant"]
    for knob in _knob_columns(summary):  # named as in the summary (knob.NAME where NAME clashes)
        cells[knob] = summary[knob].map(_format_knob).astype(object)
        text.append(knob)
    bold = {label: False for label in cells}
    shown = [c for c in COLUMNS if c.name in summary.columns]
    for column in shown:
        if column.aggregate == "mean_std":
            cells[column.header] = mean_std(column.name, column.std)
            bold[column.header] = _best_rows(summary, column.name)
        elif column.aggregate == "count":
            cells[column.header] = summary[column.name].map(lambda n: str(int(n))).astype(object)
        else:
            cells[column.header] = numbers(column.name, column.decimals)
    for column in shown:
        if column.paper and column.paper in summary.columns:
            cells[f"paper {column.label}{about_text}"] = numbers(column.paper, 2)
            beside_paper(column)
    if "n_failed" in summary.columns and (summary["n_failed"] > 0).any():
        cells["failed runs"] = summary["n_failed"].map(lambda n: str(int(n))).astype(object)

    frame = pd.DataFrame(cells, index=summary.index)
    mask = pd.DataFrame({label: bold.get(label, False) for label in frame.columns}, index=summary.index)
    return frame.reset_index(drop=True), mask.reset_index(drop=True).astype(bool), text


# ---------------------------------------------------------------------------- Markdown


def markdown_table(summary: pd.DataFrame, *, scale: str | None = "tiny", paper_data: str | None = None) -> str:
    """A GitHub pipe table, columns padded so it also reads on a terminal; best mIoU in bold,
    means within one pooled std of the best marked with a dagger."""
    frame, mask, text = _display(summary, " ± ", scale=scale, paper_data=paper_data)
    frame = frame.where(~mask, "**" + frame.astype(str) + "**")
    header = [str(c) for c in frame.columns]
    rows = [[_md_cell(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(h), 3, *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    left = [c in text for c in frame.columns]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(cells, widths, left)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(
        (":" + "-" * (w - 1)) if lft else ("-" * (w - 1) + ":") for w, lft in zip(widths, left)
    ) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------- LaTeX


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def escape_latex(text: str) -> str:
    """Plain text made safe for LaTeX: ``_`` -> ``\\_``, ``%`` -> ``\\%`` and the other specials."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex_table(summary: pd.DataFrame, *, caption: str, label: str, scale: str | None = "tiny",
                paper_data: str | None = None) -> str:
    """A ``table`` fragment (booktabs rules, best mIoU and best mIoU after CRF in bold, means
    within one pooled std of the best marked $^\\dagger$), the ordering vs the paper under it.

    ``caption`` is LaTeX source, inserted as given (escape plain text with :func:`escape_latex`);
    cells and column names are escaped. The fragment needs ``\\usepackage{booktabs}`` and
    ``\\usepackage{graphicx}`` (a table wider than the text is scaled down to ``\\linewidth``).
    """
    frame, mask, text = _display(summary, r" $\pm$ ", dagger=r"$^\dagger$", scale=scale, paper_data=paper_data)
    for col in text:
        frame[col] = frame[col].map(escape_latex)
    # A row starting with "[" would be read as the optional argument of the "\\" before it.
    frame["variant"] = frame["variant"].map(lambda v: "{}" + v if v.startswith("[") else v)
    column_format = "".join("l" if c in text else "r" for c in frame.columns)
    frame.columns = mask.columns = [escape_latex(c).replace("Δ", r"$\Delta$") for c in frame.columns]
    props = mask.map(lambda bold: "textbf:--rwrap;" if bold else "")
    styler = frame.style.hide(axis="index").apply(lambda _: props, axis=None)
    tex = styler.to_latex(
        hrules=True,
        column_format=column_format,
        caption=caption,
        label=label,
        position="htbp",
        position_float="centering",
    )
    # A table wider than the text (knob columns + CRF columns) is scaled down to the text width,
    # never up: pasted into a paper's column, it must not run off the page.
    head, tabular, tail = _split_tabular(tex)
    tex = (head + "\\begingroup\\setbox0=\\hbox{%\n" + tabular + "}%\n"
           "\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\box0}\\else\\box0\\fi\\endgroup\n" + tail)
    notes = [escape_latex(o.sentence()) for o in orderings(summary)]
    if notes:
        block = "\\par\\smallskip\n{\\footnotesize " + " \\\\\n".join(notes) + "}\n"
        head, _, tail = tex.rpartition("\\end{table}")
        tex = head + block + "\\end{table}" + tail
    return tex


def _split_tabular(tex: str) -> tuple[str, str, str]:
    """(before, the tabular environment, after) of a table fragment."""
    start = tex.index("\\begin{tabular}")
    end = tex.index("\\end{tabular}") + len("\\end{tabular}")
    return tex[:start], tex[start:end], tex[end:].lstrip("\n")


def latex_document(fragments: list[str], *, title: str | None = None) -> str:
    """A complete article holding the given table fragments (or ``\\input`` lines), compilable
    with pdflatex. Landscape pages: the tables with CRF columns are wide."""
    body = "\n\n".join(fragment.strip() for fragment in fragments)
    heading = f"\\section*{{{title}}}\n\n" if title else ""
    return (
        "\\documentclass{article}\n"
        "\\usepackage[T1]{fontenc}\n"
        "\\usepackage[landscape,margin=1.5cm]{geometry}\n"
        "\\usepackage{booktabs}\n"
        "\\usepackage{graphicx}\n"
        "\\begin{document}\n\n"
        f"{heading}{body}\n\n"
        "\\end{document}\n"
    )


def write_document(results: str | Path | ResultsDir, experiments: list[str]) -> Path | None:
    """RESULTS_DIR/tables.tex: a document that ``\\input``s each EXPERIMENT.tex present there, in
    the order given; compile it there with ``pdflatex tables.tex``. None when none is present."""
    results = ResultsDir.of(results)
    present_tex = [results.table(e, ".tex") for e in experiments if results.table(e, ".tex").is_file()]
    if not present_tex:
        return None
    inputs = [f"\\input{{{tex.name}}}\n\\clearpage" for tex in present_tex]
    path = results.document()
    path.write_text(latex_document(inputs, title="deeplab-bench: DeepLab ablations, ours beside the papers"))
    return path


# ---------------------------------------------------------------------------- files


def table_note(scale: str, *, latex: bool = False) -> str:
    """What the numbers are; at scale tiny, that the paper column is a trend, not a target."""
    pm, pct = (r"$\pm$", r"\%") if latex else ("±", "%")
    dagger = r"$^\dagger$" if latex else DAGGER
    pooled = (r"$s_p=\sqrt{((n_1-1)s_1^2+(n_2-1)s_2^2)/(n_1+n_2-2)}$" if latex
              else "s_p = sqrt(((n1-1)·s1² + (n2-1)·s2²) / (n1+n2-2))")
    note = (
        f"mIoU in {pct}: mean {pm} sample std over seeds (- with one seed); best mean in bold; "
        f"{dagger}: within one pooled std of the best, {pooled} over the two rows' seeds. "
        "fps: images per second of the network alone (no CRF). paper: the published number"
    )
    if scale == "paper":
        delta = r"$\Delta$" if latex else "Δ"
        note += f"; {delta}: ours - paper."
    else:
        what = " (synthetic data, narrow networks)" if scale == "tiny" else ""
        note += (
            f". Scale {scale}{what}: the paper column is the reference trend, not a target; "
            "rank: ours/paper among the rows with both numbers (1 = best)."
        )
    return note


def write_tables(summary: pd.DataFrame, results: str | Path | ResultsDir, experiment: str, *, title: str,
                 scale: str, paper_data: str | None = None) -> dict[str, Path]:
    """Write EXPERIMENT.csv (full precision), .md and .tex into the results dir; return their
    paths. ``title`` says what ran; ``paper_data`` (the paper's dataset) heads the paper columns."""
    results = ResultsDir.of(results)
    results.root.mkdir(parents=True, exist_ok=True)
    paths = {fmt: results.table(experiment, f".{fmt}") for fmt in ("csv", "md", "tex")}

    summary.to_csv(paths["csv"], index=False)
    ordering_lines = "".join(f"\n{o.sentence()}" for o in orderings(summary))
    paths["md"].write_text(
        f"## {title} (scale: {scale})\n\n{markdown_table(summary, scale=scale, paper_data=paper_data)}\n\n"
        f"{table_note(scale)}\n{ordering_lines}\n"
    )
    caption = f"{escape_latex(title)} (scale: {escape_latex(scale)}). {table_note(scale, latex=True)}"
    paths["tex"].write_text(latex_table(summary, caption=caption, label=f"tab:{experiment}", scale=scale,
                                        paper_data=paper_data))
    return paths
