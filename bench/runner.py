"""Run an experiment: every (variant, seed) -> train, validate, time -> one record -> tables.

Finished runs are skipped when the same command is run again, so an interrupted sweep resumes
where it stopped. A run that raises is recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from tqdm.auto import tqdm

from bench import claims, distributed, plots, report, reuse
from bench.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from bench.run_config import RunConfig, protocol_for
from bench.data import SegmentationDataModule, denormalize, num_classes_of
from bench.evaluation.pictures import prediction_grid, predict_examples, save_png
from bench.errors import BenchError
from bench.evaluation.crf import CRFParams
from bench.evaluation.crf_search import search_crf
from bench.evaluation.evaluate import evaluate_with_crf
from bench.evaluation.inference import Inference, at_output_stride
from bench.evaluation.speed import count_gflops, count_params_m, measure_fps
from bench.models import build_model, make_config
from bench.models.weights import load_backbone_weights
from bench.module import SegmentationModule
from bench.provenance import environment, utc_now
from bench.registry import Experiment
from bench.resume import (PeriodicCheckpoint, ReplayedLoader, checkpoint_every, resume_path,
                          usable_checkpoint)
from bench.results import (SCHEMA_VERSION, find_records, load_records, read_record, record_path,
                           write_json_atomic, write_record)

from bench.tracking import WANDB_MODES, WANDB_PROJECT, WandbGuard


@dataclass
class SweepResult:
    planned: int
    ran: int
    skipped: int
    failed: list[str]
    tables: dict[str, Path]  # empty on ranks other than 0, and for --launcher slurm --no-wait
    jobs: list[str] = field(default_factory=list)  # SLURM job ids (--launcher slurm)
    left: list[str] = field(default_factory=list)  # runs another live `bench run` is doing (claims)


def default_wandb_mode() -> str:
    """Online only when the user has an API key; otherwise offline files to sync later."""
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def plan_runs(experiment: Experiment, *, scale: str, data: str, seeds: int | None,
              variants: list[str] | None, max_steps: int | None,
              results_dir: Path = Path("results"), backbone_weights: str | None = None,
              inference: dict[str, Any] | None = None, seed: int | None = None,
              num_val: int | None = None, smoke: bool = False, lr: float | None = None,
              amp: bool = False, val_every: int | None = None) -> list[RunConfig]:
    """All (variant, seed) RunConfigs, with every variant's knobs validated before anything runs.

    ``seeds`` N runs seeds 0..N-1 (default: the scale's); ``seed`` K runs seed K alone (one W&B
    sweep trial). ``num_val`` evaluates on the first N validation images; ``smoke`` runs every
    stage on as little as possible (RunConfig.as_smoke; ``max_steps`` and ``num_val`` still win).
    """
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
    if backbone_weights is not None:
        if not Path(backbone_weights).is_file():
            raise BenchError(f"--backbone-weights {backbone_weights}: no such file")
        backbone_weights = str(Path(backbone_weights).resolve())
    configs = []
    for variant in selected:
        version, protocol, knobs = resolve_variant(experiment, variant, scale, data=data)
        strategy = check_inference(experiment, variant, version, knobs, {**variant.inference, **(inference or {})})
        n_seeds = protocol.seeds if seeds is None else seeds
        if n_seeds < 1:
            raise BenchError(f"--seeds must be at least 1, got {n_seeds}")
        for run_seed in ([seed] if seed is not None else range(n_seeds)):
            cfg = RunConfig(experiment=experiment.name, variant=variant.name,
                            variant_index=experiment.variant_names().index(variant.name), seed=run_seed,
                            scale=scale, data=data, version=version, knobs=knobs, protocol=protocol,
                            crf=experiment.crf, crf_params=tuned_crf_params(results_dir, experiment.name, variant.name),
                            backbone_weights=backbone_weights, inference=strategy)
            cfg = cfg.as_smoke() if smoke else cfg
            configs.append(cfg.with_max_steps(max_steps).with_num_val(num_val).with_lr(lr).with_precision(amp)
                           .with_val_every(val_every))
    for cfg in configs[:1]:  # a bad --data spec or weights file fails here, before anything runs
        _datamodule(cfg)
        if backbone_weights is not None:
            _initial_model(cfg)
    return configs


def _datamodule(cfg: RunConfig, world: int = 1) -> SegmentationDataModule:
    """The run's data; with DDP each of the ``world`` ranks loads batch / world images per step."""
    p = cfg.protocol
    return SegmentationDataModule(cfg.data, data_seed=cfg.data_seed, image_size=p.crop_size,
                                  batch_size=distributed.per_device_batch(p.batch_size, world),
                                  num_train=p.num_train, num_val=p.num_val,
                                  num_workers=p.num_workers)


def resolve_variant(experiment: Experiment, variant, scale: str,
                    data: str = "synthetic") -> tuple[str, Any, dict[str, Any]]:
    """(version, protocol, validated model knobs) of a variant at a scale: the scale's width and
    model knobs, overridden by the experiment's fixed knobs and the variant's own; num_classes
    from the data spec (21 synthetic and VOC, 19 Cityscapes)."""
    version = experiment.version_of(variant)
    protocol = protocol_for(scale, version)
    knobs = {"width": protocol.width, "num_classes": num_classes_of(data), **protocol.model_knobs,
             **experiment.knobs_of(variant)}
    try:
        make_config(version, knobs)
    except ValueError as err:
        raise BenchError(f"{experiment.name}/{variant.name}: {err}") from err
    return version, protocol, knobs


def check_inference(experiment: Experiment, variant, version: str, knobs: dict[str, Any],
                    inference: dict[str, Any]) -> dict[str, Any]:
    """The variant's test-time strategy, validated (an eval output stride needs a v3/v3+ model)."""
    try:
        strategy = Inference(**inference)
        if strategy.output_stride is not None:
            make_config(version, {**knobs, "output_stride": strategy.output_stride})
    except (TypeError, ValueError) as err:
        raise BenchError(f"{experiment.name}/{variant.name}: inference {inference}: {err}") from err
    return strategy.to_dict() if not strategy == Inference() else {}


def eval_model(cfg: RunConfig, model):
    """The trained network as evaluated: rebuilt at the eval output stride when one is asked."""
    os_ = cfg.inference.get("output_stride")
    return at_output_stride(model, lambda s: build_model(cfg.version, **{**cfg.knobs, "output_stride": s}), os_)


def _initial_model(cfg: RunConfig):
    """The variant's network, with ImageNet backbone weights when the run asks for them."""
    model = build_model(cfg.version, **cfg.knobs)
    if cfg.backbone_weights is not None:
        try:
            load_backbone_weights(model, cfg.backbone_weights)
        except ValueError as err:
            raise BenchError(f"--backbone-weights {cfg.backbone_weights}: {err}") from err
    return model


def is_finished(results_dir: Path, cfg: RunConfig) -> bool:
    """A run is done when its record exists and succeeded with the same config."""
    path = record_path(results_dir, cfg.experiment, cfg.variant, cfg.seed)
    if not path.exists():
        return False
    record = read_record(path)
    # from_dict fills fields added since the record was written with their defaults
    return record["status"] == "ok" and RunConfig.from_dict(record["config"]).run_key() == cfg.run_key()


def run_experiment(experiment: Experiment, *, results_dir: Path, scale: str = "tiny",
                   data: str = "synthetic", seeds: int | None = None,
                   variants: list[str] | None = None, max_steps: int | None = None,
                   wandb_mode: str | None = None, accelerator: str = "auto",
                   backbone_weights: str | None = None, inference: dict[str, Any] | None = None,
                   seed: int | None = None, num_val: int | None = None, smoke: bool = False,
                   devices: int = 1, num_nodes: int = 1, launcher: str = "local",
                   slurm=None, wait: bool = True, lr: float | None = None, amp: bool = False,
                   val_every: int | None = None) -> SweepResult:
    """Every (variant, seed) not yet recorded: here, one after the other (``launcher="local"``,
    each run on ``devices`` x ``num_nodes`` with DDP), or as SLURM jobs (``"slurm"``, see
    bench.launchers; ``slurm`` a launchers.SlurmOptions); then the tables, once."""
    wandb_mode = wandb_mode or default_wandb_mode()
    if wandb_mode not in WANDB_MODES:
        raise BenchError(f"unknown --wandb mode {wandb_mode!r}; valid: {', '.join(WANDB_MODES)}")
    if launcher not in ("local", "slurm"):
        raise BenchError(f"unknown --launcher {launcher!r}; valid: local, slurm")
    world = distributed.world_size(devices, num_nodes)
    configs = plan_runs(experiment, scale=scale, data=data, seeds=seeds, variants=variants,
                        max_steps=max_steps, results_dir=results_dir, backbone_weights=backbone_weights,
                        inference=inference, seed=seed, num_val=num_val, smoke=smoke, lr=lr, amp=amp,
                        val_every=val_every)
    for cfg in configs:
        distributed.per_device_batch(cfg.protocol.batch_size, world)
    results_dir = _writable_dir(results_dir)
    finished = [is_finished(results_dir, cfg) for cfg in configs]
    todo = [cfg for cfg, done in zip(configs, finished) if not done]
    if world == 1:
        for cfg, done in zip(configs, finished):
            if done:
                _tidy_finished(results_dir, cfg)
    wandb = WandbGuard(wandb_mode)
    if launcher == "slurm":  # one job per run, each doing what the loop below does for its config
        from bench import launchers

        job = launchers.RunJob(wandb_mode=wandb_mode, accelerator=accelerator, devices=devices, num_nodes=num_nodes)
        slurm = slurm or launchers.SlurmOptions()
        jobs = launchers.submit(todo, results_dir, job, slurm, name=experiment.name)
        job_ids = [j.job_id for j in jobs]
        if not wait:
            return SweepResult(planned=len(configs), ran=0, skipped=len(configs) - len(todo), failed=[],
                               tables={}, jobs=job_ids)
        failed = launchers.wait_for(jobs, todo, poll_s=slurm.poll_s)
        if not find_records(results_dir, experiment.name):  # every job died before writing a record
            return SweepResult(planned=len(configs), ran=len(todo), skipped=len(configs) - len(todo),
                               failed=failed, tables={}, jobs=job_ids)
        tables = _write_tables_and_summary(experiment, results_dir, scale, wandb)
        return SweepResult(planned=len(configs), ran=len(todo), skipped=len(configs) - len(todo),
                           failed=failed, tables=tables, jobs=job_ids)
    failed: list[str] = []
    ran = 0
    # Several `bench run` on one results dir share the work through claim files (bench.claims);
    # the ranks of one DDP run do the same runs together and claim nothing.
    share = world == 1
    sweep = tqdm(total=len(todo), desc=f"{experiment.name}", unit="run", position=0, dynamic_ncols=True,
                 disable=not distributed.is_global_zero(),
                 bar_format="{desc}: run {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}] {postfix}")

    def claim_and_run(cfg: RunConfig) -> bool:
        """Run ``cfg`` unless another live process holds it (False: left to that process)."""
        nonlocal ran
        claim = None
        if share:
            claim, _ = claims.acquire(_claim_path(results_dir, cfg))
            if claim is None:
                return False
        try:
            if share and is_finished(results_dir, cfg):  # another process finished it meanwhile
                return True
            sweep.set_postfix_str(f"{cfg.variant} seed {cfg.seed}")
            record = run_and_record(cfg, results_dir, wandb=wandb, accelerator=accelerator, devices=devices,
                                    num_nodes=num_nodes)
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
        if not is_finished(results_dir, cfg) and claims.held_by_other(_claim_path(results_dir, cfg)) is None:
            claim_and_run(cfg)
    sweep.close()
    left = []
    for cfg in deferred:
        path = _claim_path(results_dir, cfg)
        holder = None if is_finished(results_dir, cfg) else claims.held_by_other(path)
        if holder is not None:
            left.append(f"{cfg.variant}/seed-{cfg.seed} {claims.describe(holder, path)}")
    counts = dict(planned=len(configs), ran=ran, skipped=len(configs) - ran - len(left), failed=failed, left=left)
    if not distributed.is_global_zero():  # a DDP rank > 0: rank 0 writes the records and tables
        return SweepResult(**counts, tables={})
    if left:  # the last process to finish writes the tables
        return SweepResult(**counts, tables={})
    return SweepResult(**counts, tables=_write_tables_and_summary(experiment, results_dir, scale, wandb))


def _write_tables_and_summary(experiment: Experiment, results_dir: Path, scale: str,
                              wandb: WandbGuard) -> dict[str, Path]:
    """The tables and plots of a finished sweep (one writer at a time, when two sweeps finish
    together), then its W&B summary run."""
    lock = claims.wait_and_acquire(results_dir / claims.CLAIMS_DIR / experiment.name / "tables.claim")
    try:
        tables = write_tables(experiment, results_dir, scale=scale)
    finally:
        if lock is not None:
            lock.release()
    # Under `wandb agent` (bench sweep) the trial's run is the run; a summary run would take its id.
    if not os.environ.get("WANDB_SWEEP_ID"):
        _log_summary_run(experiment, results_dir, tables, wandb)
    return tables


def _tidy_finished(results_dir: Path, cfg: RunConfig) -> None:
    """What a run killed after writing its record but before cleaning up leaves: its resume
    checkpoint (the record supersedes it) and its claim, once the claiming process is gone."""
    resume_path(results_dir, cfg.run_key()).unlink(missing_ok=True)
    claims.clear_stale(_claim_path(results_dir, cfg))


def _claim_path(results_dir: Path, cfg: RunConfig) -> Path:
    return claims.claim_path(results_dir, cfg.experiment, cfg.variant, cfg.seed)


def write_tables(experiment: Experiment, results_dir: Path, *, scale: str | None = None) -> dict[str, Path]:
    records = load_records(results_dir, experiment.name)
    if records.empty:
        raise BenchError(f"no records of {experiment.name} under {results_dir}/runs; "
                         f"run `bench run {experiment.name}` first")
    summary = report.aggregate(records)
    scale = scale or _scale_of_records(results_dir, experiment.name)
    tables = report.write_tables(summary, results_dir, experiment.name,
                                 title=experiment.paper_table, scale=scale)
    ok = summary[summary["status"] == "ok"]
    if not ok.empty:
        tables["png"] = plots.plot_tradeoff(ok, results_dir / f"{experiment.name}.png",
                                            title=f"{experiment.paper_table} (scale: {scale})")
    trimap = plots.plot_trimap(results_dir, experiment.name, results_dir / f"{experiment.name}-trimap.png",
                               title=f"{experiment.name}: trimap (scale: {scale})")
    if trimap is not None:
        tables["trimap"] = trimap
    curve = plots.plot_learning_curves(results_dir, experiment.name, results_dir / f"{experiment.name}-curve.png",
                                       title=f"{experiment.name}: learning curves (scale: {scale})")
    if curve is not None:
        tables["curve"] = curve
    per_class = plots.plot_per_class(results_dir, experiment.name, summary,
                                     results_dir / f"{experiment.name}-per-class.png",
                                     title=f"{experiment.name}: IoU per class (scale: {scale})",
                                     class_names=_class_names(results_dir, experiment.name))
    if per_class is not None:
        tables["per-class"] = per_class
    return tables


def _config_values(results_dir: Path, name: str, key: str) -> set:
    """The distinct values of one config field over an experiment's records."""
    return {read_record(p)["config"].get(key) for p in find_records(results_dir, name)}


def _class_names(results_dir: Path, name: str) -> tuple[str, ...] | None:
    """The class names of the records' data: the synthetic set's; None (indices) for other data."""
    from bench.data import CLASS_NAMES

    return CLASS_NAMES if _config_values(results_dir, name, "data") == {"synthetic"} else None


def _scale_of_records(results_dir: Path, name: str) -> str:
    scales = _config_values(results_dir, name, "scale")
    return scales.pop() if len(scales) == 1 else "mixed"


def run_and_record(cfg: RunConfig, results_dir: Path, *, wandb: WandbGuard, accelerator: str = "auto",
                   devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    """One (variant, seed) as the local sweep and every launcher's job run it: run_one, then its
    record, written once (by global rank 0; the other DDP ranks return None)."""
    record = run_one(cfg, results_dir=results_dir, wandb_mode=wandb, accelerator=accelerator,
                     devices=devices, num_nodes=num_nodes)
    if record is None or not distributed.is_global_zero():
        return None
    write_record(results_dir, record)
    resume_path(results_dir, cfg.run_key()).unlink(missing_ok=True)  # the record supersedes it
    return record


def run_one(cfg: RunConfig, *, results_dir: Path, wandb_mode: str | WandbGuard, accelerator: str = "auto",
            devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    """Train (or take a twin's weights, bench.reuse), validate and time one (variant, seed);
    never raises for a failure inside the run.
    With DDP only global rank 0 returns the record; the other ranks return None."""
    wandb = wandb_mode if isinstance(wandb_mode, WandbGuard) else WandbGuard(wandb_mode)
    started = utc_now()
    record: dict[str, Any] = {
        "schema": SCHEMA_VERSION, "experiment": cfg.experiment, "variant": cfg.variant,
        "variant_index": cfg.variant_index, "seed": cfg.seed, "config": cfg.to_dict(),
        "knobs": cfg.knobs, "status": "failed", "error": None, "metrics": {},
    }
    try:
        result = _train_and_measure(cfg, results_dir, wandb, accelerator, devices, num_nodes)
        if result is None:  # not global rank 0
            return None
        record.update(result)
        record["status"] = "ok"
    except BenchError:
        raise
    except Exception as err:  # recorded, the sweep goes on
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
    env = record.setdefault("env", {})
    if "git_commit" not in env:  # a failed run keeps its provenance too
        use_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
        env.update(environment(torch.device("cuda", 0) if use_cuda else torch.device("cpu")))
    env.update(started=started, ended=utc_now())
    return record


def _train_and_measure(cfg: RunConfig, results_dir: Path, wandb: WandbGuard, accelerator: str,
                       devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    p = cfg.protocol
    world = distributed.world_size(devices, num_nodes)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = _datamodule(cfg, world)
    model = _initial_model(cfg)
    module = SegmentationModule(model, num_classes=cfg.knobs["num_classes"], max_steps=p.max_steps,
                                lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay,
                                poly_power=p.poly_power, classifier_lr_mult=p.classifier_lr_mult,
                                inference=cfg.inference, run_config=cfg.to_dict())
    logger = _wandb_logger(cfg, results_dir, wandb)
    resume = resume_path(results_dir, cfg.run_key())
    # the learning curve: Lightning validates every val_every global steps, across epochs
    curve_validation = dict(val_check_interval=cfg.val_every, check_val_every_n_epoch=None) if cfg.val_every else {}
    # single-process runs only: DDP runs restart from step 0 (the replayed loader has no sampler)
    resume_callbacks = ([PeriodicCheckpoint(resume, checkpoint_every(p.max_steps), cfg.run_key(), cfg.val_every)]
                        if world == 1 else [])
    trainer = pl.Trainer(
        max_steps=p.max_steps, accelerator=accelerator, devices=devices, num_nodes=num_nodes,
        precision=cfg.precision,
        strategy=distributed.strategy(world), sync_batchnorm=distributed.sync_batchnorm(accelerator, world),
        logger=logger or False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=10, deterministic="warn", default_root_dir=str(results_dir / "lightning"),
        callbacks=[pl.callbacks.TQDMProgressBar(leave=False), *resume_callbacks], **curve_validation,
    )
    datamodule.setup("fit")
    train_loader, ckpt_path, resumed_from = datamodule.train_dataloader(), None, 0
    # under DDP Lightning shards the curve's loader with its padded sampler (a few images twice:
    # fine for a curve); the run's own numbers come from the unpadded validation after training
    curve_loader = datamodule.val_dataloader() if cfg.val_every else None
    # the same training recorded under another experiment: evaluate its weights (bench.reuse);
    # not for a learning curve, which needs the training itself
    twin = reuse.trained_twin(results_dir, cfg) if world == 1 and not cfg.val_every else None
    if twin is not None:
        tqdm.write(f"{cfg.experiment}/{cfg.variant} seed {cfg.seed}: same training as {twin.name}, "
                   f"evaluating its weights ({twin.checkpoint})", file=sys.stderr)
        module.model.load_state_dict(twin.state_dict)
        train_seconds = None
    else:
        if resume_callbacks:  # a run killed mid-training goes on from its last checkpoint (bench.resume)
            ckpt_path, resumed_from = usable_checkpoint(resume, cfg.run_key(), module)
            if ckpt_path is not None:
                tqdm.write(f"resuming {cfg.experiment}/{cfg.variant} seed {cfg.seed} from step {resumed_from} "
                           f"({ckpt_path})", file=sys.stderr)
                train_loader = ReplayedLoader(train_loader, resumed_from)
        t0 = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=curve_loader, ckpt_path=ckpt_path,
                    weights_only=True)
        train_seconds = time.perf_counter() - t0
    model = module.model  # the trained network (DDP's SyncBatchNorm reverted to BatchNorm)
    if trainer.is_global_zero:
        save_checkpoint(checkpoint_path(results_dir, cfg.experiment, cfg.variant, cfg.seed), model,
                        cfg.version, cfg.knobs, training=reuse.training_identity(cfg))
    model = module.model = eval_model(cfg, model)  # the network as evaluated (and timed)
    # every rank validates its own shard, no sample twice; the confusion matrix sums over ranks
    val_loader = distributed.unpadded_loader(datamodule.val_dataloader(), world=trainer.world_size,
                                             rank=trainer.global_rank)
    trainer.validate(module, dataloaders=val_loader, verbose=False)
    if not trainer.is_global_zero:  # CRF, pictures, fps, W&B and the record: rank 0 only
        return None
    metrics = dict(module.val_metrics)
    with _autocast(cfg, module.device):
        result = _measure_after_training(cfg, module, model, datamodule, results_dir, logger, wandb)
    result["env"].update({"train_seconds": train_seconds,  # None: weights_from another run, not trained here
                          "train_images_per_s": (None if train_seconds is None else
                                                 (p.max_steps - resumed_from) * p.batch_size / train_seconds),
                          "resumed_from_step": resumed_from,  # > 0: train_seconds covers the steps after it
                          "weights_from": None if twin is None else twin.name,
                          # training ran data-parallel on this many processes; fps is rank 0's one device
                          "devices": devices, "num_nodes": num_nodes, "world_size": trainer.world_size})
    result["metrics"] = {**metrics, **result["metrics"]}
    if cfg.val_every:
        curve = module.curve
        if not curve["step"] or curve["step"][-1] != p.max_steps:  # Lightning validates at multiples of N only
            curve = {"step": [*curve["step"], p.max_steps], "miou": [*curve["miou"], metrics["miou"]]}
        result["metrics"]["val_curve"] = curve
    if logger is not None:
        wandb.call("finishing the run", _finish_wandb, logger, result)
    return result


def _autocast(cfg: RunConfig, device: torch.device):
    """bf16 autocast around evaluation and fps when the run trains with --amp (Lightning applies
    it to training and validation itself)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16-mixed")


def _measure_after_training(cfg: RunConfig, module, model, datamodule, results_dir: Path, logger, wandb) -> dict:
    """CRF, pictures, fps, params and GFLOPs of the trained network (rank 0)."""
    p = cfg.protocol
    metrics = {}
    inference = Inference(**cfg.inference)
    if cfg.crf:
        crf = evaluate_with_crf(model, datamodule.val_dataloader(), num_classes=cfg.knobs["num_classes"],
                                device=module.device, params=CRFParams(**cfg.crf_params), inference=inference)
        crf.pop("miou")  # the same confusion as Lightning's validation; keep one source
        metrics.update(crf)

    device = module.device
    picture = draw_predictions(cfg, model, datamodule, results_dir, device)
    if logger is not None:
        wandb.call("logging pictures", _log_picture, logger, picture, datamodule.class_names)
    size = (p.fps_size, p.fps_size)
    speed = measure_fps(model, size, warmup=p.fps_warmup, iters=p.fps_iters, device=device)
    speed_batch = measure_fps(model, size, batch_size=p.batch_size, warmup=p.fps_warmup,
                              iters=p.fps_iters, device=device)
    if cfg.precision != "32":
        speed["precision"] = speed_batch["precision"] = cfg.precision
    return {
        "metrics": metrics,
        "speed": speed,
        "speed_batch": speed_batch,  # the same protocol at the training batch size
        "params_m": count_params_m(model),
        "gflops": count_gflops(model, size, device=device),
        "paper": _paper_numbers(cfg),
        "env": environment(device),
    }


PICTURE_IMAGES = 4  # validation images per prediction grid


def picture_path(results_dir: Path, cfg: RunConfig) -> Path:
    return Path(results_dir) / "pictures" / cfg.experiment / f"{cfg.variant}-seed-{cfg.seed}.png"


@dataclass(frozen=True)
class Picture:
    """A prediction grid on disk and what it shows (uint8 images, ground truth, predictions)."""

    path: Path
    images: np.ndarray
    masks: np.ndarray
    preds: np.ndarray


def draw_predictions(cfg: RunConfig, model, datamodule: SegmentationDataModule, results_dir: Path,
                     device) -> Picture:
    """The first validation images as image | ground truth | prediction [| + CRF]."""
    images, masks = next(iter(datamodule.val_dataloader()))
    images, masks = images[:PICTURE_IMAGES], masks[:PICTURE_IMAGES].numpy()
    raw = denormalize(images)
    crf = CRFParams(**cfg.crf_params) if cfg.crf else None
    preds, preds_crf = predict_examples(model, images, raw, crf, device, Inference(**cfg.inference))
    path = save_png(prediction_grid(raw, masks, preds, preds_crf), picture_path(results_dir, cfg))
    return Picture(path, raw, masks, preds)


def _log_picture(logger, picture: Picture, class_names) -> None:
    """The grid, and the first image with prediction / ground-truth masks W&B can toggle."""
    import wandb

    labels = dict(enumerate(class_names))
    overlay = wandb.Image(picture.images[0], masks={
        "predictions": {"mask_data": picture.preds[0].astype(np.uint8), "class_labels": labels},
        "ground_truth": {"mask_data": picture.masks[0].astype(np.uint8), "class_labels": labels}})
    logger.experiment.log({"predictions": wandb.Image(str(picture.path)), "overlay": overlay})


def _paper_numbers(cfg: RunConfig) -> dict[str, float | None]:
    from bench.registry import get_experiment

    variant = get_experiment(cfg.experiment).select([cfg.variant])[0]
    return {"miou": variant.paper_miou, "miou_crf": variant.paper_miou_crf}


def _wandb_logger(cfg: RunConfig, results_dir: Path, wandb: WandbGuard):
    """A WandbLogger (group = experiment, job_type = variant) whose calls go through the sweep's
    guard, or None when W&B is disabled or broken (bench.tracking)."""
    return wandb.logger(project=WANDB_PROJECT, name=f"{cfg.variant}-seed{cfg.seed}", group=cfg.experiment,
                        job_type=cfg.variant, save_dir=results_dir / "wandb", config=cfg.to_dict(),
                        reinit="finish_previous")


def _finish_wandb(logger, result: dict[str, Any]) -> None:
    run = logger.experiment
    metrics = result["metrics"]
    run.summary.update({"miou": metrics["miou"], "miou_crf": metrics.get("miou_crf"),
                        "fps": result["speed"]["fps"], "params_m": result["params_m"],
                        "gflops": result["gflops"]})
    run.finish()


def _log_summary_run(experiment: Experiment, results_dir: Path, tables: dict[str, Path], wandb: WandbGuard) -> None:
    """One W&B run per sweep holding the comparison table and plots (through the sweep's guard)."""
    if not wandb.enabled:
        return
    import wandb as wb

    frame = report.aggregate(load_records(results_dir, experiment.name))

    def start(mode: str):
        return wb.init(project=WANDB_PROJECT, group=experiment.name, job_type="summary",
                       name=f"{experiment.name}-summary", dir=str(results_dir / "wandb"), mode=mode,
                       config={"experiment": experiment.name, "paper_table": experiment.paper_table},
                       reinit="finish_previous")

    def log(run) -> None:
        run.log({"comparison": wb.Table(dataframe=frame.astype(object).where(frame.notna(), None))})
        # the plots: mIoU vs fps ("png"), trimap, per-class IoU of the best variant
        images = {("tradeoff" if key == "png" else key): wb.Image(str(path))
                  for key, path in tables.items() if Path(path).suffix == ".png"}
        if images:
            run.log(images)
        run.finish()

    run = wandb.start("starting the summary run", start)
    if run is not None:
        wandb.call("logging the summary run", log, run)


def _writable_dir(path: Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"  # per process: two sweeps may start together
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise BenchError(f"results dir {path} is not writable ({err.strerror}); pass --results-dir DIR") from err
    return path


def quiet_libraries() -> None:
    """Keep the terminal for the sweep bar and the table: Lightning's tips go to the log level."""
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*deterministic.*")


# ---------------------------------------------------------------- CRF cross-validation


def crf_search_path(results_dir: Path, experiment: str, variant: str) -> Path:
    return Path(results_dir) / "crf" / experiment / f"{variant}.json"


def tuned_crf_params(results_dir: Path, experiment: str, variant: str) -> dict[str, Any]:
    """The CRF parameters `bench crf-search` chose for a variant, or {} (CRFParams' defaults)."""
    path = crf_search_path(results_dir, experiment, variant)
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text())["best"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BenchError(f"corrupt CRF search result {path}: {err}; delete it and rerun bench crf-search") from err


def crf_search_experiment(experiment: Experiment, *, results_dir: Path,
                          variants: list[str] | None = None, images: int = 100) -> dict[str, dict]:
    """Per variant: search the CRF on held-out images with the first seed's weights, store the
    best parameters, then re-score mIoU after CRF of every recorded seed with them."""
    if images < 1:
        raise BenchError(f"--images must be at least 1, got {images}")
    if not experiment.crf:
        raise BenchError(f"{experiment.name} does not evaluate the CRF; experiments that do: "
                         + ", ".join(n for n, e in _all_experiments().items() if e.crf))
    chosen = {}
    for variant in tqdm(experiment.select(variants), desc=f"{experiment.name} crf-search", unit="variant",
                        dynamic_ncols=True):
        folder = Path(results_dir) / "runs" / experiment.name / variant.name
        found = [(p, read_record(p)) for p in sorted(folder.glob("seed-*.json"))]
        found = [(p, r) for p, r in found if r["status"] == "ok"]
        if not found:
            continue
        first = RunConfig.from_dict(found[0][1]["config"])
        datamodule = _datamodule(first)
        model = load_checkpoint(checkpoint_path(results_dir, first.experiment, first.variant, first.seed),
                                first.version, first.knobs)
        best, history = search_crf(model, datamodule.holdout_dataloader(images), num_classes=first.knobs["num_classes"],
                                   image_size=max(datamodule.eval_size()), device=torch.device("cpu"))
        best_dict = asdict(best)
        write_json_atomic(crf_search_path(results_dir, experiment.name, variant.name),
                          {"best": best_dict, "history": history, "searched_on": f"holdout[:{images}]",
                           "weights": f"seed-{first.seed}", "date": utc_now()})
        for path, record in found:
            cfg = RunConfig.from_dict(record["config"])
            model = eval_model(cfg, load_checkpoint(checkpoint_path(results_dir, cfg.experiment, cfg.variant,
                                                                    cfg.seed), cfg.version, cfg.knobs))
            crf = evaluate_with_crf(model, datamodule.val_dataloader(), num_classes=cfg.knobs["num_classes"],
                                    device=torch.device("cpu"), params=best, inference=Inference(**cfg.inference))
            crf.pop("miou")
            record["metrics"].update(crf)
            record["config"]["crf_params"] = best_dict
            write_json_atomic(path, record)
            draw_predictions(RunConfig.from_dict(record["config"]), model, datamodule, results_dir,
                             torch.device("cpu"))
        chosen[variant.name] = {"best": best_dict, "history": history}
    if not chosen:
        raise BenchError(f"no finished runs of {experiment.name} under {results_dir}; "
                         f"run `bench run {experiment.name}` first")
    write_tables(experiment, results_dir)
    return chosen


def _all_experiments():
    from bench.registry import experiments

    return experiments()
