"""Run records: atomic round trip, and corrupt or foreign files named in one clear error."""

import json

import pytest

from bench.errors import BenchError
from bench.columns import runs_frame
from bench.results import load_records, read_record, write_record
from bench.results_dir import ResultsDir


def record_path(results_dir, experiment, variant, seed):
    return ResultsDir(results_dir).record(experiment, variant, seed)


def make_record(variant="largefov", seed=0, miou=50.0):
    return {"schema": 1, "experiment": "ablation-aspp", "variant": variant, "seed": seed, "status": "ok", "config": {"seed": seed}, "knobs": {"head": variant},
            "metrics": {"miou": miou}, "speed": {"fps": 10.0}, "params_m": 1.0, "gflops": 2.0,
            "paper": {"miou": 65.76, "miou_crf": 69.84}}


def test_record_round_trip_leaves_no_temporary_file(tmp_path):
    record = make_record()
    path = write_record(tmp_path, record)
    assert path == record_path(tmp_path, "ablation-aspp", "largefov", 0)
    assert path == tmp_path / "runs" / "ablation-aspp" / "largefov" / "seed-0.json"
    assert read_record(path) == record
    assert [p.name for p in path.parent.iterdir()] == ["seed-0.json"]


def test_records_load_as_one_row_per_run_sorted_by_path(tmp_path):
    write_record(tmp_path, make_record("largefov", 1, 56.0))
    write_record(tmp_path, make_record("largefov", 0, 55.0))
    write_record(tmp_path, make_record("aspp-l", 0, 60.0))
    frame = runs_frame(load_records(tmp_path, "ablation-aspp"))
    assert list(zip(frame.variant, frame.seed, frame.miou)) == [
        ("aspp-l", 0, 60.0), ("largefov", 0, 55.0), ("largefov", 1, 56.0)]
    assert frame["knob.head"].tolist() == ["aspp-l", "largefov", "largefov"]


@pytest.mark.parametrize("content,problem", [
    ("{not json", "corrupt run record"),
    ("[1, 2]", "corrupt run record"),
    (json.dumps({"hello": "world"}), "not a deeplab-bench run record"),
])
def test_corrupt_or_foreign_record_is_one_clear_error(tmp_path, content, problem):
    path = record_path(tmp_path, "ablation-aspp", "largefov", 0)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(BenchError, match=problem) as err:
        load_records(tmp_path, "ablation-aspp")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == content  # nothing recorded is lost
