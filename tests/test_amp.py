"""--amp: bf16 mixed precision for training, evaluation and fps, recorded in the run's config."""

import json
import subprocess
import sys


def test_amp_run_trains_and_records_bf16(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "ablation-aspp", "--variants", "largefov",
                           "--smoke", "--amp", "--seeds", "1", "--wandb", "disabled", "--accelerator", "cpu",
                           "--results-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "runs/ablation-aspp/largefov/seed-0.json").read_text())
    assert record["status"] == "ok"
    assert record["config"]["precision"] == "bf16-mixed"
    assert record["speed"]["precision"] == record["speed_batch"]["precision"] == "bf16-mixed"
    assert 0 <= record["metrics"]["miou"] <= 100 and "miou_crf" in record["metrics"]


def test_records_without_a_precision_field_read_as_fp32():
    from bench.recipes import TINY
    from bench.run_config import RunConfig

    cfg = RunConfig(experiment="e", variant="v", seed=0, scale="tiny", data="synthetic",
                    version="v2", protocol=TINY)
    old = cfg.to_dict()
    del old["precision"]
    assert RunConfig.from_dict(old).precision == "32"
    assert cfg.with_precision(True).precision == "bf16-mixed" and cfg.with_precision(False) == cfg
