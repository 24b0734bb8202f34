"""`make bench-peers` (tools/peers.py) runs end to end at smoke sizes: our v3 and v3+ beside
segmentation-models-pytorch's, like for like. Speed is measured by `make bench`, never asserted
here; the tests check the table is built from its measurements."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("segmentation_models_pytorch",
                    reason="segmentation-models-pytorch is not installed: pip install -e '.[bench]' (in the test extra)")

PEERS = Path(__file__).resolve().parents[1] / "tools" / "peers.py"


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    out = tmp_path_factory.mktemp("peers")
    proc = subprocess.run([sys.executable, str(PEERS), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return pd.read_csv(out / "bench-peers.csv"), (out / "bench-peers.md").read_text()


def test_each_pair_has_our_model_and_smps(peers):
    frame, table = peers
    models = frame.dropna(subset=["params_m"])
    assert list(models.pair) == ["v3", "v3", "v3+ separable", "v3+ separable"]
    assert [name.split(" ")[0] for name in models.benchmark] == ["ours", "smp"] * 2
    assert "separable=True" in models.benchmark.iloc[2] and "DeepLabV3Plus" in models.benchmark.iloc[3]
    assert (models.value > 0).all() and (models.fps_path > 0).all() and (models.gflops > 0).all()
    assert "SMOKE" in table and "Differences that remain" in table
    for name in models.benchmark:
        assert f"| {name} |" in table


def test_ratios_are_computed_from_the_fps_rows(peers):
    frame, _ = peers
    models = frame.dropna(subset=["params_m"]).set_index("benchmark")
    value = frame.set_index("benchmark").value
    for pair in ("v3", "v3+ separable"):
        ours, smp = (models[models.pair == pair].iloc[i] for i in (0, 1))
        assert value[f"{pair}: ours / smp, eager"] == pytest.approx(ours.value / smp.value, rel=1e-9)
        assert value[f"{pair}: ours / smp, both fully folded + channels-last"] == pytest.approx(
            ours.fps_path / smp.fps_path, rel=1e-9)
        assert value[f"{pair}: ours / smp, GFLOPs"] == pytest.approx(ours.gflops / smp.gflops, rel=1e-9)


def test_v3_with_smps_knobs_has_smps_parameters_and_flops(peers):
    """multigrid (1, 1, 1) and torchvision's head make our v3 smp's DeepLabV3 layer for layer."""
    frame, _ = peers
    v3 = frame[frame.pair == "v3"]
    assert v3.params_m.nunique() == 1 and v3.gflops.nunique() == 1
    # v3+: smp's extra conv after ASPP and our second decoder conv; within 0.1% params, 3% GFLOPs
    plus = frame[frame.pair == "v3+ separable"]
    assert plus.params_m.max() / plus.params_m.min() < 1.001 and plus.gflops.max() / plus.gflops.min() < 1.03


def test_both_sides_run_fully_folded_and_compute_the_same_function(peers):
    """optimize_for_inference leaves the BN after smp's separable convs (an nn.Sequential, not a
    conv); the path folds them too, and the folded models agree with the eager ones."""
    frame, _ = peers
    models = frame.dropna(subset=["params_m"])
    left = dict(zip(models.benchmark.str.split(" ").str[:2].str.join(" "), models.bn_left_by_fuse))
    assert left["ours v3"] == 0 and left["ours v3+"] == 0 and left["smp DeepLabV3Plus"] == 5
    assert (models.path_error < 1e-2).all()
    fuse_alone = frame.benchmark.str.contains("optimize_for_inference alone")
    assert fuse_alone.sum() == 1 and (frame[fuse_alone].value > 0).all()
