"""W&B behind one guard: no result depends on it, and a broken W&B costs one warning line.

Every W&B call of a sweep (creating the Lightning logger, Lightning's own logging through it,
pictures, the run summary, finish, the sweep's summary run) goes through a ``WandbGuard``. The
first exception (a bad API key, an unreachable server, a full disk under results/wandb, ...)
prints one line on stderr and then:

- in online mode, W&B falls back to offline (files under results/wandb to `wandb sync` later)
  when the failure came while starting a run; the line says so;
- otherwise W&B is switched off for the rest of the sweep (``disabled``).

``WANDB_INIT_TIMEOUT`` (seconds, wandb's own setting, default 90) bounds how long an unreachable
server can hold the first run; after that failure no later run waits again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from pytorch_lightning.loggers import WandbLogger

from bench.columns import wandb_summary
from bench.results_dir import ResultsDir
from bench.run_config import RunConfig

WANDB_MODES = ("online", "offline", "disabled")
WANDB_PROJECT = "deeplab-bench"


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


class WandbGuard:
    """The W&B state of one sweep (or of one SLURM job): its mode, and whether it still works."""

    def __init__(self, mode: str):
        if mode not in WANDB_MODES:
            raise ValueError(f"unknown W&B mode {mode!r}; valid: {', '.join(WANDB_MODES)}")
        self.mode = mode
        self.warnings: list[str] = []  # the lines printed, for the tests and the sweep's summary

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    def fail(self, what: str, err: BaseException, *, starting: bool = False) -> None:
        """Warn once per fallback and step down: online -> offline (when starting a run), else disabled."""
        if not self.enabled:
            return
        if starting and self.mode == "online":
            self.mode, then = "offline", f"logging offline under the results dir (upload later with `wandb sync`)"
        else:
            self.mode, then = "disabled", "going on without W&B for the rest of this sweep"
        line = f"warning: W&B failed ({what}: {_one_line(err)}); {then}"
        self.warnings.append(line)
        print(line, file=sys.stderr, flush=True)

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs), or None when W&B is off or fn raises (then fail())."""
        if not self.enabled:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # no result depends on W&B
            self.fail(what, err)
            return None

    def start(self, what: str, start: Callable[[str], Any]) -> Any:
        """start(mode) -> a W&B run or logger; online that fails is retried offline once."""
        while self.enabled:
            mode = self.mode
            try:
                return start(mode)
            except Exception as err:
                self.fail(what, err, starting=True)
                if self.mode == mode:  # no fallback left
                    break
        return None

    def logger(self, *, save_dir: Path, **kwargs: Any) -> "GuardedWandbLogger | None":
        """A started Lightning WandbLogger whose every call goes through this guard, or None."""
        os.environ.setdefault("WANDB_SILENT", "true")

        def start(mode: str) -> GuardedWandbLogger:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            logger = GuardedWandbLogger(self, save_dir=str(save_dir), mode=mode, **kwargs)
            logger.experiment  # start the run now (rank 0), so a failure shows here
            return logger

        return self.start("starting the run", start)


class GuardedWandbLogger(WandbLogger):
    """Lightning's WandbLogger with each call Lightning makes during fit/validate guarded."""

    def __init__(self, guard: WandbGuard, **kwargs: Any):
        super().__init__(**kwargs)
        self._guard = guard
        # Lightning always passes wandb.init(anonymous=None), and wandb warns on every run that the
        # setting has no effect; leaving it out changes nothing else
        getattr(self, "_wandb_init", {}).pop("anonymous", None)

    def _guarded(name: str):  # noqa: N805 - a decorator factory used in the class body
        def method(self, *args: Any, **kwargs: Any) -> Any:
            return self._guard.call(f"logger.{name}", getattr(WandbLogger, name), self, *args, **kwargs)
        method.__name__ = name
        return method

    log_hyperparams = _guarded("log_hyperparams")
    log_metrics = _guarded("log_metrics")
    log_table = _guarded("log_table")
    log_text = _guarded("log_text")
    log_image = _guarded("log_image")
    after_save_checkpoint = _guarded("after_save_checkpoint")
    finalize = _guarded("finalize")
    save = _guarded("save")
    del _guarded


# ---------------------------------------------------------------- the runs of a sweep


def run_logger(cfg: RunConfig, results: ResultsDir, guard: WandbGuard) -> GuardedWandbLogger | None:
    """The W&B run of one (variant, seed): group = experiment, job_type = variant, the whole
    config; None when W&B is disabled or broken."""
    return guard.logger(project=WANDB_PROJECT, name=f"{cfg.variant}-seed{cfg.seed}", group=cfg.experiment,
                        job_type=cfg.variant, save_dir=results.wandb, config=cfg.to_dict(),
                        reinit="finish_previous")


def log_picture(logger: WandbLogger, picture: Any, class_names) -> None:
    """A run's prediction grid (bench.run.Picture), and its first image with prediction and
    ground-truth masks that W&B can toggle."""
    import wandb  # only when W&B logs: `import wandb` costs a second

    labels = dict(enumerate(class_names))
    overlay = wandb.Image(picture.images[0], masks={
        "predictions": {"mask_data": picture.preds[0].astype(np.uint8), "class_labels": labels},
        "ground_truth": {"mask_data": picture.masks[0].astype(np.uint8), "class_labels": labels}})
    logger.experiment.log({"predictions": wandb.Image(str(picture.path)), "overlay": overlay})


def finish_run(logger: WandbLogger, record: dict[str, Any]) -> None:
    """The run's summary holds every table column of its record (bench.columns)."""
    run = logger.experiment
    run.summary.update(wandb_summary(record))
    run.finish()


def log_summary_run(experiment, results: ResultsDir, summary: pd.DataFrame, tables: dict[str, Path],
                    guard: WandbGuard) -> None:
    """One W&B run per sweep holding the comparison table and plots (through the sweep's guard)."""
    if not guard.enabled:
        return
    import wandb  # only when W&B logs: `import wandb` costs a second

    def start(mode: str):
        results.wandb.mkdir(parents=True, exist_ok=True)  # else wandb warns that the folder is missing
        return wandb.init(project=WANDB_PROJECT, group=experiment.name, job_type="summary",
                          name=f"{experiment.name}-summary", dir=str(results.wandb), mode=mode,
                          config={"experiment": experiment.name, "paper_table": experiment.paper_table},
                          reinit="finish_previous")

    def log(run) -> None:
        run.log({"comparison": wandb.Table(dataframe=summary.astype(object).where(summary.notna(), None))})
        # the plots: mIoU vs fps ("png"), trimap, per-class IoU of the best variant
        images = {("tradeoff" if key == "png" else key): wandb.Image(str(path))
                  for key, path in tables.items() if Path(path).suffix == ".png"}
        if images:
            run.log(images)
        run.finish()

    run = guard.start("starting the summary run", start)
    if run is not None:
        guard.call("logging the summary run", log, run)
