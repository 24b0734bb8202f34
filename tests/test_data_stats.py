"""`bench data-stats`: class frequencies and object sizes of the synthetic data, from its masks."""

import subprocess
import sys

import numpy as np

from bench.data import synthetic
from bench.data.stats import class_frequencies, object_sizes, size_histogram


def test_frequencies_and_sizes_count_the_masks_pixels():
    masks = np.zeros((2, 10, 10), np.uint8)
    masks[0, :5, :5] = 3            # 25 px of class 3
    masks[0, 9, :] = 255            # 10 ignore px
    masks[1, :2, :] = 20            # 20 px of class 20
    frequencies = class_frequencies(masks).set_index("class")
    assert abs(frequencies["pixels_%"].sum() - 100) < 1e-9
    assert frequencies.loc[synthetic.CLASS_NAMES[3], "pixels_%"] == 12.5
    assert frequencies.loc[synthetic.CLASS_NAMES[3], "images_%"] == 50.0
    assert frequencies.loc["ignore (255)", "pixels_%"] == 5.0
    assert sorted(object_sizes(masks)) == [0.2, 0.25]
    assert size_histogram(masks).objects.sum() == 2


def test_data_stats_command_prints_both_tables():
    proc = subprocess.run([sys.executable, "-m", "bench", "data-stats", "--images", "20", "--size", "64",
                           "--split", "stats-test"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "| background |" in proc.stdout and "Object sizes (" in proc.stdout
    assert "30-100%" in proc.stdout
