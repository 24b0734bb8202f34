"""The `bench` command end to end: a real (2-step) sweep into a temporary results dir."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}


def bench(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    proc = bench("run", "ablation-aspp", "--max-steps", "2", "--seeds", "1", "--wandb", "offline",
                 "--results-dir", str(results))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results, proc


def test_run_writes_one_record_per_variant_with_metrics_and_provenance(sweep):
    results, _ = sweep
    for variant in ("largefov", "aspp-s", "aspp-l"):
        record = json.loads((results / "runs" / "ablation-aspp" / variant / "seed-0.json").read_text())
        assert record["status"] == "ok"
        assert 0.0 <= record["metrics"]["miou"] <= 100.0
        assert len(record["metrics"]["per_class_iou"]) == 21
        assert record["speed"]["fps"] > 0 and record["speed"]["iters"] >= 10
        assert record["speed"]["batch_size"] == 1 and record["speed_batch"]["batch_size"] == 8
        assert record["params_m"] > 0 and record["gflops"] > 0
        assert record["config"]["protocol"]["max_steps"] == 2
        assert record["config"]["knobs"]["head"] == variant
        assert {"git_commit", "git_dirty", "versions", "device", "host", "started", "ended"} <= set(record["env"])


def test_run_writes_the_three_tables_and_prints_one(sweep):
    results, proc = sweep
    csv = pd.read_csv(results / "ablation-aspp.csv")
    assert list(csv.variant) == ["largefov", "aspp-s", "aspp-l"]
    for column in ("variant", "head", "miou", "miou_std", "n_seeds", "fps", "params_m", "paper_miou"):
        assert column in csv.columns
    assert list(csv.paper_miou) == [65.76, 66.98, 68.96]
    assert (results / "ablation-aspp.md").read_text() in proc.stdout
    assert "\\toprule" in (results / "ablation-aspp.tex").read_text()


def test_run_leaves_offline_wandb_runs(sweep):
    results, _ = sweep
    runs = list((results / "wandb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 4  # one per variant + the sweep's summary run


def test_rerun_skips_finished_runs_and_keeps_records(sweep):
    results, _ = sweep
    before = {p: p.read_text() for p in (results / "runs").rglob("*.json")}
    proc = bench("run", "ablation-aspp", "--max-steps", "2", "--seeds", "1", "--wandb", "disabled",
                 "--results-dir", str(results))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "0 run(s) done, 3 already recorded" in proc.stdout
    assert {p: p.read_text() for p in (results / "runs").rglob("*.json")} == before


def test_table_command_rebuilds_from_records(sweep):
    results, _ = sweep
    proc = bench("table", "ablation-aspp", "--format", "csv", "--results-dir", str(results))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("variant,")


def test_list_shows_ablation_aspp():
    proc = bench("list")
    assert proc.returncode == 0
    assert proc.stdout.startswith("ablation-aspp") or "\nablation-aspp" in proc.stdout


@pytest.mark.parametrize("args,message", [
    (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'; valid: ablation-aspp"),
    (["run", "ablation-aspp", "--variants", "aspp-xl"], "valid: largefov, aspp-s, aspp-l"),
    (["run", "ablation-aspp", "--data", "imagenet"], "synthetic"),
    (["run", "ablation-aspp", "--seeds", "0"], "--seeds must be at least 1"),
    (["table", "ablation-aspp", "--results-dir", "/nonexistent/results"], "no records of ablation-aspp"),
    (["run", "ablation-aspp", "--backbone-weights", "vgg16=/nonexistent/vgg16.pth"], "no such file"),
    (["run", "ablation-aspp", "--backbone-weights", "vgg19=w.pth"], "unknown backbone 'vgg19'; valid:"),
    (["run", "ablation-aspp", "--backbone-weights", "w.pth"], "'w.pth' is not BACKBONE=PATH"),
    (["run", "ablation-aspp", "--max-steps", "0"], "--max-steps must be at least 1"),
    (["run", "ablation-aspp", "--val-every", "0"], "--val-every must be at least 1"),
    (["run", "ablation-aspp", "--crop-size", "16"], "--crop-size must be at least 32 (one pixel at output stride 32), got 16"),
    # caught by argparse: one line too, the usage stays under --help
    (["run", "ablation-aspp", "--scale", "huge"], "invalid choice: 'huge' (choose from 'tiny', 'paper')"),
    (["run", "ablation-aspp", "--seeds", "abc"], "invalid int value: 'abc'"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    proc = bench(*args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "runs").exists()


def test_run_evaluates_crf_and_trimap_for_a_crf_experiment(sweep):
    results, _ = sweep
    record = json.loads((results / "runs" / "ablation-aspp" / "largefov" / "seed-0.json").read_text())
    metrics = record["metrics"]
    assert 0.0 <= metrics["miou_crf"] <= 100.0 and metrics["crf_images"] == 200
    assert metrics["crf_seconds_per_image"] > 0
    assert metrics["trimap"]["width_px"] == metrics["trimap_crf"]["width_px"] == [1, 2, 3, 5, 7, 10, 15, 20, 30, 40]
    csv = pd.read_csv(results / "ablation-aspp.csv")
    assert {"miou_crf", "miou_crf_std", "paper_miou_crf"} <= set(csv.columns)
    assert list(csv.paper_miou_crf) == [69.84, 69.73, 71.57]
    assert (results / "checkpoints" / "ablation-aspp" / "largefov" / "seed-0.pt").exists()


def test_crf_search_stores_the_best_parameters_and_rescores_the_records(sweep):
    results, _ = sweep
    proc = bench("crf-search", "ablation-aspp", "--variants", "largefov", "--images", "6",
                 "--results-dir", str(results))
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads((results / "crf" / "ablation-aspp" / "largefov.json").read_text())
    assert found["searched_on"] == "holdout[:6]" and len(found["history"]) >= 4
    assert found["history"][-1]["miou"] == max(h["miou"] for h in found["history"])
    record = json.loads((results / "runs" / "ablation-aspp" / "largefov" / "seed-0.json").read_text())
    assert record["metrics"]["crf_params"] == found["best"] == record["config"]["crf_params"]
    assert "largefov:" in proc.stdout


def test_imagenet_weights_at_the_tiny_width_are_refused_before_anything_runs(tmp_path):
    import torch
    from torchvision.models import vgg16_bn

    weights = tmp_path / "vgg16_bn.pth"
    torch.save(vgg16_bn(weights=None).state_dict(), weights)
    proc = bench("run", "ablation-aspp", "--backbone-weights", f"vgg16={weights}", "--results-dir",
                 str(tmp_path / "results"), cwd=tmp_path)
    assert proc.returncode == 2 and "width" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "runs").exists()


def test_run_draws_a_prediction_grid_per_run_and_logs_it_to_wandb(sweep):
    from PIL import Image

    results, _ = sweep
    for variant in ("largefov", "aspp-s", "aspp-l"):
        grid = Image.open(results / "pictures" / "ablation-aspp" / f"{variant}-seed-0.png")
        # 4 images x (image | truth | prediction | + CRF), 128 px panels, 2 px gaps
        assert grid.size == (4 * 128 + 3 * 2, 4 * 128 + 3 * 2)
    media = list((results / "wandb").glob("wandb/offline-run-*/files/media/images/*.png"))
    assert len(media) >= 3
    assert (results / "ablation-aspp.png").exists() and (results / "ablation-aspp-trimap.png").exists()


def test_val_every_records_a_learning_curve_and_leaves_training_unchanged(tmp_path):
    """--val-every N validates during training too: the curve lands in the record and in
    EXPERIMENT-curve.png; the trained weights are bit-identical to a run without it (validation
    must not draw from the RNG that the training flips use), and a rerun without the flag counts
    the run as recorded."""
    import torch

    common = ["run", "ablation-dilation", "--variants", "r1", "--max-steps", "6", "--seeds", "1",
              "--num-val", "8", "--wandb", "disabled"]
    with_curve, without = tmp_path / "curve", tmp_path / "plain"
    proc = bench(*common, "--val-every", "2", "--results-dir", str(with_curve))
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((with_curve / "runs" / "ablation-dilation" / "r1" / "seed-0.json").read_text())
    curve = record["metrics"]["val_curve"]
    assert curve["step"] == [2, 4, 6] and len(curve["miou"]) == 3
    assert curve["miou"][-1] == pytest.approx(record["metrics"]["miou"])  # step 6 is the trained net
    assert (with_curve / "ablation-dilation-curve.png").exists()

    proc = bench(*common, "--results-dir", str(without))
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads((without / "runs" / "ablation-dilation" / "r1" / "seed-0.json").read_text())
    assert "val_curve" not in plain["metrics"] and not (without / "ablation-dilation-curve.png").exists()
    assert plain["metrics"]["miou"] == record["metrics"]["miou"]
    weights = [torch.load(d / "checkpoints" / "ablation-dilation" / "r1" / "seed-0.pt", weights_only=True)["state_dict"]
               for d in (with_curve, without)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

    proc = bench(*common, "--results-dir", str(with_curve))
    assert proc.returncode == 0 and "0 run(s) done, 1 already recorded" in proc.stdout

    # N not dividing the steps: Lightning validates at multiples of N; the curve still ends at the last step
    odd = tmp_path / "odd"
    proc = bench(*common, "--val-every", "4", "--results-dir", str(odd))
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = json.loads((odd / "runs" / "ablation-dilation" / "r1" / "seed-0.json").read_text())["metrics"]["val_curve"]
    assert curve["step"] == [4, 6] and curve["miou"][-1] == pytest.approx(record["metrics"]["miou"])
