"""bench.reuse: a run whose training is already recorded under another experiment evaluates
those weights instead of training again (DeepLab-LargeFOV is a row of five experiments)."""

import json
import os
import subprocess
import sys

import torch

ENV = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
SHORT = ["--max-steps", "2", "--seeds", "1", "--num-val", "8", "--wandb", "disabled"]


def bench(*args):
    proc = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def record(results, experiment, variant):
    return json.loads((results / "runs" / experiment / variant / "seed-0.json").read_text())


def weights(results, experiment, variant):
    return torch.load(results / "checkpoints" / experiment / variant / "seed-0.pt", weights_only=True)


def test_largefov_trained_for_one_experiment_is_evaluated_not_retrained_in_another(tmp_path):
    # ablation-dilation's r12 and ablation-fov's crf-largefov are the same v1 LargeFOV network
    bench("run", "ablation-dilation", "--variants", "r12", *SHORT, "--results-dir", str(tmp_path))
    proc = bench("run", "ablation-fov", "--variants", "crf-largefov", *SHORT, "--results-dir", str(tmp_path))
    assert "same training as ablation-dilation/r12/seed-0" in proc.stderr
    source, reused = record(tmp_path, "ablation-dilation", "r12"), record(tmp_path, "ablation-fov", "crf-largefov")
    assert reused["env"]["weights_from"] == "ablation-dilation/r12/seed-0"
    assert reused["env"]["train_seconds"] is None and source["env"]["weights_from"] is None
    assert reused["metrics"]["miou"] == source["metrics"]["miou"]
    assert "miou_crf" in reused["metrics"]  # evaluated as its own experiment asks: with the CRF
    a, b = weights(tmp_path, "ablation-dilation", "r12"), weights(tmp_path, "ablation-fov", "crf-largefov")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])

    # another training (3 steps) is not the same network: it trains
    proc = bench("run", "ablation-fov", "--variants", "crf-largefov", *SHORT, "--max-steps", "3",
                 "--results-dir", str(tmp_path))
    retrained = record(tmp_path, "ablation-fov", "crf-largefov")
    assert retrained["env"]["weights_from"] is None and retrained["env"]["train_seconds"] > 0


def test_a_checkpoint_without_its_training_identity_is_never_reused(tmp_path):
    bench("run", "ablation-dilation", "--variants", "r12", *SHORT, "--results-dir", str(tmp_path))
    path = tmp_path / "checkpoints" / "ablation-dilation" / "r12" / "seed-0.pt"
    payload = torch.load(path, weights_only=True)
    del payload["training"]  # as checkpoints written before bench.reuse
    torch.save(payload, path)
    bench("run", "ablation-fov", "--variants", "crf-largefov", *SHORT, "--results-dir", str(tmp_path))
    trained = record(tmp_path, "ablation-fov", "crf-largefov")
    assert trained["env"]["weights_from"] is None and trained["env"]["train_seconds"] > 0


def test_a_corrupt_record_of_another_experiment_does_not_stop_the_sweep(tmp_path):
    """The twin search reads every record; one that does not read is not a twin, and the sweep of
    another experiment goes on (the broken record's own experiment reports it)."""
    broken = tmp_path / "runs" / "some-old-experiment" / "x" / "seed-0.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    bench("run", "ablation-dilation", "--variants", "r12", *SHORT, "--results-dir", str(tmp_path))
    assert record(tmp_path, "ablation-dilation", "r12")["status"] == "ok"
