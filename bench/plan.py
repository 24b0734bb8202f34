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
  machine's GEMM limit. A training step is rarely as efficient as inference, so CPU estimates
  are a lower bound; ``--devices N`` divides by N (perfect scaling, also a lower bound).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import trunks
from bench.evaluation.speed import count_gflops
from bench.models import build_model
from bench.recipes import describe_setting
from bench.run_config import RunConfig

BACKWARD_FACTOR = 3.0  # forward + backward ~ 3 forwards
EVAL_SIZE = 513        # VOC images are at most 500 x 500; the papers evaluate padded to 513


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


def measured_rates(results_dir: Path) -> dict[str, Rate]:
    """version -> the training FLOP rate to assume, from the benchmark files (see the module doc).
    The key "*" is the fallback for versions without a row of their own."""
    rates: dict[str, Rate] = {}
    cpu, gpu = results_dir / "bench.csv", results_dir / "bench-gpu.csv"
    cpu_rows = read_rows(cpu)
    for row in cpu_rows:
        if row["benchmark"].startswith("the machine's limit"):
            rates["*"] = Rate(float(row["value"]), "the GEMM limit", cpu.name, _machine(cpu))
    for row in cpu_rows:  # flagship inference rows: "v3 (v3, resnet101), 513x513"
        label = row["benchmark"]
        if row["unit"] == "fps" and label.endswith(", 513x513") and "(" in label and row.get("gflops"):
            version = label.split("(")[1].split(",")[0]
            achieved = float(row["value"]) * float(row["gflops"])
            rates[version] = Rate(achieved, f"{label.split(' (')[0]} inference at 513x513", cpu.name, _machine(cpu))
    for row in read_rows(gpu):  # "train GFLOP/s, VERSION ...": make bench on a GPU, at the recipe's batch
        if row["unit"] == "GFLOP/s" and row["benchmark"].startswith("train GFLOP/s, "):
            version = row["benchmark"].removeprefix("train GFLOP/s, ").split()[0]
            rates[version] = Rate(float(row["value"]), row["benchmark"], gpu.name, _machine(gpu))
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


def plan(configs: list[RunConfig], results_dir: Path, devices: int = 1) -> list[PlannedRun]:
    rates = measured_rates(Path(results_dir))
    runs, flops_of = [], {}
    for cfg in configs:
        p = cfg.protocol
        key = (cfg.version, repr(sorted(cfg.knobs.items())), p.crop_size)
        if key not in flops_of:
            with torch.device("meta"):
                model = build_model(cfg.version, **cfg.knobs)
            eval_size = max(EVAL_SIZE, p.crop_size)
            flops_of[key] = (count_gflops(model, (p.crop_size, p.crop_size), device="meta"),
                             count_gflops(model, (eval_size, eval_size), device="meta"))
        forward, evaluation = flops_of[key]
        images = p.max_steps * p.batch_size
        total_gflops = BACKWARD_FACTOR * forward * images + evaluation * p.num_val
        rate = rates.get(cfg.version, rates.get("*"))
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


def render(runs: list[PlannedRun], devices: int = 1) -> str:
    if not runs:
        return "nothing to plan"
    first = runs[0].cfg
    lines = [f"plan: {first.experiment} at scale {first.scale} on {first.data}, {len(runs)} run(s), "
             f"{devices} device(s) each"]
    for run in runs:
        cfg = run.cfg
        lines += [f"- {cfg.variant} seed {cfg.seed} ({cfg.version}, {cfg.knobs.get('backbone', '?')})",
                  f"    recipe:  {recipe_text(cfg)}",
                  f"    weights: {trunks.describe(cfg)}",
                  f"    cost:    {run.images:,} images, {run.forward_gflops:,.1f} GFLOPs forward per crop, "
                  f"{run.train_pflops:,.2f} PFLOPs with evaluation",
                  f"    time:    ~{duration(run.seconds)}"
                  + (f" at {run.rate.gflops_per_s:,.0f} GFLOP/s" if run.rate else "")]
    known = [r.seconds for r in runs if r.seconds is not None]
    total = f"~{duration(sum(known))}" if len(known) == len(runs) else "unknown for some runs"
    lines.append(f"total: {sum(r.images for r in runs):,} images, {sum(r.train_pflops for r in runs):,.2f} PFLOPs, "
                 f"{total} of training and evaluation (CRF not included)")
    lines.append(f"estimates: training FLOPs = 3 x forward x images + one forward per val image at "
                 f"{EVAL_SIZE}x{EVAL_SIZE}; inference rates are an upper bound for training, so times are a "
                 "lower bound" + (f"; {devices} devices assume perfect scaling" if devices > 1 else "") + ". Rates:")
    by_file: dict[tuple[str, str], list[str]] = {}
    for rate in dict.fromkeys(r.rate for r in runs if r.rate):
        by_file.setdefault((rate.file, rate.machine), []).append(f"{rate.row} ({rate.gflops_per_s:,.0f} GFLOP/s)")
    for (file, machine), rows in by_file.items():
        lines.append(f"  {file} ({machine}): " + "; ".join(rows))
    if not by_file:
        lines.append("  none measured: run `make bench` (results/bench.csv)")
    return "\n".join(lines)
