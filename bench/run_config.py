"""The Protocol (a scale's recipe for one version and dataset; the recipes are bench.recipes) and
the RunConfig: everything one run does, frozen and serialisable.

A RunConfig is written into every record, so a table row can always be traced to what ran.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from bench.errors import BenchError

SCALES = ("tiny", "paper")


@dataclass(frozen=True)
class Protocol:
    """The training and measuring recipe of one scale for one DeepLab version."""

    width: float             # channel multiplier; 1.0 = the paper's network
    crop_size: int           # training crop (and synthetic image size)
    batch_size: int
    max_steps: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9  # v2 Sec. 4.1
    classifier_lr_mult: float = 10.0
    # "poly": lr * (1 - step / max_steps) ** poly_power (v2 Sec. 4.1); "step": lr * lr_gamma **
    # (step // lr_step) (v1 Sec. 5: x0.1 every 2000 iterations)
    lr_policy: str = "poly"
    lr_step: int | None = None
    lr_gamma: float = 0.1
    # real data's random scaling before the crop (None: crop and flip only); synthetic data flips only
    scale_range: tuple[float, float] | None = (0.5, 2.0)
    bn_momentum: float | None = None  # PyTorch's BN momentum (1 - the papers' decay); None: PyTorch's 0.1
    freeze_bn: bool = False  # BN statistics and affine fixed at their ImageNet values (v2's released ResNet)
    num_train: int = 1000    # synthetic images per split (real datasets use their own lists)
    num_val: int = 200
    num_workers: int | None = None  # DataLoader processes; None: 0 for synthetic, min(4, CPUs) for real data
    seeds: int = 3
    fps_size: int = 513      # square input of the fps measurement
    fps_warmup: int = 5
    fps_iters: int = 20
    model_knobs: dict[str, Any] = field(default_factory=dict)  # the scale's own model knobs


SMOKE_STEPS = 2  # bench run --smoke
SMOKE_VAL = 8
PAPER_SMOKE_BATCH, PAPER_SMOKE_VAL = 2, 4  # make paper-smoke: full-size networks on this CPU


# Fields that records written by earlier versions hold and that no longer identify a run: a
# variant's position in its experiment file was one, so reordering or inserting a variant made
# every later one count as unfinished. Tables now order rows by the experiment file.
LEGACY_FIELDS = ("variant_index",)


@dataclass(frozen=True)
class RunConfig:
    experiment: str
    variant: str
    seed: int
    scale: str
    data: str
    version: str
    knobs: dict[str, Any] = field(default_factory=dict)  # model knobs, width and num_classes included
    protocol: Protocol = field(default_factory=lambda: TINY)
    data_seed: int = 0  # the synthetic dataset is the same for every run; the seed varies training
    crf: bool = False   # also evaluate mIoU after the dense CRF (v1/v2 tables)
    crf_params: dict[str, Any] = field(default_factory=dict)  # overrides of CRFParams' defaults
    # the trunk weights the run starts from (bench.trunks): {"backbone", "name", "sha256", "path"};
    # None trains from scratch. The path is where this machine found the file: not the run's identity.
    backbone_weights: dict[str, Any] | None = None
    inference: dict[str, Any] = field(default_factory=dict)  # test-time strategy (evaluation.inference)
    # "32" or "bf16-mixed" (bench run --amp): Lightning's precision for training, and the autocast
    # dtype of evaluation and fps. bf16 keeps fp32's range, so no loss scaling is needed.
    precision: str = "32"
    # also validate every N training steps (bench run --val-every): the learning curve, in the
    # record and W&B. It only adds measurements (the trained weights are the same), so
    # is_finished ignores it.
    val_every: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists), so it compares equal to a record's copy."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        data = {k: v for k, v in data.items() if k not in LEGACY_FIELDS}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BenchError(f"run config has unknown field(s) {', '.join(unknown)}; written by another version?")
        return cls(**{**data, "protocol": Protocol(**data["protocol"])})

    def with_max_steps(self, max_steps: int | None) -> "RunConfig":
        """The schedule shortened or stretched to ``max_steps``: poly follows max_steps by itself,
        and v1's step policy keeps its shape (x0.1 at the same fractions of training)."""
        if max_steps is None:
            return self
        p = self.protocol
        lr_step = p.lr_step
        if p.lr_policy == "step" and lr_step is not None:
            lr_step = max(1, round(lr_step * max_steps / p.max_steps))
        return replace(self, protocol=replace(p, max_steps=max_steps, lr_step=lr_step))

    def as_smoke(self) -> "RunConfig":
        """The smoke mode (STYLE.md, big_vision's runlocal): every stage runs, on as little as
        possible - 2 training steps, 8 validation images, 1 + 2 fps forwards; at the paper scale
        (full-size networks and crops, on a CPU if need be) batch 2 and 4 validation images.
        Numbers are meaningless; the protocol in the record says so."""
        small = dict(num_val=SMOKE_VAL, fps_warmup=1, fps_iters=2)
        if self.scale == "paper":
            small.update(batch_size=min(self.protocol.batch_size, PAPER_SMOKE_BATCH), num_val=PAPER_SMOKE_VAL)
        return replace(self, protocol=replace(self.protocol, **small)).with_max_steps(SMOKE_STEPS)

    def with_precision(self, amp: bool) -> "RunConfig":
        return replace(self, precision="bf16-mixed") if amp else self

    def with_lr(self, lr: float | None) -> "RunConfig":
        """The base learning rate overridden (``bench run --lr``); recorded in the config."""
        if lr is None:
            return self
        return replace(self, protocol=replace(self.protocol, lr=lr))

    def with_crop_size(self, crop_size: int | None) -> "RunConfig":
        """The training crop overridden (``bench run --crop-size``; on synthetic data the image size,
        so validation too); recorded in the config. fps stays at the scale's fps_size."""
        if crop_size is None:
            return self
        return replace(self, protocol=replace(self.protocol, crop_size=crop_size))

    def run_key(self) -> dict[str, Any]:
        """What identifies the run (a record to skip, a mid-training checkpoint to resume): the
        whole config but val_every, which only adds measurements, and the weights' local path
        (the weights are named by their name and sha256)."""
        key = replace(self, val_every=None).to_dict()
        if isinstance(key.get("backbone_weights"), dict):
            key["backbone_weights"] = {k: v for k, v in key["backbone_weights"].items() if k != "path"}
        return key

    def with_val_every(self, val_every: int | None) -> "RunConfig":
        return self if val_every is None else replace(self, val_every=val_every)

    def with_num_val(self, num_val: int | None) -> "RunConfig":
        """Evaluate on the first ``num_val`` validation images (smoke runs); recorded in the config."""
        if num_val is None:
            return self
        return replace(self, protocol=replace(self.protocol, num_val=num_val))
