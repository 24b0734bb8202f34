"""The benchmark runs end to end at smoke sizes (numbers are not checked: speed is measured by
`make bench`, never asserted in tests)."""

import subprocess
import sys

import pandas as pd


def test_bench_smoke_writes_both_files(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.benchmarks", "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "bench.csv")
    assert {"dense CRF pool speed-up (target >= 1.6 on 2 cores)", "generator / training consumption"} <= set(frame.benchmark)
    assert (frame.value > 0).all()
    assert "SMOKE" in (tmp_path / "bench.md").read_text()
