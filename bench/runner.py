"""The sweep: plan every (variant, seed) of an experiment, claim, launch, summarise.

Finished runs are skipped when the same command is run again, so an interrupted sweep resumes
where it stopped. A run that raises is recorded as failed and the sweep goes on. One run, from
config to record, is bench.run; the tables are bench.tables; where runs execute (here or as SLURM
jobs) is bench.launchers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bench import claims, distributed, launchers, tracking, trunks
from bench.crf_tuning import tuned_crf_params
from bench.errors import BenchError
from bench.registry import Experiment, check_inference, resolve_variant
from bench.results import load_records, read_record
from bench.results_dir import ResultsDir
from bench.resume import remove_resume_state
from bench.run import datamodule_of, initial_model, run_and_record
from bench.run_config import RunConfig
from bench.tables import summarize, write_tables
from bench.tracking import WANDB_MODES, WandbGuard


@dataclass
class SweepResult:
    planned: int
    ran: int
    skipped: int
    failed: list[str]
    tables: dict[str, Path]  # empty on nodes other than 0, with runs left to others, and for --no-wait
    jobs: list[str] = field(default_factory=list)  # SLURM job ids (--launcher slurm)
    left: list[str] = field(default_factory=list)  # runs another live `bench run` is doing (claims)


MIN_CROP = 32  # the deepest output stride: a smaller crop leaves the trunk's last map a single pixel or less


def default_wandb_mode() -> str:
    """Online only when the user has an API key; otherwise offline files to sync later."""
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def plan_runs(experiment: Experiment, *, scale: str, data: str, seeds: int | None,
              variants: list[str] | None, max_steps: int | None,
              results_dir: str | Path | ResultsDir = Path("results"), backbone_weights: str | None = None,
              inference: dict[str, Any] | None = None, seed: int | None = None,
              num_val: int | None = None, smoke: bool = False, lr: float | None = None,
              amp: bool = False, val_every: int | None = None, fetch_weights: bool = True,
              data_seed: int | None = None, crop_size: int | None = None) -> list[RunConfig]:
    """All (variant, seed) RunConfigs, with every variant's knobs validated before anything runs.

    ``seeds`` N runs seeds 0..N-1 (default: the scale's); ``seed`` K runs seed K alone (one W&B
    sweep trial). ``num_val`` evaluates on the first N validation images; ``smoke`` runs every
    stage on as little as possible (RunConfig.as_smoke; ``max_steps`` and ``num_val`` still win).
    ``data_seed`` draws another synthetic data set (pilots: the committed results use seed 0).
    ``crop_size`` overrides the scale's training crop (synthetic data: the image size).
    ``backbone_weights`` is the ``--backbone-weights`` spec (bench.trunks.parse_spec; None: each
    scale's own trunk weights). Every run's trunk file is fetched (downloaded through torchvision /
    timm where missing) and each distinct file loaded once into a network that uses it, so a
    missing or unfitting file is one BenchError before anything runs. ``fetch_weights=False``
    (a plan to show) downloads and loads nothing: an uncached file has sha256 and path None.
    """
    results = ResultsDir.of(results_dir)
    selected = experiment.select(variants)
    if max_steps is not None and max_steps < 1:
        raise BenchError(f"--max-steps must be at least 1, got {max_steps}")
    if seed is not None and seeds is not None:
        raise BenchError("--seed K runs one seed and --seeds N runs seeds 0..N-1: give one of them")
    if seed is not None and seed < 0:
        raise BenchError(f"--seed must be at least 0, got {seed}")
    if num_val is not None and num_val < 1:
        raise BenchError(f"--num-val must be at least 1, got {num_val}")
    if val_every is not None and val_every < 1:
        raise BenchError(f"--val-every must be at least 1 (training steps between validations), got {val_every}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise BenchError(f"--lr must be a positive number, got {lr}")
    if data_seed is not None and (data_seed < 0 or not data.startswith("synthetic")):
        raise BenchError(f"--data-seed {data_seed}: valid: an integer >= 0, with --data synthetic only "
                         "(real data sets are their lists)")
    if crop_size is not None and crop_size < MIN_CROP:
        raise BenchError(f"--crop-size must be at least {MIN_CROP} (one pixel at output stride 32), got {crop_size}")
    weights_spec = trunks.parse_spec(backbone_weights)  # malformed, unknown backbone, no such file: here
    configs = []
    for variant in selected:
        version, protocol, knobs = resolve_variant(experiment, variant, scale, data=data)
        strategy = check_inference(experiment, variant, version, knobs, {**variant.inference, **(inference or {})})
        n_seeds = protocol.seeds if seeds is None else seeds
        if n_seeds < 1:
            raise BenchError(f"--seeds must be at least 1, got {n_seeds}")
        for run_seed in ([seed] if seed is not None else range(n_seeds)):
            cfg = RunConfig(experiment=experiment.name, variant=variant.name, seed=run_seed,
                            scale=scale, data=data, version=version, knobs=knobs, protocol=protocol,
                            crf=experiment.crf, crf_params=tuned_crf_params(results, experiment.name, variant.name),
                            inference=strategy, data_seed=0 if data_seed is None else data_seed)
            cfg = cfg.as_smoke() if smoke else cfg
            configs.append(cfg.with_max_steps(max_steps).with_num_val(num_val).with_lr(lr).with_crop_size(crop_size)
                           .with_precision(amp)
                           .with_val_every(val_every))
    for cfg in configs[:1]:  # a bad --data spec fails here, before anything runs or is downloaded
        datamodule_of(cfg)
    return _with_trunk_weights(configs, weights_spec, fetch=fetch_weights)


def _with_trunk_weights(configs: list[RunConfig], spec: trunks.WeightsSpec, fetch: bool) -> list[RunConfig]:
    """Each run with the trunk weights it starts from (bench.trunks.resolve). Every distinct file
    on this machine (fetched, or already cached) is loaded once into the first network that uses
    it: a file that does not fit its backbone (or the width) is one line here, not a failed run later."""
    resolved = [replace(cfg, backbone_weights=trunks.resolve(cfg.scale, cfg.version, cfg.knobs, spec, fetch=fetch))
                for cfg in configs]
    checked = set()
    for cfg in resolved:
        weights = cfg.backbone_weights
        # a plan to show (fetch False) checks the files already here too: loading one costs seconds
        if weights is not None and weights["path"] and (weights["backbone"], weights["sha256"]) not in checked:
            checked.add((weights["backbone"], weights["sha256"]))
            initial_model(cfg)
    return resolved


def is_finished(record: dict[str, Any] | None, cfg: RunConfig) -> bool:
    """A run is done when its record exists and succeeded with the same identity (run_key)."""
    # from_dict fills fields added since the record was written with their defaults and drops
    # the legacy ones (RunConfig.LEGACY_FIELDS), so older records still count
    return (record is not None and record["status"] == "ok"
            and RunConfig.from_dict(record["config"]).run_key() == cfg.run_key())


def recorded(results: ResultsDir, cfg: RunConfig) -> dict[str, Any] | None:
    """The record at cfg's place, read now (another process may have just written it), or None."""
    path = results.record(cfg.experiment, cfg.variant, cfg.seed)
    return read_record(path) if path.exists() else None


def run_experiment(experiment: Experiment, *, results_dir: str | Path | ResultsDir, scale: str = "tiny",
                   data: str = "synthetic", seeds: int | None = None,
                   variants: list[str] | None = None, max_steps: int | None = None,
                   wandb_mode: str | None = None, accelerator: str = "auto",
                   backbone_weights: str | None = None, inference: dict[str, Any] | None = None,
                   seed: int | None = None, num_val: int | None = None, smoke: bool = False,
                   devices: int = 1, num_nodes: int = 1, launcher: str = "local",
                   slurm=None, wait: bool = True, lr: float | None = None, amp: bool = False,
                   val_every: int | None = None, data_seed: int | None = None,
                   crop_size: int | None = None) -> SweepResult:
    """Every (variant, seed) not yet recorded: here, one after the other (``launcher="local"``,
    each run on ``devices`` x ``num_nodes`` with DDP), or as SLURM jobs (``"slurm"``, see
    bench.launchers; ``slurm`` a launchers.SlurmOptions); then the tables, once."""
    wandb_mode = wandb_mode or default_wandb_mode()
    if wandb_mode not in WANDB_MODES:
        raise BenchError(f"unknown --wandb mode {wandb_mode!r}; valid: {', '.join(WANDB_MODES)}")
    if launcher not in ("local", "slurm"):
        raise BenchError(f"unknown --launcher {launcher!r}; valid: local, slurm")
    world = distributed.world_size(devices, num_nodes)
    results = ResultsDir.of(results_dir)
    configs = plan_runs(experiment, scale=scale, data=data, seeds=seeds, variants=variants,
                        max_steps=max_steps, results_dir=results, backbone_weights=backbone_weights,
                        inference=inference, seed=seed, num_val=num_val, smoke=smoke, lr=lr, amp=amp,
                        val_every=val_every, data_seed=data_seed, crop_size=crop_size)
    for cfg in configs:
        distributed.per_device_batch(cfg.protocol.batch_size, world)
    if world > 1:
        distributed.collective_timeout()  # a bad $BENCH_COLLECTIVE_TIMEOUT_S: one line before anything runs
    results.ensure_writable()
    finished = [is_finished(recorded(results, cfg), cfg) for cfg in configs]
    todo = [cfg for cfg, done in zip(configs, finished) if not done]
    if num_nodes == 1:  # one sweep process (several nodes: each node's sweep is one of many)
        for cfg, done in zip(configs, finished):
            if done:
                _tidy_finished(results, cfg)
    wandb = WandbGuard(wandb_mode)
    if launcher == "slurm":  # one job per run, each doing what the loop below does for its config
        job = launchers.RunJob(wandb_mode=wandb_mode, accelerator=accelerator, devices=devices, num_nodes=num_nodes)
        slurm = slurm or launchers.SlurmOptions()
        jobs = launchers.submit(todo, results, job, slurm, name=experiment.name)
        job_ids = [j.job_id for j in jobs]
        counts = dict(planned=len(configs), skipped=len(configs) - len(todo), jobs=job_ids)
        if not wait:
            return SweepResult(**counts, ran=0, failed=[], tables={})
        failed = launchers.wait_for(jobs, todo, poll_s=slurm.poll_s)
        if not results.record_paths(experiment.name):  # every job died before writing a record
            return SweepResult(**counts, ran=len(todo), failed=failed, tables={})
        tables = _write_tables_and_summary(experiment, results, scale, wandb, ran=len(todo))
        return SweepResult(**counts, ran=len(todo), failed=failed, tables=tables)
    failed: list[str] = []
    ran = 0
    # Several `bench run` on one results dir share the work through claim files (bench.claims);
    # the sweeps of a multi-node run do the same runs together and claim nothing.
    share = num_nodes == 1
    node_zero = distributed.node_rank() == 0  # records and tables are node 0's
    # nothing to do: no bar (a "run 0/0" bar only says what the summary line below says)
    sweep = tqdm(total=len(todo), desc=f"{experiment.name}", unit="run", position=0, dynamic_ncols=True,
                 disable=not todo or not node_zero,
                 bar_format="{desc}: run {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}] {postfix}")

    def claim_path(cfg: RunConfig) -> Path:
        return results.claim(cfg.experiment, cfg.variant, cfg.seed)

    def claim_and_run(cfg: RunConfig) -> bool:
        """Run ``cfg`` unless another live process holds it (False: left to that process)."""
        nonlocal ran
        claim = None
        if share:
            claim, _ = claims.acquire(claim_path(cfg))
            if claim is None:
                return False
        try:
            if share and is_finished(recorded(results, cfg), cfg):  # another process finished it meanwhile
                return True
            sweep.set_postfix_str(f"{cfg.variant} seed {cfg.seed}")
            if world > 1:  # the run's ranks are processes of their own, watched by this sweep
                record = launchers.run_ranks(cfg, results, wandb=wandb, accelerator=accelerator,
                                             devices=devices, num_nodes=num_nodes)
            else:
                record = run_and_record(cfg, results, wandb=wandb, accelerator=accelerator)
            ran += 1
            if record is not None and record["status"] != "ok":
                failed.append(f"{cfg.variant}/seed-{cfg.seed}: {record['error']}")
            return True
        finally:
            if claim is not None:
                claim.release()
            sweep.update()

    deferred = [cfg for cfg in todo if not claim_and_run(cfg)]
    # a second pass takes over the runs whose claimer has died (or given up) since
    for cfg in deferred:
        if not is_finished(recorded(results, cfg), cfg) and claims.held_by_other(claim_path(cfg)) is None:
            claim_and_run(cfg)
    sweep.close()
    left = []
    for cfg in deferred:
        holder = None if is_finished(recorded(results, cfg), cfg) else claims.held_by_other(claim_path(cfg))
        if holder is not None:
            left.append(f"{cfg.variant}/seed-{cfg.seed} {claims.describe(holder, claim_path(cfg))}")
    counts = dict(planned=len(configs), ran=ran, skipped=len(configs) - ran - len(left), failed=failed, left=left)
    # another node of a multi-node sweep: node 0 writes the tables; with runs left to other
    # processes, the last one to finish writes them
    if not node_zero or left:
        return SweepResult(**counts, tables={})
    return SweepResult(**counts, tables=_write_tables_and_summary(experiment, results, scale, wandb, ran=ran))


def _write_tables_and_summary(experiment: Experiment, results: ResultsDir, scale: str,
                              wandb: WandbGuard, *, ran: int) -> dict[str, Path]:
    """The tables and plots of a finished sweep (one writer at a time, when two sweeps finish
    together), then, when this sweep ran something, its W&B summary run."""
    lock = claims.wait_and_acquire(results.tables_lock(experiment.name))
    try:
        records = load_records(results, experiment.name)
        tables = write_tables(experiment, results, scale=scale, records=records)
    finally:
        if lock is not None:
            lock.release()
    # Under `wandb agent` (bench sweep) the trial's run is the run; a summary run would take its id.
    if ran and not os.environ.get("WANDB_SWEEP_ID"):
        tracking.log_summary_run(experiment, results, summarize(experiment, records), tables, wandb)
    return tables


def _tidy_finished(results: ResultsDir, cfg: RunConfig) -> None:
    """What a run killed after writing its record but before cleaning up leaves: its resume
    checkpoint (the record supersedes it) and its claim, once the claiming process is gone."""
    remove_resume_state(results, cfg.run_key())
    claims.clear_stale(results.claim(cfg.experiment, cfg.variant, cfg.seed))
