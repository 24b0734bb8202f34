"""`bench scorecard`: a paper's claim "A > B" holds in our tables when mean(A) - mean(B) is larger
than the pooled std of the two rows over their seeds (issue 17), the CRF's claim when it gains at
least a point on every row; an experiment without records is not run."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from bench.cli import main
from bench.registry import Experiment, Variant, experiments
from bench.results import write_record
from bench.scorecard import Better, Finding, scorecard, to_markdown

ROOT = Path(__file__).resolve().parents[1]


def record(experiment, variant, seed, miou, *, miou_crf=None, status="ok"):
    """A run record in the real format (bench.results), with made-up numbers."""
    metrics = {"miou": miou} if status == "ok" else {}
    if status == "ok" and miou_crf is not None:
        metrics["miou_crf"] = miou_crf
    return {"schema": 1, "experiment": experiment, "variant": variant, "variant_index": 0, "seed": seed,
            "status": status, "error": None if status == "ok" else "RuntimeError: training loss is nan at step 3",
            "config": {"seed": seed, "scale": "tiny", "data": "synthetic"}, "knobs": {},
            "metrics": metrics, "speed": {"fps": 100.0}, "params_m": 1.0, "gflops": 0.5, "paper": {}}


def write(results, experiment, rows):
    """rows: variant -> mIoU per seed (or (mIoU, mIoU after CRF) per seed)."""
    for variant, values in rows.items():
        for seed, value in enumerate(values):
            miou, crf = value if isinstance(value, tuple) else (value, None)
            write_record(results, record(experiment, variant, seed, miou, miou_crf=crf))


def result_of(results, experiment):
    [found] = [r for r in scorecard(results) if r.experiment == experiment]
    return found


def pooled(a, b):
    """s_p = sqrt(((n1-1)·s1² + (n2-1)·s2²) / (n1+n2-2)), written out from the issue."""
    n1, n2 = len(a), len(b)
    return math.sqrt(((n1 - 1) * statistics.stdev(a) ** 2 + (n2 - 1) * statistics.stdev(b) ** 2) / (n1 + n2 - 2))


@pytest.mark.parametrize("margin, holds", [(0.01, True), (-0.01, False)])
def test_image_pooling_beats_aspp_exactly_when_the_difference_exceeds_the_pooled_std(tmp_path, margin, holds):
    aspp = [11.0, 13.0]                       # 2 seeds, mean 12, std 1.41
    offsets = [-2.0, 0.0, 2.0]                # 3 seeds, std 2
    s_p = pooled(aspp, offsets)               # 1.83
    pooling = [12.0 + s_p + margin + d for d in offsets]
    write(tmp_path, "ablation-image-pooling", {"aspp": aspp, "aspp+image-pooling": pooling})

    found = result_of(tmp_path, "ablation-image-pooling")
    assert found.holds is holds and found.verdict == ("yes" if holds else "no")
    sign = ">" if holds else "<="
    assert found.evidence == (f"aspp+image-pooling {12 + s_p + margin:.2f} vs aspp 12.00: "
                              f"+{s_p + margin:.2f} {sign} s_p 1.83",)


def test_a_finding_holds_only_when_all_its_claims_hold(tmp_path):
    # OS 8 > OS 16 far beyond noise, OS 16 = OS 32: the direction alone is not a finding
    write(tmp_path, "ablation-output-stride", {"os8": [30.0, 31.0, 32.0], "os16": [20.0, 21.0, 22.0],
                                               "os32": [19.5, 20.5, 21.5]})
    found = result_of(tmp_path, "ablation-output-stride")
    assert not found.holds
    assert found.evidence == ("os8 31.00 vs os16 21.00: +10.00 > s_p 1.00",
                              "os16 21.00 vs os32 20.50: +0.50 <= s_p 1.00")


def test_after_crf_claims_compare_the_crf_column(tmp_path):
    # before CRF 4x4 r8 is best; after CRF 3x3 r12 and 7x7 r4 beat it, as v1 Table 2 says
    write(tmp_path, "ablation-kernel", {"7x7-r4": [(10.0, 20.0), (11.0, 21.0)],
                                        "4x4-r8": [(30.0, 10.0), (31.0, 11.0)],
                                        "3x3-r12": [(10.0, 20.0), (11.0, 21.0)]})
    found = result_of(tmp_path, "ablation-kernel")
    assert found.holds
    assert found.evidence[0] == "3x3-r12 20.50 vs 4x4-r8 10.50: +10.00 > s_p 0.71"


@pytest.mark.parametrize("gain, holds", [(1.0, True), (0.99, False)])
def test_the_crf_finding_needs_a_gain_of_one_point_on_every_row(tmp_path, gain, holds):
    before = [10.0, 12.0, 14.0]
    write(tmp_path, "ablation-crf", {
        "v1-largefov": [(m, m + gain) for m in before],
        "v2-aspp-l-vgg16": [(m, m + 3.0) for m in before],
        "v2-aspp-l-resnet101": [(m, m + 2.0) for m in before],
    })
    found = result_of(tmp_path, "ablation-crf")
    assert found.holds is holds
    sign = ">=" if holds else "<"
    assert found.evidence[0].startswith(f"v1-largefov 12.00 -> {12 + gain:.2f}: +{gain:.2f} {sign} 1.00; "
                                        "v2-aspp-l-vgg16 12.00 -> 15.00: +3.00 >= 1.00")


def test_a_row_without_records_or_ok_runs_or_crf_does_not_hold(tmp_path):
    write(tmp_path, "ablation-crf", {"v1-largefov": [(10.0, 14.0), (12.0, 16.0)],
                                     "v2-aspp-l-vgg16": [10.0, 12.0]})  # no CRF numbers
    write_record(tmp_path, record("ablation-aspp", "aspp-l", 0, 0.0, status="failed"))
    write(tmp_path, "ablation-aspp", {"aspp-s": [10.0, 12.0], "largefov": [1.0, 2.0]})

    crf = result_of(tmp_path, "ablation-crf")
    assert crf.run and not crf.holds
    assert crf.evidence == ("v1-largefov 11.00 -> 15.00: +4.00 >= 1.00; v2-aspp-l-vgg16: no mIoU CRF; "
                            "v2-aspp-l-resnet101: no records",)
    aspp = result_of(tmp_path, "ablation-aspp")
    assert not aspp.holds
    assert aspp.evidence == ("aspp-l: no ok runs", "aspp-s 11.00 vs largefov 1.50: +9.50 > s_p 1.12")


def test_an_experiment_without_records_is_not_run_and_does_not_hold(tmp_path):
    write(tmp_path, "ablation-aspp", {"aspp-l": [30.0, 31.0], "aspp-s": [20.0, 21.0], "largefov": [10.0, 11.0]})
    results = scorecard(tmp_path)
    assert len(results) == 11
    assert [(r.experiment, r.verdict) for r in results if r.run] == [("ablation-aspp", "yes")]
    assert {r.verdict for r in results if not r.run} == {"no records"}
    last = to_markdown(results).rstrip().splitlines()[-1]
    not_run = ", ".join(r.experiment for r in results if not r.run)
    assert last == f"1 of 11 findings hold (ablation-aspp); 10 of 11 not run ({not_run})."


def test_one_seed_per_row_leaves_the_pooled_std_undefined_and_the_claim_open(tmp_path):
    write(tmp_path, "ablation-dilation", {"r12": [40.0], "r1": [10.0]})
    found = result_of(tmp_path, "ablation-dilation")
    assert not found.holds and found.evidence == ("r12 40.00 vs r1 10.00: +30.00, s_p undefined (one seed each)",)


def test_every_experiment_states_one_finding_of_its_paper():
    assert {name: len(e.findings) for name, e in experiments().items()} == {name: 1 for name in experiments()}


def test_a_finding_naming_an_unknown_variant_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match="'aspp-xl', which it does not declare; valid: largefov"):
        Experiment(name="x", description="", version="v2", paper_table="", scientific_knobs=(),
                   variants=(Variant("largefov"),),
                   findings=(Finding("v2 Table 3", "ASPP-XL > LargeFOV", (Better("aspp-xl", "largefov"),)),))


def test_cli_prints_or_writes_the_section_and_refuses_a_missing_dir(tmp_path, capsys):
    write(tmp_path, "ablation-aspp", {"aspp-l": [30.0, 31.0], "aspp-s": [20.0, 21.0], "largefov": [10.0, 11.0]})
    expected = to_markdown(scorecard(tmp_path))
    assert main(["scorecard", "--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == expected

    out = tmp_path / "section" / "scorecard.md"
    assert main(["scorecard", "--results-dir", str(tmp_path), "--out", str(out)]) == 0
    assert out.read_text() == expected and [p.name for p in out.parent.iterdir()] == ["scorecard.md"]
    assert capsys.readouterr().out == f"{out}: 1 of 11 findings hold (ablation-aspp); 10 of 11 not run (" \
        + ", ".join(n for n in experiments() if n != "ablation-aspp") + ").\n"

    missing = tmp_path / "no-such-dir"
    assert main(["scorecard", "--results-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"bench: error: results dir {missing} does not exist; pass --results-dir DIR, the folder holding runs/\n"


def test_results_readme_holds_the_scorecard_of_the_committed_records():
    """results/README.md carries `bench scorecard --results-dir results` between its markers."""
    readme = (ROOT / "results" / "README.md").read_text()
    start, end = "<!-- scorecard -->\n", "<!-- /scorecard -->"
    assert start in readme and end in readme, "results/README.md lacks the scorecard markers"
    section = readme.split(start, 1)[1].split(end, 1)[0]
    assert section.strip() == to_markdown(scorecard(ROOT / "results")).strip()
