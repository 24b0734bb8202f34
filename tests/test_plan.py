"""`bench plan` / `bench run --dry-run`: per run the recipe, the weights it starts from and a time
estimate from the measured rates; nothing trains, downloads or is written; missing weights are the
run's one line, before anything."""

import csv

import pytest

from bench import plan
from bench.cli import main
from bench.registry import get_experiment
from bench.runner import plan_runs

BENCH_CSV = [
    {"benchmark": "the machine's limit used below (the faster of the two)", "value": "400", "unit": "GFLOP/s"},
    {"benchmark": "v3 (v3, resnet101), 513x513", "value": "2", "unit": "fps", "gflops": "150"},
]


def write_rates(folder, rows, name="bench.csv", machine="a test machine"):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["benchmark", "value", "unit", "gflops"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / name).with_suffix(".md").write_text(f"# make bench\n\nMachine: {machine}.\n")


def test_dry_run_of_versions_lists_each_runs_weights_recipe_and_estimate(imagenet_caches, tmp_path, capsys):
    results = tmp_path / "results"
    write_rates(results, BENCH_CSV)
    code = main(["run", "versions", "--scale", "paper", "--dry-run", "--results-dir", str(tmp_path / "runs"),
                 "--rates-dir", str(results)])
    out = capsys.readouterr().out
    assert code == 0
    blocks = out.split("\n- ")[1:]
    assert [b.split()[0] for b in blocks] == ["v1-largefov", "v2-aspp-l", "v3", "v3plus"]
    assert "step (x0.1 every 2000), lr 0.001, 6,000 steps x batch 20, crop 321" in blocks[0]
    assert "poly (0.9), lr 0.001, 20,000 steps x batch 10, crop 321" in blocks[1]
    assert "poly (0.9), lr 0.007, 30,000 steps x batch 16, crop 513" in blocks[2]
    assert "torchvision VGG16_Weights.IMAGENET1K_V1" in blocks[0]
    assert "torchvision ResNet101_Weights.IMAGENET1K_V1" in blocks[3]
    assert all("time:    ~" in b for b in blocks)
    assert "at 300 GFLOP/s" in blocks[2]  # v3's own row: 2 fps x 150 GFLOPs
    assert "at 400 GFLOP/s" in blocks[0]  # no v1 row: the machine's limit
    assert "bench.csv (a test machine)" in out
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_without_cached_weights_or_network_the_dry_run_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    code = main(["run", "versions", "--scale", "paper", "--dry-run", "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "vgg16-397923af.pth" in err and "download.pytorch.org" in err
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err


def test_the_estimate_is_the_flops_over_the_measured_rate_and_a_gpu_row_wins(tmp_path):
    results = tmp_path / "results"
    write_rates(results, BENCH_CSV)
    [cfg] = plan_runs(get_experiment("versions"), scale="paper", data="synthetic", seeds=1, variants=["v3"],
                      max_steps=None, results_dir=results, backbone_weights="none")
    [run] = plan.plan([cfg], results, devices=2)
    p = cfg.protocol
    expected = (3 * run.forward_gflops * p.max_steps * p.batch_size + run.eval_gflops * p.num_val) / 300 / 2
    assert run.images == 30_000 * 16 and run.seconds == pytest.approx(expected)
    write_rates(results, [{"benchmark": "train GFLOP/s, v3 resnet101 batch 16 crop 513", "value": "90000",
                           "unit": "GFLOP/s"}], name="bench-gpu.csv", machine="an H200")
    [run] = plan.plan([cfg], results)
    assert run.rate.gflops_per_s == 90_000 and run.rate.machine == "an H200"
    assert "bench-gpu.csv (an H200)" in plan.render([run])
    assert "already recorded, skipped" in plan.render([run], finished=[True])


def test_the_dry_run_refuses_what_the_run_would_refuse(tmp_path, capsys):
    base = ["run", "versions", "--scale", "paper", "--dry-run", "--backbone-weights", "none",
            "--results-dir", str(tmp_path)]
    assert main([*base, "--devices", "3"]) == 2
    assert "does not split over 3 devices" in capsys.readouterr().err
    assert main([*base, "--variants", "v1-largefov", "--eval-output-stride", "8"]) == 2
    assert "output_stride" in capsys.readouterr().err


def test_crop_size_overrides_the_crop_and_the_synthetic_image_size_and_is_a_new_run(tmp_path):
    from bench.run import datamodule_of

    plan = lambda **kw: plan_runs(get_experiment("ablation-aspp"), scale="tiny", data="synthetic", seeds=1,
                                  variants=["aspp-l"], max_steps=None, results_dir=tmp_path, **kw)
    [default], [cropped] = plan(), plan(crop_size=64)
    assert (default.protocol.crop_size, cropped.protocol.crop_size) == (128, 64)
    assert cropped.protocol.fps_size == default.protocol.fps_size  # fps stays at the scale's size
    assert datamodule_of(cropped).eval_size() == (64, 64)
    assert cropped.run_key() != default.run_key()  # a record at 128 px is not this run's
