"""`bench describe EXPERIMENT`: per variant, without training, params, GFLOPs, receptive field, knobs."""

import csv
import io
import subprocess
import sys

import pytest


def describe(*args):
    return subprocess.run([sys.executable, "-m", "bench", "describe", *args], capture_output=True, text=True)


def rows(*args):
    done = describe(*args, "--format", "csv")
    assert done.returncode == 0, done.stderr
    return {row["variant"]: row for row in csv.DictReader(io.StringIO(done.stdout))}


def test_describe_ablation_aspp_at_the_paper_scale_gives_the_papers_networks():
    table = rows("ablation-aspp", "--scale", "paper")
    assert list(table) == ["largefov", "aspp-s", "aspp-l"]
    largefov, aspp_s, aspp_l = table.values()
    assert float(largefov["params_m"]) == pytest.approx(20.5, rel=0.01)  # v1 Table 2: LargeFOV 20.5M
    assert float(largefov["params_m"]) < float(aspp_s["params_m"]) == float(aspp_l["params_m"])  # four branches
    assert float(largefov["gflops"]) < float(aspp_l["gflops"])
    assert [r["receptive_field"] for r in table.values()] == ["224", "224", "416"]  # largest rate 12, 12, 24
    assert {r["width"] for r in table.values()} == {"1.0"} and largefov["head"] == "largefov"
    assert largefov["gflops_input"] == "513x513"


def test_describe_defaults_to_the_tiny_scale_and_a_readable_table():
    done = describe("ablation-aspp")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[:5] == ["variant", "version", "params_m", "gflops", "gflops_input"]
    body = [line.split() for line in lines[2:]]
    assert [r[0] for r in body] == ["largefov", "aspp-s", "aspp-l"]
    assert float(body[0][2]) < float(body[2][2])
    assert "128x128" in lines[2] and "0.125" in lines[2]


def test_describe_an_unknown_experiment_is_a_one_line_error():
    done = describe("no-such-experiment")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "valid: ablation-aspp" in done.stderr


def test_describe_ablation_fov_shows_v1_table_2_parameters_and_receptive_fields():
    table = rows("ablation-fov", "--scale", "paper")
    assert list(table) == ["crf-7x7", "crf", "crf-4x4", "crf-largefov"]
    params = [float(r["params_m"]) for r in table.values()]
    for ours, paper in zip(params, [134.3, 65.1, 65.1, 20.5]):  # v1 Table 2
        assert ours == pytest.approx(paper, rel=0.01)
    assert [r["receptive_field"] for r in table.values()] == ["224", "128", "224", "224"]
