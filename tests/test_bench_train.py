"""`make bench-train` (tools/train_speed.py) runs end to end at smoke sizes. Speed is measured by
`make bench`, never asserted here; the test checks the table is built from its measurements."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

TOOL = Path(__file__).resolve().parents[1] / "tools" / "train_speed.py"


def test_each_path_is_timed_and_the_speed_ups_come_from_the_timings(tmp_path):
    proc = subprocess.run([sys.executable, str(TOOL), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "bench-train.csv").set_index("benchmark")
    label = "tiny v2 ASPP-L training step, batch 2, 32x32, {}"
    speed = {p: frame.loc[label.format(p), "value"] for p in
             ("fp32 NCHW", "fp32 channels-last", "channels-last + bf16 autocast")}
    assert all(v > 0 for v in speed.values())
    for path, images in speed.items():
        ratio = frame.loc[label.format(path) + ": speed-up over fp32 NCHW", "value"]
        assert abs(ratio - images / speed["fp32 NCHW"]) < 1e-9
    assert "SMOKE sizes" in (tmp_path / "bench-train.md").read_text()
