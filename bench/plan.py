"""What a sweep will cost before it runs (`bench plan`, `bench run --dry-run`).

For each planned run: its recipe (lr policy, steps, batch, crop), the images it sees, its training
FLOPs, the weights it starts from, and an estimated wall time; then the total and where each
estimate comes from. Nothing is trained, downloaded or loaded: models are built on the meta device.

The estimate, and why it is only that:
- training FLOPs = 3 x the forward FLOPs of one crop x the images seen (a backward pass costs
  about twice a forward: one product for the inputs' gradients, one for the weights');
  evaluation adds one forward per validation image at the evaluation size;
- the rate is measured: ``results/bench-gpu.csv`` (from `make bench` on a GPU) when it has a
  training row for the run's version, else the FLOP rate the version's flagship reached in
  ``results/bench.csv`` (inference at 513 x 513 on the machine that ran `make bench`), else that
  machine's GEMM limit. Training's FLOP rate differs from inference's (on a GPU it is usually
  lower; the tiny ablation-aspp sweep planned 14 min on the machine of results/bench.csv and took
  12), so the times are estimates, not bounds; N devices divide them by N (perfect scaling).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import trunks
from bench.data.spec import parse_data_spec
from bench.evaluation.speed import count_gflops
from bench.models import build_model
from bench.recipes import describe_setting
from bench.run_config import RunConfig

BACKWARD_FACTOR = 3.0  # forward + backward ~ 3 forwards
# one evaluated image per dataset kind: VOC images are at most 500 x 500 (the papers pad to 513),
# Cityscapes is evaluated at its full 1024 x 2048; synthetic images are the crop size
EVAL_SIZES = {"voc": (513, 513), "cityscapes": (1024, 2048)}
# make bench's flagship rows: "v3 (v3, resnet101), 513x513", "v3plus (v3+, resnet101), tiny (width 0.125), 128x128"
FLAGSHIP_ROW = re.compile(r"(\S+) \(([^,]+), [^)]+\), (.+)")


@dataclass(frozen=True)
class Rate:
    gflops_per_s: float
    row: str           # which measurement, in words
    file: str          # which file (bench.csv, bench-gpu.csv)
    machine: str       # where it was measured (the file's "Machine:" line)


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _machine(path: Path) -> str:
    """The first line of the .md beside the .csv that names the machine (make bench writes one)."""
    md = path.with_suffix(".md")
    if md.is_file():
        for line in md.read_text().splitlines():
            if line.startswith("Machine:"):
                return line.removeprefix("Machine:").strip().rstrip(".")
    return "machine not recorded"


def measured_rates(results_dir: Path) -> dict[tuple[str, str], Rate]:
    """(version, scale) -> the training FLOP rate to assume, from the benchmark files (see the module
    doc): bench.csv's flagship rows at 513x513 serve the paper scale, its "tiny (width 0.125)" rows
    the tiny scale. The key ("*", "*") is the fallback for what has no row of its own."""
    rates: dict[tuple[str, str], Rate] = {}
    cpu, gpu = results_dir / "bench.csv", results_dir / "bench-gpu.csv"
    cpu_machine = _machine(cpu)
    for row in read_rows(cpu):
        label = row["benchmark"]
        if label.startswith("the machine's limit"):
            rates[("*", "*")] = Rate(float(row["value"]), "the GEMM limit", cpu.name, cpu_machine)
        flagship = FLAGSHIP_ROW.fullmatch(label)
        if flagship and row["unit"] == "fps" and row.get("gflops"):
            name, version, where = flagship.groups()
            scale = "tiny" if where.startswith("tiny (") else "paper" if where == "513x513" else None
            if scale is not None:
                achieved = float(row["value"]) * float(row["gflops"])
                rates[(version, scale)] = Rate(achieved, f"{name} inference, {where}", cpu.name, cpu_machine)
    gpu_machine = _machine(gpu)
    for row in read_rows(gpu):  # "train GFLOP/s, VERSION ...": make bench on a GPU, at the recipe's batch
        if row["unit"] == "GFLOP/s" and row["benchmark"].startswith("train GFLOP/s, "):
            version = row["benchmark"].removeprefix("train GFLOP/s, ").split()[0]
            rates[(version, "paper")] = Rate(float(row["value"]), row["benchmark"], gpu.name, gpu_machine)
    return rates


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    forward_gflops: float      # one training crop
    eval_gflops: float         # one evaluation image
    images: int                # training images seen
    train_pflops: float        # training + evaluation, PFLOPs
    seconds: float | None      # estimated wall time
    rate: Rate | None


def eval_size(cfg: RunConfig) -> tuple[int, int]:
    """(height, width) of one evaluated image of the run's data."""
    kind = parse_data_spec(cfg.data)[0]
    return EVAL_SIZES.get(kind, (cfg.protocol.crop_size, cfg.protocol.crop_size))


def plan(configs: list[RunConfig], results_dir: Path, devices: int = 1) -> list[PlannedRun]:
    rates = measured_rates(Path(results_dir))
    runs, flops_of = [], {}
    for cfg in configs:
        p = cfg.protocol
        key = (cfg.version, repr(sorted(cfg.knobs.items())), p.crop_size, eval_size(cfg))
        if key not in flops_of:
            with torch.device("meta"):
                model = build_model(cfg.version, **cfg.knobs)
            flops_of[key] = (count_gflops(model, (p.crop_size, p.crop_size), device="meta"),
                             count_gflops(model, eval_size(cfg), device="meta"))
        forward, evaluation = flops_of[key]
        images = p.max_steps * p.batch_size
        total_gflops = BACKWARD_FACTOR * forward * images + evaluation * p.num_val
        rate = rates.get((cfg.version, cfg.scale), rates.get(("*", "*")))
        seconds = total_gflops / rate.gflops_per_s / devices if rate else None
        runs.append(PlannedRun(cfg, forward, evaluation, images, total_gflops / 1e6, seconds, rate))
    return runs


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "no measured rate (run `make bench`)"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def recipe_text(cfg: RunConfig) -> str:
    p = cfg.protocol
    return (f"{describe_setting(p, 'lr_policy')}, lr {p.lr:g}, {p.max_steps:,} steps x batch {p.batch_size}, "
            f"crop {p.crop_size}")


def render(runs: list[PlannedRun], devices: int = 1, finished: list[bool] | None = None) -> str:
    """The plan in words; runs already recorded (``finished``) are listed, not counted."""
    if not runs:
        return "nothing to plan"
    finished = finished or [False] * len(runs)
    first = runs[0].cfg
    todo = [run for run, done in zip(runs, finished) if not done]
    lines = [f"plan: {first.experiment} at scale {first.scale} on {first.data}, {len(runs)} run(s)"
             + (f" ({len(runs) - len(todo)} already recorded, skipped)" if len(todo) < len(runs) else "")
             + f", {devices} device(s) each"]
    for run, done in zip(runs, finished):
        cfg = run.cfg
        head = f"- {cfg.variant} seed {cfg.seed} ({cfg.version}, {cfg.knobs.get('backbone', '?')})"
        if done:
            lines.append(head + ": already recorded, skipped")
            continue
        h, w = eval_size(cfg)
        lines += [head,
                  f"    recipe:  {recipe_text(cfg)}",
                  f"    weights: {trunks.describe(cfg)}",
                  f"    cost:    {run.images:,} images, {run.forward_gflops:,.1f} GFLOPs forward per crop, "
                  f"{run.train_pflops:,.2f} PFLOPs with {cfg.protocol.num_val:,} val images at {h}x{w}",
                  f"    time:    ~{duration(run.seconds)}"
                  + (f" at {run.rate.gflops_per_s:,.0f} GFLOP/s" if run.rate else "")]
    known = [r.seconds for r in todo if r.seconds is not None]
    total = f"~{duration(sum(known))}" if len(known) == len(todo) else "unknown for some runs"
    lines.append(f"total: {sum(r.images for r in todo):,} images, {sum(r.train_pflops for r in todo):,.2f} PFLOPs, "
                 f"{total} of training and evaluation (CRF not included)")
    lines.append("estimates: training FLOPs = 3 x forward x images + one forward per val image; rates "
                 "measured for inference stand in for training's, so times are estimates, not bounds"
                 + (f"; {devices} devices assume perfect scaling" if devices > 1 else "") + ". Rates:")
    by_file: dict[tuple[str, str], list[str]] = {}
    for rate in dict.fromkeys(r.rate for r in todo if r.rate):
        by_file.setdefault((rate.file, rate.machine), []).append(f"{rate.row} ({rate.gflops_per_s:,.0f} GFLOP/s)")
    for (file, machine), rows in by_file.items():
        lines.append(f"  {file} ({machine}): " + "; ".join(rows))
    if not by_file:
        lines.append("  none measured: run `make bench` (results/bench.csv)")
    return "\n".join(lines)
