"""Resuming a run killed mid-training: periodic Lightning checkpoints and a replayed data order.

While a run trains, every ``checkpoint_every(max_steps)`` steps (a tenth of the run) or every
CHECKPOINT_EVERY_S seconds (30 minutes), whichever comes first, and at the next step boundary after a
stop request (a SLURM job's time-limit or preemption signal, bench.launchers), the whole
training state (weights, BN statistics, SGD momentum, the poly schedule, Lightning's loop
counters) is written atomically (bench.atomic) to ResultsDir.resume():
RESULTS_DIR/resume/EXPERIMENT/VARIANT/seed-N-HASH.ckpt, HASH being a hash of the run's identity:
a run whose config changed never picks up another config's checkpoint. The file is scratch
(git-ignored) and is deleted once the run's record is written.

When the same run starts again and its checkpoint loads (``torch.load(weights_only=True)``,
same config, same parameter names), training continues from the checkpoint's step. Lightning
restores the loop but not the data order: a plain DataLoader would start its epoch again from the
first batch. ``ReplayedLoader`` therefore fetches and drops the batches already trained on,
from the same seeded generator, so the resumed run sees the same batches with the same random
flips as an uninterrupted one. The result is bit-identical on the CPU when the training step
itself draws no random numbers (no dropout: true of every tiny-scale model); with dropout the
masks after the resume differ (the global RNG is not rewound), so the run is equivalent, not
identical. A checkpoint is never written at an epoch's last step (so a resume is always
mid-epoch, the case the replay handles).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
import torch
from tqdm.auto import tqdm

from bench.atomic import atomic_write
from bench.results_dir import ResultsDir


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]


def resume_path(results: str | Path | ResultsDir, config: dict[str, Any]) -> Path:
    """Where the mid-training checkpoint of the run with this (RunConfig) dict lives."""
    return ResultsDir.of(results).resume(config["experiment"], config["variant"], config["seed"], config_hash(config))


def checkpoint_every(max_steps: int) -> int:
    return max(1, max_steps // 10)


CHECKPOINT_EVERY_S = 30 * 60.0  # at most this much training lost to a kill (a cluster job's time limit)


class TrainingStopped(Exception):
    """Training stopped on request (a cluster's time-limit or preemption signal, ``stop_on_signal``)
    after saving its state at a step boundary; the job that asked goes on from there."""


_STOP = threading.Event()      # a stop was asked while training: save at the next step boundary
_TRAINING = threading.Event()  # a PeriodicCheckpoint is inside fit, between its first and last step
_NOT_TRAINING: list[Callable[[int, Any], Any]] = []  # what a stop does outside training


def stop_on_signal(sig: int, otherwise: Callable[[int, Any], Any]) -> None:
    """Make ``sig`` ask a training run to stop at its next step boundary, where its state is saved,
    never in the middle of an optimizer step; outside training (data setup, evaluation, CRF, a twin's
    weights) ``otherwise(signum, frame)`` handles it at once (bench.launchers: submitit's requeue)."""
    _NOT_TRAINING[:] = [otherwise]
    signal.signal(sig, _on_stop_signal)


def _on_stop_signal(signum: int, frame: Any) -> None:
    if _TRAINING.is_set():
        _STOP.set()
    elif _NOT_TRAINING:
        _NOT_TRAINING[0](signum, frame)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run starts: a checkpoint (None: step 0), how many times the run has been resumed,
    and the training seconds its killed attempts spent after their last checkpoint (redone)."""

    path: Path | None = None
    step: int = 0
    resumes: int = 0
    lost_seconds: float = 0.0


class PeriodicCheckpoint(pl.Callback):
    """Write the training state every ``every`` steps or ``every_s`` seconds, whichever comes
    first, atomically; and at the next step boundary once a stop is requested (then raise
    TrainingStopped). A file beside it (``.alive``) is touched every step, so a resumed run knows
    how long its killed attempt trained after its last checkpoint."""

    def __init__(self, path: Path, every: int, config: dict[str, Any], val_every: int | None = None, *,
                 every_s: float | None = None, start: ResumePoint = ResumePoint()):
        self.path, self.every, self.config = Path(path), every, config
        self.every_s = CHECKPOINT_EVERY_S if every_s is None else every_s
        self.val_every, self.pending, self.start = val_every, False, start
        self.alive = alive_path(self.path)
        self.last_save = time.monotonic()

    def on_train_start(self, trainer, pl_module) -> None:
        self.last_save = time.monotonic()
        _TRAINING.set()

    def on_train_end(self, trainer, pl_module) -> None:
        _TRAINING.clear()
        if _STOP.is_set():  # asked at the last step, where no checkpoint is written: go on from the last one
            raise TrainingStopped(f"stopped on request at the end of training (step {trainer.global_step}); "
                                  f"the last resume checkpoint is {self.path}")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        _TRAINING.clear()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        self.alive.parent.mkdir(parents=True, exist_ok=True)
        self.alive.touch()
        stopping = _STOP.is_set()
        due = stopping or step % self.every == 0 or time.monotonic() - self.last_save >= self.every_s
        if not due or step >= (trainer.max_steps or 0):
            return
        per_epoch = trainer.num_training_batches
        if isinstance(per_epoch, int) and per_epoch > 0 and step % per_epoch == 0:
            return  # an epoch's last step: see the module docstring (a stop or a time-based save comes a step later)
        if self.val_every and step % self.val_every == 0:
            self.pending = True  # the learning curve validates after this step: save after it
            return
        self._save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.pending and trainer.state.fn == "fit":
            self.pending = False
            self._save(trainer)

    def _save(self, trainer) -> None:
        # single-process runs only (bench.run): this one process writes the file
        atomic_write(self.path, trainer.save_checkpoint)
        self.last_save = time.monotonic()
        if _STOP.is_set():
            raise TrainingStopped(f"stopped on request at step {trainer.global_step}; state saved in {self.path}")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["bench"] = {"config": self.config, "resumes": self.start.resumes,
                               "lost_seconds": self.start.lost_seconds, "saved_at": time.time()}


def alive_path(path: Path) -> Path:
    return path.with_name(path.name + ".alive")


def resumed_path(path: Path) -> Path:
    """What a resumed attempt has counted so far (resumes, seconds lost, when it started), kept
    until its first checkpoint carries the counts on: a second kill before that still counts."""
    return path.with_name(path.name + ".resumed")


def remove_resume_state(results: str | Path | ResultsDir, config: dict[str, Any]) -> None:
    """The run's resume checkpoint, heartbeat and resume count: scratch, superseded by the record."""
    path = resume_path(results, config)
    for scratch in (path, alive_path(path), resumed_path(path)):
        scratch.unlink(missing_ok=True)


def usable_checkpoint(path: Path, config: dict[str, Any], module: torch.nn.Module) -> ResumePoint:
    """The checkpoint this run can resume from, else ResumePoint() (step 0).

    A checkpoint that does not load, holds another config or other parameter names is moved aside
    to ``*.unusable`` (kept for inspection, never loaded again) with a one-line warning, and the
    run trains from step 0.
    """
    if not path.exists():
        return ResumePoint()
    problem = None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        saved = ckpt.get("bench", {}).get("config") if isinstance(ckpt, dict) else None
        if saved != config:
            problem = "holds another run config"
        else:
            ours, theirs = set(module.state_dict()), set(ckpt["state_dict"])
            if ours != theirs:
                diff = sorted(ours ^ theirs)
                problem = f"has other parameters ({len(diff)} differ, e.g. {diff[0]})"
    except Exception as err:  # truncated, not a checkpoint, unsafe pickle
        problem = f"does not load ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    if problem is not None:
        aside = path.with_name(path.name + ".unusable")
        os.replace(path, aside)
        tqdm.write(f"warning: resume checkpoint {path} {problem}; moved to {aside}, training from step 0",
                   file=sys.stderr)  # on a line of its own, below the sweep's progress bar
        return ResumePoint()
    # the counts so far: the checkpoint's, or those of an attempt that resumed from it and was killed
    # before its own first checkpoint; that attempt trained from `since` to its last heartbeat
    counts = {"resumes": 0, "lost_seconds": 0.0, **ckpt["bench"]}
    saved_at = since = counts.get("saved_at")
    try:
        resumed = json.loads(resumed_path(path).read_text())
        if resumed["from_saved_at"] == saved_at:  # it resumed from this very checkpoint
            counts, since = resumed, resumed["since"]
    except (OSError, ValueError, KeyError, TypeError):  # none (or unreadable: the checkpoint's counts)
        pass
    alive = alive_path(path)
    lost = max(0.0, alive.stat().st_mtime - since) if alive.exists() and since is not None else 0.0
    point = ResumePoint(path, int(ckpt["global_step"]), resumes=counts["resumes"] + 1,
                        lost_seconds=counts["lost_seconds"] + lost)
    atomic_write(resumed_path(path), lambda tmp: tmp.write_text(json.dumps(
        {"resumes": point.resumes, "lost_seconds": point.lost_seconds, "since": time.time(),
         "from_saved_at": saved_at})))
    return point


class ReplayedLoader:
    """The training loader, fast-forwarded past the ``steps`` batches a checkpoint trained on.

    The first iterator that is consumed runs the loader through the finished epochs and drops the
    finished part of the current one (each fetch draws its random flips, as in the original run); later epochs
    are the loader's own. ``state_dict`` makes Lightning see a resumable loader (no warning).
    """

    def __init__(self, loader, steps: int):
        self.loader, self.steps = loader, steps

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        # A generator: nothing is fetched before the first next(). Lightning calls iter() once
        # just to check that a non-DataLoader is iterable; that iterator is never consumed.
        if self.steps:
            yield from self._replay()
        else:
            yield from self.loader

    def _replay(self) -> Iterator:
        steps, self.steps = self.steps, 0
        per_epoch = len(self.loader)
        for _ in range(steps // per_epoch):
            for _ in self.loader:
                pass
        batches = iter(self.loader)
        for _ in range(steps % per_epoch):
            next(batches)
        yield from batches

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
