"""Where a sweep's runs execute: here, one after another (``--launcher local``, the default, in
bench.runner), or as SLURM jobs through submitit (``--launcher slurm``).

One job = one (variant, seed): ``RunJob`` is a picklable callable ``job(cfg, results_dir)`` that
runs exactly what the local sweep runs for that config (bench.run.run_and_record: train, evaluate,
write the record into the same results dir). The submitting command waits for every job and
then builds the tables once, like a local sweep; with ``--no-wait`` it returns after printing
the job ids and ``bench table EXPERIMENT`` builds the tables later from the records.

A job that reaches its time limit or is preempted saves its training state when SLURM signals it
(``--signal=USR2@90``, submitit's default: 90 s before the limit; at preemption SLURM sends it only
with PreemptMode=REQUEUE and SlurmctldParameters=preempt_send_user_signal), requeues itself (``scontrol requeue``, submitit's
checkpointing) and goes on from that step; the record counts the resumes (env.resumes). A run
stopped more than MAX_REQUEUES times is recorded as failed. A job killed outright (out of memory,
SIGKILL) leaves no record; running the same command again submits only the runs without a
successful record, and they resume from their last periodic checkpoint.

With ``--devices N --num-nodes M`` a job asks for M nodes with N tasks per node (one task per
device, as Lightning needs under SLURM) and N GPUs per node (``--slurm-gpus-per-node`` to ask
for more); every task is one DDP rank and global rank 0 writes the record.
Job scripts, logs and pickles go to ResultsDir.slurm (RESULTS_DIR/slurm/EXPERIMENT/, git-ignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from bench import distributed
from bench.atomic import atomic_write, write_json_atomic

from bench.errors import BenchError, one_line
from bench.provenance import environment, utc_now
from bench.results import read_record, write_record
from bench.results_dir import ResultsDir
from bench.resume import TrainingStopped, stop_on_signal
from bench.run import new_record, quiet_libraries, run_and_record
from bench.run_config import RunConfig
from bench.tracking import WandbGuard

CLUSTERS = ("slurm", "local", "debug")  # submitit's AutoExecutor clusters; local/debug run here


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None        # --slurm-partition
    gpus_per_node: int | None = None    # --slurm-gpus-per-node; default --devices (0 with --accelerator cpu)
    time_min: int = 240                 # --slurm-time, minutes per job
    account: str | None = None          # --slurm-account
    cpus_per_task: int | None = None    # --slurm-cpus-per-task
    cluster: str = "slurm"              # "local" / "debug": submitit runs the jobs on this machine (tests)
    poll_s: float = 10.0                # seconds between checks of the jobs' states while waiting


MAX_REQUEUES = 5  # a run stopped more often than this (time limit or preemption) says so in its record


@dataclass(frozen=True)
class RunJob:
    """One (variant, seed) as a SLURM job: picklable, called as ``job(cfg, results_dir)``.

    Checkpointable the submitit way: on the cluster's time-limit or preemption signal the run
    saves its training state at the next step boundary (bench.resume), then submitit calls
    ``checkpoint``, which requeues this job one ``requeues`` later; the requeued job resumes from
    that state. After ``max_requeues`` the run is recorded as failed instead of looping.
    """

    wandb_mode: str = "offline"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    requeues: int = 0           # how many times this run's job has been requeued so far
    max_requeues: int = MAX_REQUEUES

    def __call__(self, cfg: RunConfig, results_dir: str | Path) -> dict[str, Any] | None:
        """The run's status on global rank 0 (submitit returns task 0's), None on other ranks."""
        quiet_libraries()
        # one process: training saves its state at the signal; a data-parallel job keeps submitit's
        # own handling (requeued from its start: its ranks write no resume checkpoints)
        requeue = _defer_stop_signal() if self.devices * self.num_nodes == 1 else None
        try:
            record = run_and_record(cfg, ResultsDir(results_dir), wandb=WandbGuard(self.wandb_mode),
                                    accelerator=self.accelerator, devices=self.devices, num_nodes=self.num_nodes)
        except TrainingStopped as stop:
            if requeue is None:
                raise
            print(f"{cfg.experiment}/{cfg.variant} seed {cfg.seed}: {stop}; requeueing", file=sys.stderr, flush=True)
            requeue()  # submitit: self.checkpoint(...), then requeue and exit (or give up: UncompletedJobError)
            raise
        except Exception as err:
            if self.devices * self.num_nodes == 1:  # bad input, a record that could not be written
                raise
            # a rank of a data-parallel job failed (bench.run re-raises there)
            results = ResultsDir(results_dir)
            record_rank_failure(results, cfg, err)
            if distributed.global_rank() == 0:  # the record names every rank's error that has come
                time.sleep(STOP_GRACE_S)
                world = self.devices * self.num_nodes
                write_record(results, failed_run_record(cfg, results, range(world), {}, started=None,
                                                        devices=self.devices, num_nodes=self.num_nodes))
            raise
        if record is None:
            return None
        return {"variant": cfg.variant, "seed": cfg.seed, "status": record["status"], "error": record["error"]}

    def checkpoint(self, cfg: RunConfig, results_dir: str | Path):
        """submitit's hook on a stop: this job again, one requeue later (the training state is saved
        already); None, after recording the run as failed, once it has been requeued too often."""
        import submitit

        if self.requeues >= self.max_requeues:
            error = (f"stopped {self.requeues + 1} times (time limit or preemption) before finishing; "
                     f"raise --slurm-time, or rerun the sweep to go on from its resume checkpoint")
            write_record(ResultsDir(results_dir), new_record(cfg, error))
            return None
        return submitit.helpers.DelayedSubmission(replace(self, requeues=self.requeues + 1), cfg, results_dir)


def _defer_stop_signal():
    """Inside a submitit job: take over submitit's time-limit / preemption signal so that during
    training it asks for a stop at the next step boundary (bench.resume.stop_on_signal), and
    outside training hands over to submitit's own handler at once; return the call that hands
    over once training has stopped (checkpoint and requeue). None outside a job."""
    import submitit

    try:
        environment = submitit.JobEnvironment()
    except RuntimeError:  # not running as a submitit job (a direct call)
        return None
    sig = environment._usr_sig()
    handler = signal.getsignal(sig)
    if not callable(handler):
        return None
    stop_on_signal(sig, handler)
    return lambda: handler(sig, None)


def executor_for(folder: Path, options: SlurmOptions, job: RunJob, name: str):
    """A submitit executor asking for what one run needs (see the module docstring)."""
    import submitit

    if options.cluster not in CLUSTERS:
        raise BenchError(f"unknown submitit cluster {options.cluster!r}; valid: {', '.join(CLUSTERS)}")
    for flag, value in (("--slurm-time", options.time_min), ("--slurm-cpus-per-task", options.cpus_per_task),
                        ("--slurm-gpus-per-node", options.gpus_per_node)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0
                                  or (value == 0 and flag != "--slurm-gpus-per-node")):
            raise BenchError(f"{flag} must be a positive integer, got {value!r}")
    gpus = options.gpus_per_node
    if gpus is None:
        gpus = 0 if job.accelerator == "cpu" else job.devices
    if job.accelerator != "cpu" and 0 < gpus < job.devices:
        raise BenchError(f"--slurm-gpus-per-node {gpus} is fewer than --devices {job.devices}")
    if options.cluster == "local" and job.num_nodes > 1:
        raise BenchError("the local submitit cluster runs one node; --num-nodes must be 1")
    try:
        # submitit gives up after this many timeouts; our own bound (RunJob.max_requeues) decides first
        limits = {f"{options.cluster}_max_num_timeout": MAX_REQUEUES + 1} if options.cluster in ("slurm", "local") else {}
        executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster, **limits)
    except RuntimeError as err:  # submitit finds no srun/sbatch here
        raise BenchError(f"--launcher slurm: {err} Run `bench run` from a SLURM login node.") from err
    params: dict[str, Any] = {"name": name, "timeout_min": options.time_min, "nodes": job.num_nodes,
                              "tasks_per_node": job.devices, "gpus_per_node": gpus or None,
                              "cpus_per_task": options.cpus_per_task}
    if options.cluster == "slurm":
        params.update(slurm_partition=options.partition, slurm_account=options.account)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def submit(configs: list[RunConfig], results: ResultsDir, job: RunJob, options: SlurmOptions, *,
           name: str) -> list:
    """One job per config (a SLURM job array); the submitit jobs, in the configs' order."""
    if not configs:
        return []
    results = ResultsDir(results.root.resolve())  # jobs may start in another working directory
    for cfg in configs:  # the rank errors of an earlier attempt must not name this one's failure
        shutil.rmtree(results.ranks(cfg.experiment, cfg.variant, cfg.seed), ignore_errors=True)
    executor = executor_for(results.slurm(name), options, job, f"bench-{name}")
    try:
        return executor.map_array(job, configs, [str(results.root)] * len(configs))
    except (OSError, RuntimeError) as err:  # no sbatch here, or sbatch refused the job
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BenchError(f"--launcher slurm: submitting failed ({first}); run from a SLURM login node, "
                         "check --slurm-partition / --slurm-account") from err


def wait_for(jobs: list, configs: list[RunConfig], *, poll_s: float = SlurmOptions.poll_s) -> list[str]:
    """Wait for every job; the failed runs as 'variant/seed-N: why' (a failed run or a dead job)."""
    from tqdm.auto import tqdm

    failed = []
    by_id = {job.job_id: cfg for job, cfg in zip(jobs, configs)}
    bar = tqdm(total=len(jobs), desc="SLURM jobs", unit="job", dynamic_ncols=True)
    import submitit

    for job in submitit.helpers.as_completed(jobs, poll_frequency=poll_s):
        cfg = by_id[job.job_id]
        try:
            summary = job.result()
        except Exception as err:  # the job died (time limit, preemption, memory) or raised
            lines = [line for line in str(err).strip().splitlines() if line.strip()]
            failed.append(f"{cfg.variant}/seed-{cfg.seed}: job {job.job_id} failed"
                          + (f" ({lines[-1].strip()[:200]})" if lines else "")
                          + f"; log: {job.paths.stderr}")
        else:
            if summary is not None and summary["status"] != "ok":
                failed.append(f"{cfg.variant}/seed-{cfg.seed}: {summary['error']}")
        bar.update(1)
    bar.close()
    return failed


# ---------------------------------------------------------------- data-parallel runs on this node


# the command of one rank (bench.rank); tests put a fault-injecting script in its place
RANK_COMMAND = [sys.executable, "-m", "bench.rank"]
STOP_GRACE_S = 5.0  # after one rank fails: how long the others get to end before SIGKILL
POLL_S = 0.2
EXIT_BAD_INPUT = 2  # a rank met bad input (a BenchError): the sweep stops with its line, as in one process
WANDB_MODE_FILE = "wandb-mode"  # rank 0's W&B mode after its run (bench.rank)
SWEEP_PID_ENV = "BENCH_SWEEP_PID"  # the watching sweep, so a rank knows whom to die with (bench.rank)


def run_ranks(cfg: RunConfig, results: ResultsDir, *, wandb: WandbGuard, accelerator: str, devices: int,
              num_nodes: int) -> dict[str, Any] | None:
    """One data-parallel run's ``devices`` ranks on this node, each a fresh process (bench.rank),
    watched until they end. When one fails (an exception, a NaN loss, a kill, a collective that
    timed out) the others are stopped within STOP_GRACE_S and the run is recorded as failed with
    the first failure named; the sweep goes on with the next run in new processes. Bad input met
    by a rank (a BenchError) stops the sweep with its one line, as in one process. ``wandb``
    follows rank 0's W&B fallbacks. The record on node 0 (None on the other nodes)."""
    node = distributed.node_rank()
    global_ranks = [node * devices + local for local in range(devices)]
    for rank in global_ranks:  # this node's errors of an earlier attempt (other nodes clear their own)
        results.rank_error(cfg.experiment, cfg.variant, cfg.seed, rank).unlink(missing_ok=True)
    scratch = results.ranks(cfg.experiment, cfg.variant, cfg.seed)
    spec = write_json_atomic(scratch / f"spec-node-{node}.json", {
        "config": cfg.to_dict(), "results": str(results.root), "wandb": wandb.mode, "accelerator": accelerator,
        "devices": devices, "num_nodes": num_nodes})
    address, port = distributed.rendezvous(num_nodes)
    started = utc_now()
    procs: list[subprocess.Popen] = []
    try:
        for local, rank in enumerate(global_ranks):
            env = {**os.environ, "MASTER_ADDR": address, "MASTER_PORT": str(port), "NODE_RANK": str(node),
                   "LOCAL_RANK": str(local), "RANK": str(rank), "WORLD_SIZE": str(devices * num_nodes),
                   SWEEP_PID_ENV: str(os.getpid())}
            procs.append(subprocess.Popen([*RANK_COMMAND, str(spec)], env=env))
        failed = _watch(procs)
    finally:
        _stop(procs)
    mode = scratch / WANDB_MODE_FILE
    if mode.is_file():  # rank 0's W&B stepped down (offline, disabled): so do the next runs
        wandb.mode = mode.read_text().strip()
    bad_input = [rank for local, rank in enumerate(global_ranks) if procs[local].returncode == EXIT_BAD_INPUT]
    if bad_input:
        error = results.rank_error(cfg.experiment, cfg.variant, cfg.seed, bad_input[0])
        raise BenchError(error.read_text().splitlines()[0].removeprefix("BenchError: "))
    if node != 0:
        return None
    if failed is None:
        shutil.rmtree(scratch, ignore_errors=True)
        return read_record(results.record(cfg.experiment, cfg.variant, cfg.seed))
    codes = {rank: procs[local].returncode for local, rank in enumerate(global_ranks)}
    record = failed_run_record(cfg, results, [global_ranks[local] for local in failed], codes,
                               started=started, devices=devices, num_nodes=num_nodes)
    write_record(results, record)
    return record


def record_rank_failure(results: ResultsDir, cfg: RunConfig, err: BaseException) -> None:
    """This rank's error, one line first, beside the run: the sweep names it in the record."""
    path = results.rank_error(cfg.experiment, cfg.variant, cfg.seed, distributed.global_rank())
    atomic_write(path, lambda tmp: tmp.write_text(one_line(err, 500) + "\n" + traceback.format_exc()))


def failed_run_record(cfg: RunConfig, results: ResultsDir, failed: Any, codes: dict[int, int | None], *,
                      started: str | None, devices: int, num_nodes: int) -> dict[str, Any]:
    """The record of a data-parallel run a rank failed: the ``failed`` ranks' errors, the first
    failure first (error files by their time; a rank without one, by its exit code, after them)."""
    def error_file(rank: int) -> Path:
        return results.rank_error(cfg.experiment, cfg.variant, cfg.seed, rank)

    with_file = sorted((r for r in failed if error_file(r).is_file()), key=lambda r: error_file(r).stat().st_mtime)
    errors = [f"rank {rank}: {error_file(rank).read_text().splitlines()[0]}" for rank in with_file]
    for rank in failed:
        if rank not in with_file and codes.get(rank) is not None and codes[rank] < 0:
            errors.append(f"rank {rank}: killed by {signal.Signals(-codes[rank]).name}")
        elif rank not in with_file and codes.get(rank):
            errors.append(f"rank {rank}: exited with code {codes[rank]}")
    record = new_record(cfg, "; ".join(errors or ["a rank failed"]) + " (the other ranks were stopped)")
    record["env"] = {**environment(torch.device("cpu")), "started": started, "ended": utc_now(),
                     "devices": devices, "num_nodes": num_nodes, "world_size": devices * num_nodes}
    return record


def _watch(procs: list[subprocess.Popen]) -> list[int] | None:
    """Wait until every rank has ended well (None), or one has failed: the local ranks that had
    failed by then."""
    while True:
        codes = [p.poll() for p in procs]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            return failed
        if all(code == 0 for code in codes):
            return None
        time.sleep(POLL_S)


def _stop(procs: list[subprocess.Popen]) -> None:
    """End the ranks still running: SIGTERM, then SIGKILL after STOP_GRACE_S (a rank blocked in a
    collective does not see SIGTERM)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
