"""One run: a (variant, seed) RunConfig -> train (or take a twin's weights), validate, CRF,
pictures, fps -> one record in the results dir.

``run_and_record`` is what the local sweep (bench.runner), every SLURM job and every rank process
of a data-parallel run (bench.launchers, bench.rank) call for one config. In one process
``run_one`` never raises for a failure inside the run: the record says ``failed`` with the error,
and the sweep goes on; a rank of a data-parallel run re-raises, and its launcher records the run.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.plugins.environments import SLURMEnvironment
import torch
from tqdm.auto import tqdm

from bench import distributed, reuse, tracking, trunks
from bench.checkpoints import save_checkpoint
from bench.data.datamodule import SegmentationDataModule
from bench.data.transforms import denormalize
from bench.errors import BenchError
from bench.evaluation.crf import CRFParams
from bench.evaluation.evaluate import evaluate_with_crf
from bench.evaluation.inference import Inference, at_output_stride
from bench.evaluation.pictures import predict_examples, prediction_grid, save_png
from bench.evaluation.speed import count_gflops, count_params_m, measure_fps
from bench.models import build_model
from bench.models.weights import load_backbone_weights
from bench.module import SegmentationModule
from bench.provenance import environment, utc_now
from bench.registry import get_experiment
from bench.results import SCHEMA_VERSION, write_record
from bench.results_dir import ResultsDir
from bench.resume import (PeriodicCheckpoint, ReplayedLoader, ResumePoint, TrainingStopped, checkpoint_every,
                          remove_resume_state, resume_path, usable_checkpoint)
from bench.run_config import RunConfig
from bench.tracking import WandbGuard


def datamodule_of(cfg: RunConfig, world: int = 1) -> SegmentationDataModule:
    """The run's data; with DDP each of the ``world`` ranks loads batch / world images per step."""
    p = cfg.protocol
    return SegmentationDataModule(cfg.data, data_seed=cfg.data_seed, image_size=p.crop_size,
                                  batch_size=distributed.per_device_batch(p.batch_size, world),
                                  num_train=p.num_train, num_val=p.num_val,
                                  num_workers=p.num_workers, scale_range=p.scale_range)


def eval_model(cfg: RunConfig, model):
    """The trained network as evaluated: rebuilt at the eval output stride when one is asked."""
    os_ = cfg.inference.get("output_stride")
    return at_output_stride(model, lambda s: build_model(cfg.version, **{**cfg.knobs, "output_stride": s}), os_)


def initial_model(cfg: RunConfig):
    """The variant's network, starting from the trunk weights its config names (bench.trunks:
    read through torchvision's / timm's cache, the file's sha256 checked; the stem adapted to our
    ImageNet-normalised inputs where the weights expect another normalisation) or from scratch."""
    model = build_model(cfg.version, **cfg.knobs)
    weights = cfg.backbone_weights
    if weights is not None:
        state = trunks.state_dict_of(weights)
        try:
            load_backbone_weights(model, state, input_norm=trunks.input_norm_of(weights))
        except ValueError as err:
            raise BenchError(f"{weights['backbone']} weights {weights['name']}: {err}") from err
    return model


def run_and_record(cfg: RunConfig, results: ResultsDir, *, wandb: WandbGuard, accelerator: str = "auto",
                   devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    """One (variant, seed) as the local sweep and every launcher's job run it: run_one, then its
    record, written once (by global rank 0; the other DDP ranks return None)."""
    results = ResultsDir.of(results)
    record = run_one(cfg, results=results, wandb_mode=wandb, accelerator=accelerator,
                     devices=devices, num_nodes=num_nodes)
    if record is None or not distributed.is_global_zero():
        return None
    try:
        write_record(results, record)
    except OSError as err:  # nothing half-written (bench.atomic); without a record the sweep cannot go on
        raise BenchError(f"could not write the run record {err.filename}: {err.strerror}; the records "
                         "already written are intact: free the space and rerun the same command") from err
    remove_resume_state(results, cfg.run_key())  # the record supersedes it
    return record


def new_record(cfg: RunConfig, error: str | None = None) -> dict[str, Any]:
    """A run's record before it has measured anything: failed until run_one says ok."""
    return {"schema": SCHEMA_VERSION, "experiment": cfg.experiment, "variant": cfg.variant, "seed": cfg.seed,
            "config": cfg.to_dict(), "knobs": cfg.knobs, "status": "failed", "error": error, "metrics": {}}


def run_one(cfg: RunConfig, *, results: ResultsDir, wandb_mode: str | WandbGuard, accelerator: str = "auto",
            devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    """Train (or take a twin's weights, bench.reuse), validate and time one (variant, seed). In one
    process a failure inside the run is recorded, not raised; a rank of a data-parallel run
    re-raises it (bench.launchers records the run). With DDP only global rank 0 returns the
    record; the other ranks return None."""
    wandb = wandb_mode if isinstance(wandb_mode, WandbGuard) else WandbGuard(wandb_mode)
    started = utc_now()
    record = new_record(cfg)
    try:
        result = _train_and_measure(cfg, ResultsDir.of(results), wandb, accelerator, devices, num_nodes)
        if result is None:  # not global rank 0
            return None
        record.update(result)
        record["status"] = "ok"
    except (BenchError, TrainingStopped):  # bad input; a SLURM job's stop request (bench.launchers)
        raise
    except Exception as err:  # recorded, the sweep goes on
        if distributed.world_size(devices, num_nodes) > 1:
            raise  # one rank of a data-parallel run: the process ends, the sweep records the run (bench.launchers)
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()
    env = record.setdefault("env", {})
    if "git_commit" not in env:  # a failed run keeps its provenance too
        use_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
        env.update(environment(torch.device("cuda", 0) if use_cuda else torch.device("cpu")))
    env.update(started=started, ended=utc_now())
    return record


def _train_and_measure(cfg: RunConfig, results: ResultsDir, wandb: WandbGuard, accelerator: str,
                       devices: int = 1, num_nodes: int = 1) -> dict[str, Any] | None:
    p = cfg.protocol
    world = distributed.world_size(devices, num_nodes)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = datamodule_of(cfg, world)
    model = initial_model(cfg)
    module = SegmentationModule(model, num_classes=cfg.knobs["num_classes"], max_steps=p.max_steps,
                                lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay,
                                poly_power=p.poly_power, classifier_lr_mult=p.classifier_lr_mult,
                                lr_policy=p.lr_policy, lr_step=p.lr_step, lr_gamma=p.lr_gamma,
                                bn_momentum=p.bn_momentum, freeze_bn=p.freeze_bn,
                                inference=cfg.inference, run_config=cfg.to_dict())
    logger = tracking.run_logger(cfg, results, wandb)
    resume = resume_path(results, cfg.run_key())
    # the learning curve: Lightning validates every val_every global steps, across epochs
    curve_validation = dict(val_check_interval=cfg.val_every, check_val_every_n_epoch=None) if cfg.val_every else {}
    # single-process runs only: DDP runs restart from step 0 (the replayed loader has no sampler)
    resume_callbacks = ([PeriodicCheckpoint(resume, checkpoint_every(p.max_steps), cfg.run_key(), cfg.val_every)]
                        if world == 1 else [])
    trainer = pl.Trainer(
        max_steps=p.max_steps, accelerator=accelerator, devices=devices, num_nodes=num_nodes,
        precision=cfg.precision,
        strategy=distributed.strategy(world), sync_batchnorm=distributed.sync_batchnorm(accelerator, world),
        # under SLURM, submitit owns requeueing (bench.launchers); Lightning's own would requeue twice
        plugins=[SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None,
        logger=logger or False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=10, deterministic="warn", default_root_dir=str(results.lightning),
        callbacks=[pl.callbacks.TQDMProgressBar(leave=False), *resume_callbacks], **curve_validation,
    )
    datamodule.setup("fit")
    train_loader, start = datamodule.train_dataloader(), ResumePoint()
    # under DDP Lightning shards the curve's loader with its padded sampler (a few images twice:
    # fine for a curve); the run's own numbers come from the unpadded validation after training
    curve_loader = datamodule.val_dataloader() if cfg.val_every else None
    # the same training recorded under another experiment: evaluate its weights (bench.reuse);
    # not for a learning curve, which needs the training itself
    twin = reuse.trained_twin(results, cfg) if world == 1 and not cfg.val_every else None
    if twin is not None:
        tqdm.write(f"{cfg.experiment}/{cfg.variant} seed {cfg.seed}: same training as {twin.name}, "
                   f"evaluating its weights ({twin.checkpoint})", file=sys.stderr)
        module.model.load_state_dict(twin.state_dict)
        train_seconds = None
    else:
        if resume_callbacks:  # a run killed mid-training goes on from its last checkpoint (bench.resume)
            start = usable_checkpoint(resume, cfg.run_key(), module)
            resume_callbacks[0].start = start  # later checkpoints carry the resume count on
            if start.path is not None:
                tqdm.write(f"resuming {cfg.experiment}/{cfg.variant} seed {cfg.seed} from step {start.step} "
                           f"({start.path})", file=sys.stderr)
                train_loader = ReplayedLoader(train_loader, start.step)
        t0 = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=curve_loader, ckpt_path=start.path,
                    weights_only=True)
        train_seconds = time.perf_counter() - t0
    model = module.model  # the trained network (DDP's SyncBatchNorm reverted to BatchNorm)
    checkpoint_sha256 = None
    if trainer.is_global_zero:
        checkpoint_sha256 = save_checkpoint(results.checkpoint(cfg.experiment, cfg.variant, cfg.seed), model,
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
        result = _measure_after_training(cfg, module, model, datamodule, results, logger, wandb)
    result["env"].update({"train_seconds": train_seconds,  # None: weights_from another run, not trained here
                          "train_images_per_s": (None if train_seconds is None else
                                                 (p.max_steps - start.step) * p.batch_size / train_seconds),
                          "resumed_from_step": start.step,  # > 0: train_seconds covers the steps after it
                          # times this run went on from a checkpoint (a kill, a time limit, a preemption),
                          # and the training seconds its stopped attempts spent after their last checkpoint
                          "resumes": start.resumes, "train_seconds_lost": start.lost_seconds,
                          "weights_from": None if twin is None else twin.name,
                          # training ran data-parallel on this many processes; fps is rank 0's one device
                          "devices": devices, "num_nodes": num_nodes, "world_size": trainer.world_size})
    result["metrics"] = {**metrics, **result["metrics"]}
    result["checkpoint_sha256"] = checkpoint_sha256
    if cfg.val_every:
        curve = module.curve
        if not curve["step"] or curve["step"][-1] != p.max_steps:  # Lightning validates at multiples of N only
            curve = {"step": [*curve["step"], p.max_steps], "miou": [*curve["miou"], metrics["miou"]]}
        result["metrics"]["val_curve"] = curve
    if logger is not None:
        wandb.call("finishing the run", tracking.finish_run, logger, result)
    return result


def _autocast(cfg: RunConfig, device: torch.device):
    """bf16 autocast around evaluation and fps when the run trains with --amp (Lightning applies
    it to training and validation itself)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16-mixed")


def _measure_after_training(cfg: RunConfig, module, model, datamodule, results: ResultsDir, logger, wandb) -> dict:
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
    picture = draw_predictions(cfg, model, datamodule, results, device)
    if logger is not None:
        wandb.call("logging pictures", tracking.log_picture, logger, picture, datamodule.class_names)
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
        "paper": _paper_numbers(cfg),  # provenance: tables read the experiment file's
        "env": environment(device),
    }


PICTURE_IMAGES = 4  # validation images per prediction grid


@dataclass(frozen=True)
class Picture:
    """A prediction grid on disk and what it shows (uint8 images, ground truth, predictions)."""

    path: Path
    images: np.ndarray
    masks: np.ndarray
    preds: np.ndarray


def draw_predictions(cfg: RunConfig, model, datamodule: SegmentationDataModule, results: ResultsDir,
                     device) -> Picture:
    """The first validation images as image | ground truth | prediction [| + CRF]."""
    images, masks = next(iter(datamodule.val_dataloader()))
    images, masks = images[:PICTURE_IMAGES], masks[:PICTURE_IMAGES].numpy()
    raw = denormalize(images)
    crf = CRFParams(**cfg.crf_params) if cfg.crf else None
    preds, preds_crf = predict_examples(model, images, raw, crf, device, Inference(**cfg.inference))
    path = save_png(prediction_grid(raw, masks, preds, preds_crf), results.picture(cfg.experiment, cfg.variant, cfg.seed))
    return Picture(path, raw, masks, preds)


def _paper_numbers(cfg: RunConfig) -> dict[str, float | None]:
    variant = get_experiment(cfg.experiment).select([cfg.variant])[0]
    return {"miou": variant.paper_miou, "miou_crf": variant.paper_miou_crf}


def quiet_libraries() -> None:
    """Keep the terminal for the sweep bar and the table: Lightning's tips go to the log level,
    and the library warnings every run would print, harmless here, are not shown."""
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*deterministic.*")
    # the learning curve's validation is optional: without --val-every fit has no val loader
    warnings.filterwarnings("ignore", message=".*but have no `val_dataloader`.*")
    # Lightning's own use of a torch pytree class torch deprecates; nothing for us to change
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*", category=FutureWarning)
