"""What identifies a run is what changes its numbers: a variant's place in its experiment file and
the paper's published numbers are presentation, read from the file when a table is built."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from bench import registry
from bench.cli import main
from bench.registry import Variant, experiments, get_experiment
from bench.results import load_records
from bench.results_dir import ResultsDir
from bench.runner import is_finished, plan_runs, recorded, run_experiment

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(scale="tiny", data="synthetic", seeds=1, smoke=True, wandb_mode="disabled")


def edited(monkeypatch, name: str, variants: tuple[Variant, ...]):
    """The experiment ``name`` as if its file declared ``variants`` (and only the findings about them:
    a finding naming an undeclared variant is refused)."""
    names = {v.name for v in variants}
    original = get_experiment(name)
    findings = tuple(f for f in original.findings if set(f.variants) <= names)
    experiment = dataclasses.replace(original, variants=variants, findings=findings)
    monkeypatch.setitem(registry._REGISTRY, name, experiment)
    return experiment


def test_reordering_variants_and_inserting_one_trains_only_the_new_one(tmp_path, monkeypatch):
    aspp = get_experiment("ablation-aspp")
    largefov, aspp_s, aspp_l = aspp.variants
    first = edited(monkeypatch, "ablation-aspp", (largefov, aspp_s))
    assert run_experiment(first, results_dir=tmp_path, **SMOKE).ran == 2
    before = {p: p.stat().st_mtime_ns for p in ResultsDir(tmp_path).record_paths("ablation-aspp")}

    reordered = edited(monkeypatch, "ablation-aspp", (aspp_s, aspp_l, largefov))
    result = run_experiment(reordered, results_dir=tmp_path, **SMOKE)
    assert (result.ran, result.skipped, result.failed) == (1, 2, [])
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the two old records untouched
    new = ResultsDir(tmp_path).record("ablation-aspp", "aspp-l", 0)
    assert new.is_file() and load_records(tmp_path, "ablation-aspp")[0]["env"]["train_seconds"] is not None
    # the table follows the file's new order
    rows = [line.split("|")[1].strip() for line in result.tables["md"].read_text().splitlines()
            if line.startswith("| aspp") or line.startswith("| largefov")]
    assert rows == ["aspp-s", "aspp-l", "largefov"]


def test_a_corrected_paper_number_reaches_the_table_with_no_rerun(tmp_path, monkeypatch, capsys):
    for folder in ("runs", "crf"):  # the records and the CRF parameters they were scored with
        shutil.copytree(ROOT / "results" / folder / "ablation-aspp", tmp_path / folder / "ablation-aspp")
    largefov, aspp_s, aspp_l = get_experiment("ablation-aspp").variants
    corrected = edited(monkeypatch, "ablation-aspp", (dataclasses.replace(largefov, paper_miou=12.34), aspp_s, aspp_l))
    assert all(r["paper"]["miou"] == 65.76 for r in load_records(tmp_path, "ablation-aspp")
               if r["variant"] == "largefov")  # the records keep the old number as provenance

    assert main(["table", "ablation-aspp", "--results-dir", str(tmp_path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| largefov"))
    assert "12.34" in row and "65.76" not in row
    # nothing to rerun: every run of the corrected file still counts as finished
    configs = plan_runs(corrected, scale="tiny", data="synthetic", seeds=None, variants=None, max_steps=None,
                        results_dir=tmp_path)
    assert all(is_finished(recorded(ResultsDir(tmp_path), cfg), cfg) for cfg in configs)


@pytest.mark.parametrize("name", sorted(experiments()))
def test_every_committed_run_counts_as_finished_so_make_ablations_trains_nothing(name):
    """Records written before variant_index left the run identity still match (LEGACY_FIELDS)."""
    results = ResultsDir(ROOT / "results")
    configs = plan_runs(get_experiment(name), scale="tiny", data="synthetic", seeds=None, variants=None,
                        max_steps=None, results_dir=results)
    unfinished = [f"{c.variant}/seed-{c.seed}" for c in configs if not is_finished(recorded(results, c), c)]
    assert not unfinished
