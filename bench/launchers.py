"""Where a sweep's runs execute: here, one after another (``--launcher local``, the default, in
bench.runner), or as SLURM jobs through submitit (``--launcher slurm``).

One job = one (variant, seed): ``RunJob`` is a picklable callable ``job(cfg, results_dir)`` that
runs exactly what the local sweep runs for that config (bench.run.run_and_record: train, evaluate,
write the record into the same results dir). The submitting command waits for every job and
then builds the tables once, like a local sweep; with ``--no-wait`` it returns after printing
the job ids and ``bench table EXPERIMENT`` builds the tables later from the records.

A job that SLURM kills (time limit, preemption, out of memory) leaves no record; running the
same command again submits only the runs without a successful record.

With ``--devices N --num-nodes M`` a job asks for M nodes with N tasks per node (one task per
device, as Lightning needs under SLURM) and N GPUs per node (``--slurm-gpus-per-node`` to ask
for more); every task is one DDP rank and global rank 0 writes the record.
Job scripts, logs and pickles go to ResultsDir.slurm (RESULTS_DIR/slurm/EXPERIMENT/, git-ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.results_dir import ResultsDir
from bench.run import quiet_libraries, run_and_record
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


@dataclass(frozen=True)
class RunJob:
    """One (variant, seed) as a SLURM job: picklable, called as ``job(cfg, results_dir)``."""

    wandb_mode: str = "offline"
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1

    def __call__(self, cfg: RunConfig, results_dir: str | Path) -> dict[str, Any] | None:
        """The run's status on global rank 0 (submitit returns task 0's), None on other ranks."""
        quiet_libraries()
        record = run_and_record(cfg, ResultsDir(results_dir), wandb=WandbGuard(self.wandb_mode),
                                accelerator=self.accelerator, devices=self.devices, num_nodes=self.num_nodes)
        if record is None:
            return None
        return {"variant": cfg.variant, "seed": cfg.seed, "status": record["status"], "error": record["error"]}


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
        executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
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
