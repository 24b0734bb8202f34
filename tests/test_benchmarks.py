"""The benchmark runs end to end at smoke sizes (numbers are not checked: speed is measured by
`make bench`, never asserted in tests)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.registry import get_experiment

BENCHMARKS = Path(__file__).resolve().parents[1] / "tools" / "benchmarks.py"


def test_bench_smoke_writes_both_files(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "bench.csv")
    names = set(frame.benchmark)
    assert {"dense CRF pool speed-up (target >= 1.6 on 2 cores)", "generator / training consumption",
            "ours (folded, channels-last) / torchvision (target >= 1.10)"} <= names
    assert any(name.startswith("Lightning fit / bare PyTorch loop") for name in names)
    assert any(name.startswith("bench's fps (measure_fps) / bare timing loop") for name in names)
    # every version's flagship (experiments/versions.py), at the big size and at the tiny scale,
    # with params and GFLOPs
    models = frame.dropna(subset=["params_m"])
    flagships = get_experiment("versions").variant_names()
    assert len(models) == 2 * len(flagships) and (models.gflops > 0).all() and (models.gemm_fraction > 0).all()
    assert [name.split(" ")[0] for name in models.benchmark] == flagships * 2
    # ours and torchvision hold the same weights: the eager outputs agree
    eager = frame.set_index("benchmark").value["largest |ours eager - torchvision| logit (target <= 1e-4)"]
    assert eager <= 1e-4
    # the float64 forward is the exact answer: the folded fp32 model computes the same function
    folded_error = frame.set_index("benchmark").value["largest |ours folded fp32 - float64| logit (no worse than the floor?)"]
    assert folded_error < 1e-2
    # the CRF pool is reported beside the two ceilings that bound it on the machine
    assert sum(name.startswith("ceiling: ") for name in names) == 2
    assert (frame.value.drop(frame.index[frame.benchmark.str.startswith("largest")]) > 0).all()
    assert "SMOKE" in (tmp_path / "bench.md").read_text()
