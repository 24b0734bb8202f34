"""The one LightningModule: the training recipe shared by every DeepLab version.

The nn.Module is the science (bench/models); this holds the recipe: pixel-wise cross-entropy
ignoring label 255, SGD with momentum and weight decay, the "poly" learning rate
lr * (1 - step / max_steps) ** power (v2 Sec. 4.1, power 0.9) or v1's "step" policy, the BN
momentum or frozen BN of the recipe (bench.recipes), and mIoU on the validation split from an
accumulated confusion matrix.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn

from bench.evaluation.inference import Inference, predict_probs
from bench.evaluation.metrics import confusion_matrix_metric, cpu_bincount_allowed, summarize_confusion


def poly_lr_factor(step: int, max_steps: int, power: float = 0.9) -> float:
    """The v2 "poly" policy: (1 - step / max_steps) ** power, 0 at and after max_steps."""
    return max(0.0, 1.0 - step / max_steps) ** power


def step_lr_factor(step: int, every: int, gamma: float = 0.1) -> float:
    """v1's "step" policy (Sec. 5): the rate times gamma every ``every`` iterations."""
    return gamma ** (step // every)


LR_POLICIES = ("poly", "step")


class SegmentationModule(pl.LightningModule):
    def __init__(self, model: nn.Module, *, num_classes: int, max_steps: int, lr: float,
                 momentum: float = 0.9, weight_decay: float = 5e-4, poly_power: float = 0.9,
                 classifier_lr_mult: float = 1.0, ignore_index: int = 255, lr_policy: str = "poly",
                 lr_step: int | None = None, lr_gamma: float = 0.1, bn_momentum: float | None = None,
                 freeze_bn: bool = False, inference: dict[str, Any] | None = None,
                 run_config: dict[str, Any] | None = None):
        super().__init__()
        if lr_policy not in LR_POLICIES or (lr_policy == "step" and not (lr_step or 0) >= 1):
            raise ValueError(f"lr_policy {lr_policy!r} (lr_step {lr_step}) is not valid; valid: "
                             "poly, or step with lr_step >= 1")
        self.model = model
        self.save_hyperparameters(ignore=["model"])
        for bn in self._batch_norms():
            if bn_momentum is not None:  # v3 Sec. 4.1: decay 0.9997, i.e. PyTorch momentum 0.0003
                bn.momentum = bn_momentum
            if freeze_bn:  # v2's released ResNet recipe: ImageNet statistics and affine, fixed
                bn.requires_grad_(False)
        self.confusion = confusion_matrix_metric(num_classes, ignore_index)
        self.val_metrics: dict[str, Any] = {}
        self.curve: dict[str, list] = {"step": [], "miou": []}  # validations during fit (val_every)
        self.inference = Inference(**(inference or {}))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def _batch_norms(self) -> list[nn.Module]:
        return [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True):
        """Training mode, except frozen BN (freeze_bn), which stays in eval mode, normalising with
        its fixed statistics."""
        super().train(mode)
        if mode and self.hparams.freeze_bn:
            for bn in self._batch_norms():
                bn.eval()
        return self

    def on_train_start(self) -> None:
        # Lightning does not call train() when fit starts (it only saves and restores every
        # submodule's mode around validation), so frozen BN is put in eval mode here; the
        # restore after each validation keeps it there.
        self.train()

    def loss(self, output, masks: torch.Tensor) -> torch.Tensor:
        """Cross-entropy ignoring 255; for v2 MSC (a dict in training) the sum over the fused
        output and every scale's output, as the v2 paper trains it (Sec. 4.1)."""
        ce = lambda logits: F.cross_entropy(logits, masks, ignore_index=self.hparams.ignore_index)
        if isinstance(output, dict):
            return ce(output["out"]) + sum(ce(s) for s in output["scales"])
        return ce(output)

    def training_step(self, batch, batch_idx):
        images, masks = batch
        loss = self.loss(self.model(images), masks)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def validation_step(self, batch, batch_idx):
        images, masks = batch
        scores = self.model(images) if self.inference.is_plain else predict_probs(self.model, images, self.inference)
        with cpu_bincount_allowed(scores.device):
            self.confusion.update(scores.argmax(dim=1), masks)

    def on_validation_epoch_end(self):
        summary = summarize_confusion(self.confusion.compute())
        self.confusion.reset()
        self.val_metrics = summary
        if self.trainer.state.fn == TrainerFn.FITTING:  # a point of the learning curve, not the final validation
            self.curve["step"].append(self.global_step)
            self.curve["miou"].append(summary["miou"])
        for key in ("miou", "pixel_acc", "mean_acc"):
            # the confusion matrix is already summed over DDP ranks: the same value on each rank
            self.log(f"val/{key}", summary[key], sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_curve"] = self.curve  # a resumed run keeps the points before the kill

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.curve = checkpoint.get("val_curve", {"step": [], "miou": []})

    def configure_optimizers(self):
        # v1/v2 (Caffe prototxts): the new classifier fc8 learns at 10x the base rate. The model
        # declares its classifier; both groups keep the model's parameter order.
        ids = {id(p) for p in self.model.classifier_parameters()}
        classifier = [p for p in self.model.parameters() if id(p) in ids]
        rest = [p for p in self.model.parameters() if id(p) not in ids]
        hp = self.hparams
        groups = [{"params": rest, "lr": hp.lr}]
        if classifier:
            groups.append({"params": classifier, "lr": hp.lr * hp.classifier_lr_mult})
        optimizer = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        if hp.lr_policy == "step":
            factor = lambda step: step_lr_factor(step, hp.lr_step, hp.lr_gamma)
        else:
            factor = lambda step: poly_lr_factor(step, hp.max_steps, hp.poly_power)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
