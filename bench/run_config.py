"""The scales' protocols (tiny / paper) and the RunConfig: everything one run does, frozen and serialisable.

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
    num_train: int = 1000    # synthetic images per split (real datasets use their own lists)
    num_val: int = 200
    num_workers: int | None = None  # DataLoader processes; None: 0 for synthetic, min(4, CPUs) for real data
    seeds: int = 3
    fps_size: int = 513      # square input of the fps measurement
    fps_warmup: int = 5
    fps_iters: int = 20
    model_knobs: dict[str, Any] = field(default_factory=dict)  # the scale's own model knobs


# tiny: same layers, strides, rates and branches as the papers, channels / 8, 128 px synthetic
# images; a whole three-variant, three-seed experiment runs on a 2-core CPU in minutes. It trains
# from scratch (no ImageNet weights) for 600 steps, which changes three things, each measured on
# the synthetic data (LargeFOV, val mIoU after 600 steps): base lr 0.1 (0.01: 4.9%), BN in VGG
# (plain VGG stays near the all-background solution, 3.7-7%), no dropout (dropout 0.5 on the
# 128-channel fc6/fc7: 4.9% vs 20.8% without). 600 steps is short: the VGG networks are still
# learning colour (val mIoU 7-29); LargeFOV and rate 1 reach about 62% by 3000 steps
# (results/dilation-3000-steps/, `bench run --val-every` draws the curve).
TINY = Protocol(width=0.125, crop_size=128, batch_size=8, max_steps=600, lr=0.1,
                classifier_lr_mult=1.0, fps_size=128, fps_warmup=3, fps_iters=15)
TINY_VGG = replace(TINY, model_knobs={"batch_norm": True, "dropout": 0.0})

# paper, v1/v2 VGG-16: crop 321, batch 10, base lr 0.001 (fc8 x10), poly 0.9, 20K iterations,
# momentum 0.9, weight decay 5e-4 (v2 Sec. 4.1 and its learning-rate table: "poly 10/20K").
PAPER_VGG = Protocol(width=1.0, crop_size=321, batch_size=10, max_steps=20_000, lr=1e-3,
                     num_train=10_582, num_val=1_449, seeds=1)


# paper, v3/v3+ ResNet/Xception: crop 513, batch 16, base lr 0.007, poly, 30K iterations on
# trainaug at output stride 16, BN trained (v3 Sec. 4.1; v3+ Sec. 4 keeps the recipe); no 10x
# classifier lr in v3's recipe; weight decay 4e-5 is the released TF code's value (the paper does
# not state it); fps at 513x513 as in v3+ Table 3.
PAPER_V3 = Protocol(width=1.0, crop_size=513, batch_size=16, max_steps=30_000, lr=7e-3,
                    weight_decay=4e-5, classifier_lr_mult=1.0, num_train=10_582, num_val=1_449, seeds=1)


SMOKE_STEPS = 2  # bench run --smoke
SMOKE_VAL = 8


def protocol_for(scale: str, version: str) -> Protocol:
    if scale not in SCALES:
        raise BenchError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    vgg = version in ("v1", "v2")
    if scale == "tiny":
        return TINY_VGG if vgg else TINY
    return PAPER_VGG if vgg else PAPER_V3


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
    backbone_weights: str | None = None  # ImageNet backbone state dict (a local file) to start from
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
        if max_steps is None:
            return self
        return replace(self, protocol=replace(self.protocol, max_steps=max_steps))

    def as_smoke(self) -> "RunConfig":
        """The smoke mode (STYLE.md, big_vision's runlocal): every stage runs, on as little as
        possible - 2 training steps, 8 validation images, 1 + 2 fps forwards. Numbers are
        meaningless; the protocol in the record says so."""
        return replace(self, protocol=replace(self.protocol, max_steps=SMOKE_STEPS, num_val=SMOKE_VAL,
                                              fps_warmup=1, fps_iters=2))

    def with_precision(self, amp: bool) -> "RunConfig":
        return replace(self, precision="bf16-mixed") if amp else self

    def with_lr(self, lr: float | None) -> "RunConfig":
        """The base learning rate overridden (``bench run --lr``); recorded in the config."""
        if lr is None:
            return self
        return replace(self, protocol=replace(self.protocol, lr=lr))

    def run_key(self) -> dict[str, Any]:
        """What identifies the run (a record to skip, a mid-training checkpoint to resume): the
        whole config but val_every, which only adds measurements."""
        return replace(self, val_every=None).to_dict()

    def with_val_every(self, val_every: int | None) -> "RunConfig":
        return self if val_every is None else replace(self, val_every=val_every)

    def with_num_val(self, num_val: int | None) -> "RunConfig":
        """Evaluate on the first ``num_val`` validation images (smoke runs); recorded in the config."""
        if num_val is None:
            return self
        return replace(self, protocol=replace(self.protocol, num_val=num_val))
