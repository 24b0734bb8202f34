"""Tables as a paper prints them: mean ± std over seeds, two decimals rounded half up, best in bold,
the papers' numbers beside ours, and a LaTeX fragment that compiles."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench import report
from bench.columns import runs_frame
from bench.results import load_records, write_record

EXPERIMENT = "v2_aspp"


def make_record(variant, index, seed, miou, *, head, status="ok", miou_crf=None, fps=10.0,
                params_m=20.5, gflops=100.0, paper=65.76, paper_crf=None, knobs=None):
    record = {
        "schema": 1,
        "experiment": EXPERIMENT,
        "variant": variant,
        "variant_index": index,
        "seed": seed,
        "status": status,
        "config": {},
        "knobs": {"head": head, "backbone": "vgg16", **(knobs or {})},
        "metrics": {"miou": miou} if status == "ok" else {},
        "speed": {"fps": fps},
        "params_m": params_m,
        "gflops": gflops,
        "paper": {"miou": paper, "miou_crf": paper_crf},
    }
    if status == "ok" and miou_crf is not None:
        record["metrics"]["miou_crf"] = miou_crf
    if status != "ok":
        record["error"] = "RuntimeError: CUDA out of memory"
    return record


def summarize(tmp_path, records):
    """The summary as bench.tables builds it: rows in the order of the experiment file (here the
    records' variant_index) with the file's paper numbers (here the records' copies)."""
    for record in records:
        write_record(tmp_path, record)
    order = [r["variant"] for r in sorted(records, key=lambda r: r["variant_index"])]
    paper = {r["variant"]: {"paper_miou": r["paper"]["miou"], "paper_miou_crf": r["paper"]["miou_crf"]}
             for r in records}
    return report.aggregate(runs_frame(load_records(tmp_path, EXPERIMENT)), order=list(dict.fromkeys(order)),
                            paper=paper)


# Variant names whose alphabetical order differs from the registry order.
V2_RECORDS = [
    make_record("largefov", 0, 0, 65.10, head="largefov", fps=20.0, paper=65.76),
    make_record("largefov", 0, 1, 66.30, head="largefov", fps=22.0, paper=65.76),
    make_record("largefov", 0, 2, 65.90, head="largefov", fps=21.0, paper=65.76),
    make_record("aspp_s", 1, 0, 67.00, head="aspp-s", fps=15.0, params_m=30.1, paper=66.98),
    make_record("aspp_s", 1, 1, 67.40, head="aspp-s", fps=17.0, params_m=30.1, paper=66.98),
    make_record("aspp_l", 2, 0, 68.90, head="aspp-l", fps=12.0, params_m=40.2, paper=68.96),
]


@pytest.fixture
def summary(tmp_path):
    return summarize(tmp_path, V2_RECORDS)


def test_one_row_per_variant_in_registry_order(summary):
    assert list(summary["variant"]) == ["largefov", "aspp_s", "aspp_l"]
    assert list(summary["n_seeds"]) == [3, 2, 1]


def test_means_and_sample_stds_match_hand_computation(summary):
    row = summary.set_index("variant").loc["largefov"]
    assert row["miou"] == pytest.approx((65.10 + 66.30 + 65.90) / 3)
    assert row["miou_std"] == pytest.approx(statistics.stdev([65.10, 66.30, 65.90]))  # ddof=1
    assert row["fps"] == pytest.approx(21.0)
    assert row["paper_miou"] == pytest.approx(65.76)
    aspp_s = summary.set_index("variant").loc["aspp_s"]
    assert aspp_s["miou_std"] == pytest.approx(statistics.stdev([67.0, 67.4]))
    assert aspp_s["params_m"] == pytest.approx(30.1)


def test_a_single_seed_has_no_std_and_prints_a_dash(summary):
    assert math.isnan(summary.set_index("variant").loc["aspp_l", "miou_std"])
    row = next(line for line in report.markdown_table(summary).splitlines() if "aspp_l" in line)
    assert "68.90 ± -" in row


def test_knobs_that_vary_are_columns_and_constant_ones_are_dropped(summary):
    assert "head" in summary.columns
    assert "backbone" not in summary.columns and "knob.backbone" not in summary.columns
    assert not [c for c in summary.columns if c.startswith("knob.")]
    assert list(summary.columns[:2]) == ["variant", "head"]
    assert list(summary["head"]) == ["largefov", "aspp-s", "aspp-l"]


def test_contract_columns(summary):
    for column in ("variant", "miou", "miou_std", "n_seeds", "fps", "params_m", "gflops",
                   "paper_miou", "n_failed"):
        assert column in summary.columns
    assert "miou_crf" not in summary.columns  # no record evaluated the CRF


def test_crf_columns_appear_when_crf_is_evaluated_and_its_best_is_bold(tmp_path):
    records = [
        make_record("largefov", 0, 0, 65.0, head="largefov", miou_crf=70.1, paper_crf=69.84),
        make_record("largefov", 0, 1, 66.0, head="largefov", miou_crf=70.3, paper_crf=69.84),
        make_record("aspp_l", 1, 0, 68.0, head="aspp-l", miou_crf=69.0, paper_crf=71.57),
    ]
    summary = summarize(tmp_path, records)
    for column in ("miou_crf", "miou_crf_std", "paper_miou_crf"):
        assert column in summary.columns
    assert summary.loc[0, "miou_crf"] == pytest.approx(70.2)
    tex = report.latex_table(summary, caption="CRF", label="tab:crf")
    # Best mIoU (aspp_l, before CRF) and best mIoU after CRF (largefov) are both bold.
    assert r"\textbf{70.20 $\pm$ 0.14}" in tex
    assert r"\textbf{68.00 $\pm$ -}" in tex
    assert tex.count(r"\textbf") == 2


def test_failed_runs_do_not_count_and_an_all_failed_variant_keeps_its_row(tmp_path):
    records = [
        *V2_RECORDS,
        make_record("aspp_s", 1, 2, None, head="aspp-s", status="failed"),
        make_record("aspp_l_os8", 3, 0, None, head="aspp-l-os8", status="failed"),
        make_record("aspp_l_os8", 3, 1, None, head="aspp-l-os8", status="failed"),
    ]
    summary = summarize(tmp_path, records).set_index("variant")
    assert summary.loc["aspp_s", "n_seeds"] == 2
    assert summary.loc["aspp_s", "n_failed"] == 1
    assert summary.loc["aspp_s", "miou"] == pytest.approx(67.2)
    assert summary.loc["aspp_l_os8", "status"] == "failed"
    assert summary.loc["aspp_l_os8", "n_seeds"] == 0
    assert summary.loc["aspp_l_os8", "n_failed"] == 2
    assert math.isnan(summary.loc["aspp_l_os8", "miou"])
    markdown = report.markdown_table(summary.reset_index())
    row = next(line for line in markdown.splitlines() if "aspp_l_os8" in line)
    assert "failed" in row
    assert "failed runs" in markdown.splitlines()[0]


def test_best_mean_miou_is_bold_in_latex(summary):
    tex = report.latex_table(summary, caption="ASPP", label="tab:aspp")
    bold_lines = [line for line in tex.splitlines() if r"\textbf" in line]
    assert len(bold_lines) == 1 and bold_lines[0].startswith(r"aspp\_l")
    assert r"\textbf{68.90 $\pm$ -}" in bold_lines[0]
    # Ours are bold, the paper's numbers are a reference and are not.
    assert "68.96" in bold_lines[0] and r"\textbf{68.96" not in tex


def test_latex_uses_booktabs_and_escapes_names(summary):
    tex = report.latex_table(summary, caption="ASPP", label="tab:aspp")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    assert r"\begin{table}" in tex and r"\caption{ASPP}" in tex and r"\label{tab:aspp}" in tex
    assert r"aspp\_s" in tex and "aspp_s" not in tex
    assert r"mIoU (\%)" in tex and "paper mIoU" in tex


@pytest.mark.parametrize(
    ("value", "decimals", "printed"),
    [(65.125, 2, "65.13"), (65.135, 2, "65.14"), (0.285, 2, "0.29"), (-1.125, 2, "-1.13"),
     (2.5, 0, "3"), (12.25, 1, "12.3"), (65.0, 2, "65.00"), (-0.001, 2, "0.00"),
     (float("nan"), 2, "-"), (None, 2, "-")],
)
def test_numbers_round_half_away_from_zero(value, decimals, printed):
    assert report.format_number(value, decimals) == printed


def test_tables_round_ties_up_where_pandas_would_round_to_even(tmp_path):
    assert f"{65.125:.2f}" == "65.12"  # the pitfall: binary half-to-even
    records = [make_record("largefov", 0, 0, 65.125, head="largefov"),
               make_record("aspp_l", 1, 0, 60.0, head="aspp-l")]
    summary = summarize(tmp_path, records)
    assert "65.13 ± -" in report.markdown_table(summary)
    assert r"\textbf{65.13 $\pm$ -}" in report.latex_table(summary, caption="c", label="l")


def test_markdown_has_a_header_a_rule_and_one_row_per_variant(summary):
    lines = report.markdown_table(summary).splitlines()
    assert len(lines) == 2 + len(summary)
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    assert len({line.count("|") for line in lines}) == 1
    assert set(lines[1]) <= set("|:- ")
    for line, variant in zip(lines[2:], summary["variant"]):
        assert line.startswith(f"| {variant} ")
    assert "65.77 ± 0.61" in lines[2]  # mean 65.7666..., std 0.6110...
    assert "**68.90 ± -**" in lines[4]


def test_write_tables_writes_csv_md_tex_and_csv_round_trips(summary, tmp_path):
    paths = report.write_tables(summary, tmp_path / "out", EXPERIMENT, title="DeepLab-v2 ASPP", scale="paper")
    assert set(paths) == {"csv", "md", "tex"}
    assert [p.name for p in paths.values()] == [f"{EXPERIMENT}.csv", f"{EXPERIMENT}.md", f"{EXPERIMENT}.tex"]
    back = pd.read_csv(paths["csv"])
    pd.testing.assert_frame_equal(back, summary, check_dtype=False, rtol=1e-12)
    # Full precision: the CSV keeps the unrounded mean.
    assert back.loc[0, "miou"] == pytest.approx(197.3 / 3, rel=1e-12)
    assert report.markdown_table(summary, scale="paper") in paths["md"].read_text()
    assert r"\label{tab:v2\_aspp}" not in paths["tex"].read_text()
    assert rf"\label{{tab:{EXPERIMENT}}}" in paths["tex"].read_text()
    # The tables are the same when rebuilt from the CSV.
    assert report.markdown_table(back) == report.markdown_table(summary)


def test_tiny_scale_caption_says_the_paper_column_is_a_trend_not_a_target(summary, tmp_path):
    tiny = report.write_tables(summary, tmp_path / "tiny", EXPERIMENT, title="ASPP", scale="tiny")
    paper = report.write_tables(summary, tmp_path / "paper", EXPERIMENT, title="ASPP", scale="paper")
    caption = next(line for line in tiny["tex"].read_text().splitlines() if line.startswith(r"\caption"))
    assert "reference trend, not a target" in caption
    assert "reference trend, not a target" in tiny["md"].read_text()
    assert "reference trend" not in paper["tex"].read_text()


def test_list_knobs_print_as_tuples(tmp_path):
    records = [make_record("mg111", 0, 0, 70.0, head="aspp", knobs={"multigrid": [1, 1, 1]}),
               make_record("mg124", 1, 0, 71.0, head="aspp", knobs={"multigrid": [1, 2, 4]})]
    summary = summarize(tmp_path, records)
    assert list(summary.columns[:2]) == ["variant", "multigrid"]
    assert "(1, 2, 4)" in report.markdown_table(summary)


def test_empty_records_give_an_empty_summary():
    summary = report.aggregate(pd.DataFrame())
    assert summary.empty and "miou" in summary.columns


# ---------------------------------------------------------------------------- compiling


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("BENCH_REQUIRE_LATEX") == "1":
            pytest.fail(f"{name} is not on PATH and BENCH_REQUIRE_LATEX=1")
        pytest.skip(f"{name} is not on PATH")
    return path


def compile_pdf(tmp_path: Path, summary: pd.DataFrame) -> Path:
    pdflatex = require_tool("pdflatex")
    crf_summary = summary.assign(miou_crf=summary["miou"] + 4, miou_crf_std=0.5,
                                 paper_miou_crf=summary["paper_miou"] + 4)
    weird = summary.assign(variant=["[bracket]", "50%_&_#", "a~b^c\\d"])
    fragments = [
        report.latex_table(summary, caption=report.escape_latex("ASPP_tiny 50% & more"), label="tab:a_b"),
        report.latex_table(crf_summary, caption="with CRF", label="tab:crf"),
        report.latex_table(weird, caption="escaping", label="tab:weird"),
    ]
    tex = tmp_path / "tables.tex"
    tex.write_text(report.latex_document(fragments))
    result = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    pdf = tmp_path / "tables.pdf"
    assert pdf.stat().st_size > 0
    return pdf


def test_latex_fragments_compile_in_a_document(summary, tmp_path):
    compile_pdf(tmp_path, summary)


def test_written_tex_file_compiles_when_input(summary, tmp_path):
    pdflatex = require_tool("pdflatex")
    paths = report.write_tables(summary, tmp_path, EXPERIMENT, title="DeepLab-v2_ASPP", scale="tiny")
    doc = tmp_path / "doc.tex"
    doc.write_text(report.latex_document([rf"\input{{{paths['tex'].name}}}"]))
    result = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_table_wider_than_the_text_is_scaled_to_fit(summary, tmp_path):
    pdflatex = require_tool("pdflatex")
    crf_summary = summary.assign(miou_crf=summary["miou"] + 4, miou_crf_std=0.5,
                                 paper_miou_crf=summary["paper_miou"] + 4)
    fragment = report.latex_table(crf_summary, caption="wide", label="tab:wide")
    tex = tmp_path / "narrow.tex"  # an 8 cm column: every results table is wider than that
    tex.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
                   "\\setlength{\\textwidth}{8cm}\n\\begin{document}\n" + fragment + "\n\\end{document}\n")
    result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "narrow.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log


def test_pdf_renders_to_png(summary, tmp_path):
    pdftoppm = require_tool("pdftoppm")
    pdf = compile_pdf(tmp_path, summary)
    subprocess.run([pdftoppm, "-png", "-r", "50", pdf.name, "page"], cwd=tmp_path, check=True, timeout=120)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- noise, paper, ordering


def test_pooled_std_is_the_standard_formula():
    # s_p = sqrt(((n1-1) s1^2 + (n2-1) s2^2) / (n1+n2-2))
    assert report.pooled_std(1.0, 3, 2.0, 2) == pytest.approx(math.sqrt((2 * 1 + 1 * 4) / 3))
    assert report.pooled_std(0.5, 3, float("nan"), 1) == pytest.approx(0.5)  # one run: no dof
    assert math.isnan(report.pooled_std(float("nan"), 1, float("nan"), 1))


def test_a_mean_within_one_pooled_std_of_the_best_gets_a_dagger(tmp_path):
    records = [
        make_record("largefov", 0, 0, 66.0, head="largefov", paper=65.76),
        make_record("largefov", 0, 1, 68.0, head="largefov", paper=65.76),   # 67.0 +- 1.41
        make_record("aspp_s", 1, 0, 60.0, head="aspp-s", paper=66.98),
        make_record("aspp_s", 1, 1, 61.0, head="aspp-s", paper=66.98),       # 60.5: far
        make_record("aspp_l", 2, 0, 67.5, head="aspp-l", paper=68.96),
        make_record("aspp_l", 2, 1, 68.5, head="aspp-l", paper=68.96),       # 68.0 +- 0.71: best
    ]
    summary = summarize(tmp_path, records)
    markdown = report.markdown_table(summary).splitlines()
    assert "67.00 ± 1.41†" in markdown[2]  # |68.0 - 67.0| = 1.0 <= s_p = sqrt((2 + 0.5) / 2) = 1.12
    assert "†" not in markdown[3] and "†" not in markdown[4]
    tex = report.latex_table(summary, caption="c", label="l")
    assert r"67.00 $\pm$ 1.41$^\dagger$" in tex and tex.count(r"$^\dagger$") == 1
    assert r"\textbf{68.00 $\pm$ 0.71}" in tex
    note = report.table_note("tiny", latex=True)
    assert r"$^\dagger$" in note and r"(n_1-1)s_1^2+(n_2-1)s_2^2" in note


def test_paper_scale_shows_ours_minus_paper(summary):
    markdown = report.markdown_table(summary, scale="paper").splitlines()
    header = [c.strip() for c in markdown[0].strip("|").split("|")]
    assert header[header.index("paper mIoU") + 1] == "Δ mIoU" and "rank mIoU" not in header
    assert "-0.06" in markdown[4]   # aspp_l: 68.90 - 68.96
    assert "+0.22" in markdown[3]   # aspp_s: 67.20 - 66.98
    tex = report.latex_table(summary, caption="c", label="l", scale="paper")
    assert r"$\Delta$ mIoU" in tex and "(trend)" not in tex


def test_tiny_scale_labels_the_paper_as_the_trend_and_ranks_ours_against_it(summary):
    markdown = report.markdown_table(summary, scale="tiny").splitlines()
    header = [c.strip() for c in markdown[0].strip("|").split("|")]
    assert "paper mIoU (trend)" in header and "Δ mIoU" not in header
    ranks = [[c.strip() for c in line.strip("|").split("|")][header.index("rank mIoU")] for line in markdown[2:]]
    assert ranks == ["3/3", "2/2", "1/1"]
    agreement = report.ordering(summary)
    assert agreement.agrees and agreement.tau == pytest.approx(1.0)
    assert agreement.sentence() == "Ordering by mIoU agrees with the paper: yes (Kendall tau = 1.00 over 3 rows)."


def test_an_ordering_that_differs_from_the_paper_says_which_pairs(tmp_path):
    records = [make_record("largefov", 0, 0, 70.0, head="largefov", paper=65.76, miou_crf=71.0, paper_crf=69.84),
               make_record("aspp_s", 1, 0, 65.0, head="aspp-s", paper=66.98, miou_crf=72.0, paper_crf=69.73),
               make_record("aspp_l", 2, 0, 60.0, head="aspp-l", paper=68.96, miou_crf=73.0, paper_crf=71.57),
               make_record("aspp_xl", 3, 0, None, head="aspp-xl", status="failed", paper=70.0)]
    summary = summarize(tmp_path, records)
    before, after = report.orderings(summary)
    # ours 70 > 65 > 60, paper 65.76 < 66.98 < 68.96: every pair reversed; the failed row is left out
    assert not before.agrees and before.tau == pytest.approx(-1.0) and len(before.ranks) == 3
    assert "no (Kendall tau = -1.00 over 3 rows; not as in the paper: largefov vs aspp_s" in before.sentence()
    # after CRF: ours 71 < 72 < 73, paper 69.84 > 69.73 < 71.57 -> one pair of three swapped
    assert after.label == "mIoU CRF" and not after.agrees
    assert after.tau == pytest.approx(1 / 3) and after.discordant == [("largefov", "aspp_s")]
    paths = report.write_tables(summary, tmp_path / "out", EXPERIMENT, title="T", scale="tiny")
    md = paths["md"].read_text()
    assert "Ordering by mIoU agrees with the paper: no" in md
    assert "Ordering by mIoU CRF agrees with the paper: no (Kendall tau = 0.33 over 3 rows" in md
    assert "failed" in next(line for line in md.splitlines() if line.startswith("| aspp_xl"))
    assert "Ordering by mIoU agrees with the paper: no" in paths["tex"].read_text()


def test_a_tie_of_ours_where_the_paper_orders_does_not_agree(tmp_path):
    records = [make_record("largefov", 0, 0, 4.01, head="largefov", paper=65.76),
               make_record("aspp_s", 1, 0, 4.01, head="aspp-s", paper=66.98)]
    order = report.ordering(summarize(tmp_path, records))
    assert not order.agrees and order.ranks == {0: (1, 2), 1: (1, 1)}
    assert "agrees with the paper: no" in order.sentence()


def test_all_failed_experiment_still_writes_tables(tmp_path):
    records = [make_record("largefov", 0, 0, None, head="largefov", status="failed"),
               make_record("aspp_s", 1, 0, None, head="aspp-s", status="failed")]
    summary = summarize(tmp_path, records)
    paths = report.write_tables(summary, tmp_path / "out", EXPERIMENT, title="T", scale="paper")
    assert paths["md"].read_text().count("failed") >= 2
    assert "not compared" in paths["md"].read_text()


# ---------------------------------------------------------------------------- tables.tex, plots


def registered_records(experiment, variants, crf=False):
    """Records of a registered experiment (fake metrics, synthetic data, 21 classes)."""
    records = []
    for index, variant in enumerate(variants):
        for seed in range(2):
            record = make_record(variant, index, seed, 60.0 + 3 * index + seed, head=variant,
                                 miou_crf=(64.0 + index + seed) if crf else None, paper=65.0 + index,
                                 paper_crf=(69.0 + index) if crf else None)
            record["experiment"] = experiment
            record["config"] = {"data": "synthetic", "scale": "paper"}
            record["metrics"]["per_class_iou"] = [90.0 - 3 * c if c != 7 else None for c in range(21)]
            if crf:
                record["metrics"]["per_class_iou_crf"] = [92.0 - 3 * c for c in range(21)]
            records.append(record)
    return records


@pytest.fixture
def all_tables(tmp_path, capsys):
    from bench.cli import main

    for record in (registered_records("ablation-aspp", ["largefov", "aspp-s", "aspp-l"], crf=True)
                   + registered_records("versions", ["v1-largefov", "v2-aspp-l", "v3", "v3plus"])):
        write_record(tmp_path, record)
    assert main(["table", "--all", "--results-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ablation-crf: no records yet" in out and "tables.tex" in out
    return tmp_path


def test_table_all_writes_every_experiments_tables_and_a_document_that_inputs_them(all_tables):
    for name in ("ablation-aspp", "versions"):
        for suffix in (".csv", ".md", ".tex", ".png", "-per-class.png"):
            assert (all_tables / f"{name}{suffix}").is_file(), name + suffix
    doc = (all_tables / "tables.tex").read_text()
    assert r"\input{ablation-aspp.tex}" in doc and r"\input{versions.tex}" in doc
    assert "ablation-crf" not in doc and doc.index("ablation-aspp") < doc.index("versions")
    assert r"$\Delta$ mIoU CRF" in (all_tables / "ablation-aspp.tex").read_text()  # paper scale


def test_tables_tex_compiles_and_renders_to_png(all_tables):
    pdflatex = require_tool("pdflatex")
    result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "tables.tex"],
                            cwd=all_tables, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    pdftoppm = require_tool("pdftoppm")
    subprocess.run([pdftoppm, "-png", "-r", "40", "-f", "1", "-l", "1", "tables.pdf", "page"],
                   cwd=all_tables, check=True, timeout=120)
    pngs = sorted(all_tables.glob("page*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_needs_an_experiment_or_all(tmp_path, capsys):
    from bench.cli import main

    assert main(["table", "--results-dir", str(tmp_path)]) == 2
    assert "name one EXPERIMENT or give --all" in capsys.readouterr().err


def test_per_class_chart_is_the_best_variants_with_class_names(tmp_path):
    from PIL import Image

    from bench import plots
    from bench.data.synthetic import CLASS_NAMES

    for record in registered_records("ablation-aspp", ["largefov", "aspp-s", "aspp-l"], crf=True):
        write_record(tmp_path, record)
    records = load_records(tmp_path, "ablation-aspp")
    iou = plots.per_class_iou(records, "aspp-l")
    assert iou["iou"].shape == (2, 21) and math.isnan(iou["iou"][0, 7]) and "iou_crf" in iou
    summary = report.aggregate(runs_frame(records))
    path = plots.plot_per_class(records, summary, tmp_path / "pc.png", title="t", class_names=CLASS_NAMES)
    assert Image.open(path).size[0] > 500
    failed = summary.assign(status="failed")
    assert plots.plot_per_class(records, failed, tmp_path / "none.png", title="t") is None
