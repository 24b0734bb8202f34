"""Scale out: DDP gives the same mIoU as one process, SLURM jobs write the same records as a local
sweep, and a broken W&B costs one warning line and never a result.

Everything runs on the CPU of this machine: DDP with gloo, SLURM through submitit's local
cluster (the same job objects, run as subprocesses here). No test reaches the network.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DistributedSampler

from bench import distributed
from bench.recipes import TINY_VGG
from bench.data.datamodule import SegmentationDataModule
from bench.errors import BenchError
from bench.launchers import RunJob, SlurmOptions, executor_for
from bench.models import build_model
from bench.module import SegmentationModule
from bench.registry import get_experiment
from bench.runner import run_experiment
from bench.tracking import WandbGuard

# wandb must never try to reach a server or report errors from the tests
QUIET_WANDB = {"WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false"}
ENV = {**os.environ, **QUIET_WANDB, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
EXPERIMENT = "ablation-dilation"  # v1 VGG, no CRF: the cheapest run of the registry
SMOKE = dict(variants=["r12"], max_steps=2, num_val=4, accelerator="cpu")


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch):
    for key, value in QUIET_WANDB.items():
        monkeypatch.setenv(key, value)


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results / "runs" / EXPERIMENT).glob("*/seed-*.json"))]


# ------------------------------------------------------------------ DDP


def test_unpadded_shards_cover_the_split_exactly_once_where_distributed_sampler_repeats():
    data = SegmentationDataModule(num_train=8, num_val=13, batch_size=4)
    loader = data.val_dataloader()
    shards = [list(distributed.unpadded_loader(loader, world=2, rank=r).sampler) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(13))
    padded = [list(DistributedSampler(loader.dataset, num_replicas=2, rank=r, shuffle=False)) for r in range(2)]
    assert len(padded[0] + padded[1]) == 14  # Lightning's default sampler would count image 0 twice
    assert isinstance(distributed.unpadded_loader(loader, world=2, rank=0).sampler, DistributedSampler)


def test_the_global_batch_is_split_over_the_devices_or_refused():
    assert distributed.per_device_batch(8, 2) == 4
    with pytest.raises(BenchError, match="valid world sizes: 1, 2, 5, 10"):
        distributed.per_device_batch(10, 4)  # v1/v2 paper batch on 4 GPUs
    with pytest.raises(BenchError, match="--devices must be an integer >= 1"):
        distributed.world_size(0, 1)


# Both sides validate one image per batch on one thread: a forward's arithmetic then does not
# depend on which images share its batch (at batch 4 it does, by up to 6e-8 in a logit, enough
# to flip the argmax of a near-tie pixel of this untrained network and move mIoU by 1.5e-6).
VALIDATION = dict(num_train=8, num_val=13, batch_size=1)

# The two ranks run as one standalone script under strategy="ddp", the launch `bench run
# --devices N` uses (Lightning re-runs the script as rank 1), not under ddp_spawn, whose spawned
# ranks aborted in native code at exit in 2 of 5 full-suite runs on 2026-11-25.
TWO_RANKS = """
import json, sys
from pathlib import Path
import pytorch_lightning as pl
import torch
from bench import distributed
from bench.recipes import TINY_VGG
from bench.data.datamodule import SegmentationDataModule
from bench.models import build_model
from bench.module import SegmentationModule


class ShardedValidation(pl.LightningDataModule):
    def __init__(self, data):
        super().__init__()
        self.data = data

    def val_dataloader(self):
        return distributed.unpadded_loader(self.data.val_dataloader(), world=self.trainer.world_size,
                                           rank=self.trainer.global_rank)


class SaveMetrics(pl.Callback):
    def on_validation_end(self, trainer, module):
        Path(sys.argv[1], f"rank-{trainer.global_rank}.json").write_text(json.dumps(module.val_metrics))


torch.manual_seed(0)
model = build_model("v1", width=0.125, num_classes=21, **TINY_VGG.model_knobs)
module = SegmentationModule(model, num_classes=21, max_steps=1, lr=0.1)
data = SegmentationDataModule(**json.loads(sys.argv[2]))
data.setup()
pl.Trainer(devices=2, strategy="ddp", accelerator="cpu", logger=False, enable_progress_bar=False,
           enable_model_summary=False, callbacks=[SaveMetrics()]).validate(
    module, datamodule=ShardedValidation(data), verbose=False)
"""


def test_two_process_validation_gives_the_one_process_miou(tmp_path):
    """13 validation images over 2 ranks: no image twice, the confusion matrix summed over ranks."""
    script = tmp_path / "two_ranks.py"
    script.write_text(TWO_RANKS)
    env = {**ENV, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), json.dumps(VALIDATION)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = build_model("v1", width=0.125, num_classes=21, **TINY_VGG.model_knobs)
        module = SegmentationModule(model, num_classes=21, max_steps=1, lr=0.1)
        data = SegmentationDataModule(**VALIDATION)
        data.setup()
        pl.Trainer(devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                   accelerator="cpu").validate(module, dataloaders=data.val_dataloader(), verbose=False)
    finally:
        torch.set_num_threads(threads)
    one = module.val_metrics

    assert ranks[0] == ranks[1]  # the synced confusion matrix: the same metrics on every rank
    assert ranks[0]["miou"] == pytest.approx(one["miou"], abs=1e-6)
    assert ranks[0]["pixel_acc"] == pytest.approx(one["pixel_acc"], abs=1e-6)
    assert ranks[0]["per_class_iou"] == pytest.approx(one["per_class_iou"], abs=1e-6)


def test_bench_run_on_two_processes_writes_one_record_and_one_table(tmp_path):
    """`bench run --devices 2` on the CPU: the sweep starts the run's two ranks; only rank 0
    evaluates, writes the record and prints the table."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", EXPERIMENT, "--variants", "r12", "--seeds", "1",
         "--max-steps", "2", "--num-val", "5", "--devices", "2", "--accelerator", "cpu",
         "--wandb", "disabled", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [record] = records(tmp_path)
    assert record["status"] == "ok"
    assert record["env"]["world_size"] == 2 and record["env"]["devices"] == 2
    assert 0.0 <= record["metrics"]["miou"] <= 100.0
    assert proc.stdout.count("| variant") == 1  # the table, printed by rank 0 only
    assert pd.read_csv(tmp_path / f"{EXPERIMENT}.csv").n_seeds.tolist() == [1]


# ------------------------------------------------------------------ SLURM (submitit)


def test_slurm_job_asks_for_one_task_per_device_on_each_node(tmp_path, monkeypatch):
    from submitit.slurm.slurm import SlurmExecutor

    with pytest.raises(BenchError, match="SLURM login node"):  # this machine has no srun
        executor_for(tmp_path, SlurmOptions(), RunJob(), "bench-x")
    monkeypatch.setattr(SlurmExecutor, "affinity", staticmethod(lambda: 1))  # pretend it has
    job = RunJob(wandb_mode="disabled", accelerator="gpu", devices=4, num_nodes=2)
    options = SlurmOptions(partition="gpu", account="lab", time_min=90, cpus_per_task=8)
    executor = executor_for(tmp_path, options, job, "bench-x")
    script = executor._executor._make_submission_file_text("python -m x", "uid")
    for line in ("--partition=gpu", "--account=lab", "--time=90", "--nodes=2", "--ntasks-per-node=4",
                 "--gpus-per-node=4", "--cpus-per-task=8", "--job-name=bench-x"):
        assert f"#SBATCH {line}" in script
    with pytest.raises(BenchError, match="fewer than --devices"):
        executor_for(tmp_path, SlurmOptions(gpus_per_node=2), job, "bench-x")


def test_slurm_launcher_runs_one_job_per_seed_and_builds_the_table(tmp_path):
    result = run_experiment(get_experiment(EXPERIMENT), results_dir=tmp_path, seeds=2, wandb_mode="disabled",
                            launcher="slurm", slurm=SlurmOptions(cluster="local", time_min=10, poll_s=1), **SMOKE)
    assert result.failed == [] and len(result.jobs) == 2
    assert [(r["variant"], r["seed"], r["status"]) for r in records(tmp_path)] == [("r12", 0, "ok"), ("r12", 1, "ok")]
    table = pd.read_csv(result.tables["csv"])
    assert table.variant.tolist() == ["r12"] and table.n_seeds.tolist() == [2]
    assert len(list((tmp_path / "slurm" / EXPERIMENT).glob("*_log.out"))) == 2  # one job each
    again = run_experiment(get_experiment(EXPERIMENT), results_dir=tmp_path, seeds=2, wandb_mode="disabled",
                           launcher="slurm", slurm=SlurmOptions(cluster="local"), **SMOKE)
    assert again.skipped == 2 and again.jobs == []  # recorded runs are not submitted again


def test_slurm_no_wait_prints_job_ids_and_bench_table_builds_the_table_later(tmp_path, monkeypatch, capsys):
    from bench import cli

    monkeypatch.setattr(cli, "_slurm_options", lambda args: SlurmOptions(cluster="local", time_min=10))
    code = cli.main(["run", EXPERIMENT, "--variants", "r12", "--seeds", "1", "--max-steps", "2", "--num-val", "4",
                     "--accelerator", "cpu", "--wandb", "disabled", "--results-dir", str(tmp_path),
                     "--launcher", "slurm", "--no-wait"])
    out = capsys.readouterr().out
    assert code == 0 and "submitted 1 job(s): " in out and f"bench table {EXPERIMENT}" in out
    record = tmp_path / "runs" / EXPERIMENT / "r12" / "seed-0.json"
    deadline = time.monotonic() + 240
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert record.exists(), list((tmp_path / "slurm").rglob("*"))
    assert cli.main(["table", EXPERIMENT, "--format", "csv", "--results-dir", str(tmp_path)]) == 0
    assert "r12" in capsys.readouterr().out


# ------------------------------------------------------------------ W&B failures


def test_wandb_init_failure_warns_once_and_turns_wandb_off(tmp_path, monkeypatch, capsys):
    import wandb

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wandb, "init", broken)
    guard = WandbGuard("offline")
    assert guard.logger(save_dir=tmp_path / "wandb", project="p", name="a") is None
    assert guard.logger(save_dir=tmp_path / "wandb", project="p", name="b") is None  # not tried again
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "without W&B" in err[0]
    assert guard.mode == "disabled"


def test_unreachable_wandb_server_falls_back_to_offline_with_one_line(tmp_path, monkeypatch, capsys):
    """A fake key and a server that refuses (port 9 of this machine): online init fails within
    WANDB_INIT_TIMEOUT, the run goes on offline."""
    import wandb

    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    guard = WandbGuard("online")
    logger = guard.logger(save_dir=tmp_path / "wandb", project="p", name="a")
    try:
        assert logger is not None and guard.mode == "offline"
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: W&B")]
        assert len(err) == 1 and "logging offline" in err[0]
    finally:
        wandb.finish()


def test_a_wandb_failure_during_training_leaves_the_record_intact(tmp_path, monkeypatch, capsys):
    """The W&B folder's disk fills up mid-run: Lightning's logging raises inside W&B, the guard
    catches it, warns once, and the run, its record and the table are as without W&B."""
    from wandb.sdk.wandb_run import Run

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    import wandb

    monkeypatch.setattr(Run, "log", full_disk)
    try:
        result = run_experiment(get_experiment(EXPERIMENT), results_dir=tmp_path, seeds=1, wandb_mode="offline",
                                **SMOKE)
    finally:
        monkeypatch.undo()
        wandb.finish()  # the run W&B could not write to, left open by the guard
    [record] = records(tmp_path)
    assert record["status"] == "ok" and result.failed == [] and "csv" in result.tables
    warnings = [line for line in capsys.readouterr().err.splitlines() if "W&B failed" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], warnings
    assert "logger.log_metrics" in warnings[0]  # Lightning's own logging call, inside trainer.validate
