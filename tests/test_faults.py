"""Cluster-grade faults: a time limit or a preemption requeues the SLURM job, which resumes from the
state saved at the signal; checkpoints also come by wall time; a full disk leaves no half-written
file; a checkpoint altered after its record is never trusted."""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch

from bench import atomic, launchers
from bench.errors import BenchError
from bench.launchers import RunJob, SlurmOptions, executor_for
from bench.registry import get_experiment
from bench.results import load_records, read_record
from bench.results_dir import ResultsDir
from bench.resume import PeriodicCheckpoint, resume_path
from bench.run import run_and_record
from bench.runner import plan_runs, run_experiment
from bench.tracking import WandbGuard

SMOKE = dict(scale="tiny", data="synthetic", seeds=1, smoke=True, wandb_mode="disabled")


def largefov(results: Path, max_steps: int):
    [cfg] = plan_runs(get_experiment("ablation-aspp"), scale="tiny", data="synthetic", seeds=1, variants=["largefov"],
                      max_steps=max_steps, num_val=8, results_dir=results)
    return cfg


def job_task(job) -> int:
    """The pid of a local submitit job's task (the controller's child), as SLURM would signal it."""
    controller = job._process.pid
    deadline = time.monotonic() + 60
    while not (children := Path(f"/proc/{controller}/task/{controller}/children").read_text().split()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return int(children[0])


# the time limit in the suite; the preemption, the same path with another verdict, in `make test-extra`
@pytest.mark.parametrize("stop,timeout_min", [("timeout", 3), pytest.param("preemption", 60, marks=pytest.mark.extra)])
def test_a_stopped_slurm_job_requeues_and_resumes_to_the_uninterrupted_miou(stop, timeout_min, tmp_path):
    """Under submitit's local executor. The signal SLURM sends (USR2) comes mid-training, after
    the first periodic checkpoint; submitit counts it as a time limit when the job's limit is short
    (its guaranteed time has passed), else as a preemption. Either way the job saves its state at
    the next step, requeues itself, and the requeued job resumes from that step."""
    uninterrupted = run_and_record(largefov(tmp_path / "a", 20), ResultsDir(tmp_path / "a"),
                                   wandb=WandbGuard("disabled"), accelerator="cpu")
    results = ResultsDir(tmp_path / "b")
    cfg = largefov(results.root, 20)
    job = RunJob(wandb_mode="disabled", accelerator="cpu")
    executor = executor_for(results.slurm("faults"), SlurmOptions(cluster="local", time_min=timeout_min), job, "faults")
    submitted = executor.submit(job, cfg, str(results.root))
    periodic = resume_path(results, cfg.run_key())
    deadline = time.monotonic() + 300
    while not periodic.exists():  # training has passed its first periodic checkpoint (step 2)
        assert not submitted.done() and time.monotonic() < deadline, submitted.stderr()
        time.sleep(0.02)
    os.kill(job_task(submitted), signal.SIGUSR2)
    assert submitted.result()["status"] == "ok", submitted.stderr()
    log = submitted.stderr() + submitted.stdout()
    assert f"this job is {'timed-out' if stop == 'timeout' else 'preempted'}" in log and "Requeued" in log
    stopped_at = int(re.search(r"stopped on request at step (\d+)", log).group(1))
    record = read_record(results.record("ablation-aspp", "largefov", 0))
    assert record["env"]["resumes"] == 1 and record["env"]["resumed_from_step"] == stopped_at < 20
    assert record["metrics"]["miou"] == uninterrupted["metrics"]["miou"]  # bit for bit on the CPU
    assert not periodic.exists()  # the record supersedes the resume state


class FakeTrainer:
    """What PeriodicCheckpoint reads of Lightning's Trainer."""

    def __init__(self, step: int):
        self.global_step, self.max_steps, self.num_training_batches = step, 10_000, 125

    def save_checkpoint(self, path) -> None:
        torch.save({"global_step": self.global_step}, path)


def test_a_resume_checkpoint_is_written_by_wall_time_before_its_step_interval(tmp_path):
    path = tmp_path / "resume" / "seed-0-abc.ckpt"
    by_steps = PeriodicCheckpoint(path, every=1000, config={}, every_s=3600.0)
    by_steps.on_train_batch_end(FakeTrainer(3), None, None, None, 2)
    assert not path.exists()  # neither 1000 steps nor an hour since the start
    by_time = PeriodicCheckpoint(path, every=1000, config={}, every_s=0.05)
    time.sleep(0.06)
    by_time.on_train_batch_end(FakeTrainer(3), None, None, None, 2)
    assert torch.load(path)["global_step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["seed-0-abc.ckpt", "seed-0-abc.ckpt.alive"]


def disk_full_for(suffix: str, monkeypatch) -> None:
    """The disk fills while a ``suffix`` file is being written: its content is in the temporary
    file when flushing it to the disk (fsync) fails with ENOSPC, as a full disk shows."""
    fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if name.endswith(".tmp") and f"{suffix}." in name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_while_writing_a_record_stops_the_sweep_with_one_line(tmp_path, monkeypatch):
    experiment = get_experiment("ablation-aspp")
    run_experiment(experiment, results_dir=tmp_path, variants=["largefov"], **SMOKE)
    before = (tmp_path / "runs" / "ablation-aspp" / "largefov" / "seed-0.json").read_text()
    disk_full_for(".json", monkeypatch)
    with pytest.raises(BenchError) as err:
        run_experiment(experiment, results_dir=tmp_path, variants=["largefov", "aspp-s"], **SMOKE)
    message = str(err.value)
    assert "\n" not in message and "No space left on device" in message
    assert str(ResultsDir(tmp_path).record("ablation-aspp", "aspp-s", 0)) in message
    assert not ResultsDir(tmp_path).record("ablation-aspp", "aspp-s", 0).exists() and not leftovers(tmp_path)
    assert (tmp_path / "runs" / "ablation-aspp" / "largefov" / "seed-0.json").read_text() == before
    assert [r["variant"] for r in load_records(tmp_path, "ablation-aspp")] == ["largefov"]


def test_a_full_disk_while_writing_a_checkpoint_records_the_run_as_failed_and_goes_on(tmp_path, monkeypatch):
    disk_full_for(".pt", monkeypatch)
    result = run_experiment(get_experiment("ablation-aspp"), results_dir=tmp_path, variants=["largefov", "aspp-s"],
                            **SMOKE)
    assert result.ran == 2 and len(result.failed) == 2  # the sweep went on to the second run
    checkpoint = ResultsDir(tmp_path).checkpoint("ablation-aspp", "largefov", 0)
    record = read_record(ResultsDir(tmp_path).record("ablation-aspp", "largefov", 0))
    assert record["status"] == "failed" and "\n" not in record["error"]
    assert "No space left on device" in record["error"] and str(checkpoint) in record["error"]
    assert not checkpoint.exists() and not leftovers(tmp_path)


def test_a_checkpoint_altered_after_its_record_is_not_reused_and_the_run_retrains(tmp_path, capsys):
    run_experiment(get_experiment("ablation-dilation"), results_dir=tmp_path, variants=["r12"], **SMOKE)
    source = ResultsDir(tmp_path).checkpoint("ablation-dilation", "r12", 0)
    payload = torch.load(source, weights_only=True)
    first = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][first] += 1.0  # other weights, same training identity: only the hash tells
    torch.save(payload, source)

    run_experiment(get_experiment("ablation-fov"), results_dir=tmp_path, variants=["crf-largefov"], **SMOKE)
    assert "changed after its record was written" in capsys.readouterr().err
    record = read_record(ResultsDir(tmp_path).record("ablation-fov", "crf-largefov", 0))
    assert record["env"]["weights_from"] is None and record["env"]["train_seconds"] > 0
    assert record["checkpoint_sha256"] and record["status"] == "ok"

    from bench.crf_tuning import crf_search_experiment

    altered = ResultsDir(tmp_path).checkpoint("ablation-fov", "crf-largefov", 0)
    altered.write_bytes(altered.read_bytes() + b"\0")
    with pytest.raises(BenchError, match="changed after its record was written") as err:
        crf_search_experiment(get_experiment("ablation-fov"), results_dir=tmp_path, variants=["crf-largefov"], images=2)
    assert "\n" not in str(err.value)


# A rank of a two-rank CPU run, with a fault at its third training step on rank 1 (first run only).
FAULTY_RANK = """
import os, sys, time
from pathlib import Path
from bench import rank
from bench.module import SegmentationModule

armed = Path(os.environ["BENCH_TEST_FAULT_ARMED"])
training_step = SegmentationModule.training_step


def faulty(self, batch, batch_idx):
    if self.trainer.global_rank == 1 and self.global_step == 2 and armed.exists():
        armed.unlink()
        if os.environ["BENCH_TEST_FAULT"] == "raise":
            raise RuntimeError("injected fault at step 3")
        if os.environ["BENCH_TEST_FAULT"] == "kill":
            os.kill(os.getpid(), 9)
        if os.environ["BENCH_TEST_FAULT"] == "bad-input":
            from bench.errors import BenchError
            raise BenchError("mask 0042.png: value 30 is not a label; valid: 0..20 and 255")
        time.sleep(600)  # stuck: rank 0 waits in the gradient all-reduce
    return training_step(self, batch, batch_idx)


SegmentationModule.training_step = faulty
sys.exit(rank.main())
"""


def faulty_ranks(tmp_path: Path, fault: str, monkeypatch) -> Path:
    script = tmp_path / "faulty_rank.py"
    script.write_text(FAULTY_RANK)
    (tmp_path / "armed").touch()
    monkeypatch.setenv("BENCH_TEST_FAULT_ARMED", str(tmp_path / "armed"))
    monkeypatch.setenv("BENCH_TEST_FAULT", fault)
    monkeypatch.setattr(launchers, "RANK_COMMAND", [sys.executable, str(script)])
    return script


def still_running(script: Path) -> list[str]:
    """Processes whose command line names the script."""
    alive = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(script).encode() in cmdline.read_bytes():
                alive.append(cmdline.parent.name)
        except OSError:
            pass
    return alive


TWO_RANKS = dict(scale="tiny", data="synthetic", seeds=1, max_steps=4, num_val=4, devices=2, accelerator="cpu",
                 wandb_mode="disabled")


def seconds(record) -> float:
    return (datetime.fromisoformat(record["env"]["ended"]) - datetime.fromisoformat(record["env"]["started"])).total_seconds()


def test_a_rank_that_raises_ends_the_run_as_failed_and_the_sweep_goes_on(tmp_path, monkeypatch):
    script = faulty_ranks(tmp_path, "raise", monkeypatch)
    monkeypatch.setenv("BENCH_COLLECTIVE_TIMEOUT_S", "120")
    results = ResultsDir(tmp_path / "results")
    result = run_experiment(get_experiment("ablation-aspp"), results_dir=results, variants=["largefov", "aspp-s"],
                            **TWO_RANKS)
    assert (result.ran, len(result.failed)) == (2, 1)
    failed = read_record(results.record("ablation-aspp", "largefov", 0))
    assert failed["status"] == "failed" and failed["error"].startswith("rank 1: RuntimeError: injected fault at step 3")
    assert seconds(failed) < 120  # rank 0 was stopped, not left to time out in its collective
    following = read_record(results.record("ablation-aspp", "aspp-s", 0))
    assert following["status"] == "ok" and following["env"]["world_size"] == 2
    assert not still_running(script)


def test_a_rank_stuck_in_a_collective_fails_the_run_after_the_collective_timeout(tmp_path, monkeypatch):
    script = faulty_ranks(tmp_path, "hang", monkeypatch)
    monkeypatch.setenv("BENCH_COLLECTIVE_TIMEOUT_S", "10")
    results = ResultsDir(tmp_path / "results")
    result = run_experiment(get_experiment("ablation-aspp"), results_dir=results, variants=["largefov"], **TWO_RANKS)
    assert len(result.failed) == 1
    record = read_record(results.record("ablation-aspp", "largefov", 0))
    assert record["error"].startswith("rank 0: ") and "timed out" in record["error"].lower()
    assert seconds(record) < 120  # the 10 s collective timeout, start-up and the stop, not rank 1's 600 s
    assert not still_running(script)


def test_a_killed_rank_ends_the_run_as_failed(tmp_path, monkeypatch):
    script = faulty_ranks(tmp_path, "kill", monkeypatch)
    results = ResultsDir(tmp_path / "results")
    result = run_experiment(get_experiment("ablation-aspp"), results_dir=results, variants=["largefov"], **TWO_RANKS)
    assert len(result.failed) == 1
    record = read_record(results.record("ablation-aspp", "largefov", 0))
    assert record["error"].startswith("rank 1: killed by SIGKILL") and seconds(record) < 120
    assert not still_running(script)


def test_bad_input_met_by_a_rank_stops_the_sweep_with_its_one_line(tmp_path, monkeypatch):
    faulty_ranks(tmp_path, "bad-input", monkeypatch)
    with pytest.raises(BenchError) as err:
        run_experiment(get_experiment("ablation-aspp"), results_dir=tmp_path / "results", variants=["largefov"],
                       **TWO_RANKS)
    assert str(err.value) == "mask 0042.png: value 30 is not a label; valid: 0..20 and 255"
    assert not ResultsDir(tmp_path / "results").record("ablation-aspp", "largefov", 0).exists()
