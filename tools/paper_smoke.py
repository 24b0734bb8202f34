"""make paper-smoke: every experiment at --scale paper, full-size, end to end, on this CPU.

The paper scale is what a researcher spends GPU-days on; this checks, in minutes and without a
GPU or any download, that every stage of it runs with the real widths and crops:

1. VOC 2012 + SBD archives of generated full-size images (500 x 375, tools/voc_fixture.py),
   served on 127.0.0.1 and prepared by `bench data prepare voc` (download, checksums, extraction,
   SBD .mat -> PNG, the trainaug list), then `bench data check`;
2. a seeded weights cache: random tensors at the exact file names and places where torchvision
   (torch hub) and timm (Hugging Face) keep the ImageNet weights, so every run starts from
   "ImageNet weights" through the libraries' own loading code, with BENCH_OFFLINE=1;
3. `bench run EXPERIMENT --scale paper --data voc:ROOT --smoke` for each experiment: each
   variant trains 2 steps at batch 2 at the recipe's crop, is evaluated on 4 full-size val images
   (after the dense CRF where the experiment has one), timed at 513 x 513, recorded, tabled.

The numbers it produces mean nothing (random weights, 2 steps); the check is that every
experiment finishes with an ok record per variant and its tables. Prints the wall time of each.

    python tools/paper_smoke.py [--experiments a,b [--variants x,y]] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))  # voc_fixture and weights_cache live beside this file

VAL_IMAGES = 4    # = PAPER_SMOKE_VAL: the smoke evaluates these
TRAIN_IMAGES = 4  # VOC train; with the SBD-only images trainaug has 6, enough for 2 steps of batch 2


def prepare_tree(work: Path) -> Path:
    """Archives served on loopback, prepared and checked by the `bench data` commands; the VOC root."""
    from voc_fixture import serve, write_voc_archives

    from bench.cli import main as bench

    archives, root = work / "archives", work / "voc"
    fixture = write_voc_archives(archives, train=TRAIN_IMAGES, val=VAL_IMAGES, sbd_only=2, size=(500, 375))
    with serve(archives) as server:
        sources = fixture.write_sources(work / "sources.json", server.url)
        if bench(["data", "prepare", "voc", str(root), "--sources", str(sources)]) != 0:
            raise SystemExit("paper-smoke: bench data prepare voc failed")
    if bench(["data", "check", f"voc:{root}"]) != 0:
        raise SystemExit("paper-smoke: bench data check rejected the prepared tree")
    return root


def backbones_of(names: list[str]) -> set[str]:
    """The backbones the experiments' variants use at the paper scale."""
    from bench.registry import get_experiment, resolve_variant
    from bench.trunks import backbone_of

    found = set()
    for name in names:
        experiment = get_experiment(name)
        for variant in experiment.variants:
            version, _, knobs = resolve_variant(experiment, variant, "paper")
            found.add(backbone_of(version, knobs))
    return found


def run_experiment(name: str, root: Path, results: Path, env: dict,
                   variants: list[str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, exit code, the last line of its output) of one `bench run --smoke`."""
    command = [sys.executable, "-m", "bench", "run", name, "--scale", "paper", "--data", f"voc:{root}", "--smoke",
               "--results-dir", str(results), "--wandb", "disabled", "--accelerator", "cpu"]
    command += ["--variants", ",".join(variants)] if variants else []
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    return seconds, proc.returncode, output[-1] if output else ""


def check_records(name: str, results: Path, variants: list[str] | None = None) -> list[str]:
    """Problems with an experiment's records and tables: one ok record per variant, the tables."""
    from bench.registry import get_experiment

    experiment = get_experiment(name)
    problems = []
    for variant in experiment.select(variants):
        path = results / "runs" / name / variant.name / "seed-0.json"
        if not path.is_file():
            problems.append(f"{name}/{variant.name}: no record")
            continue
        record = json.loads(path.read_text())
        if record["status"] != "ok":
            problems.append(f"{name}/{variant.name}: {record['status']}: {record.get('error')}")
        elif experiment.crf and record["metrics"].get("miou_crf") is None:
            problems.append(f"{name}/{variant.name}: no mIoU after CRF")
        elif not record["config"].get("backbone_weights"):
            problems.append(f"{name}/{variant.name}: started from scratch, not from the seeded ImageNet weights")
    for suffix in (".csv", ".md", ".tex"):
        if not (results / f"{name}{suffix}").is_file():
            problems.append(f"{name}: no {name}{suffix}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/paper_smoke.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", default=None, help="comma-separated (default: every experiment)")
    parser.add_argument("--variants", default=None, help="comma-separated, of the one experiment given (default: all)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (tree, caches, records)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="paper-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    # the caches are set before torch.hub or huggingface_hub read them (the latter once, at import)
    env = {**os.environ, "TORCH_HOME": str(work / "torch"), "HF_HUB_CACHE": str(work / "hf"),
           "BENCH_OFFLINE": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
    os.environ.update({k: env[k] for k in ("TORCH_HOME", "HF_HUB_CACHE", "BENCH_OFFLINE")})
    from weights_cache import seed_imagenet_cache

    from bench.registry import experiments

    names = args.experiments.split(",") if args.experiments else list(experiments())
    variants = args.variants.split(",") if args.variants else None
    if variants and len(names) != 1:
        parser.error("--variants needs exactly one experiment in --experiments")
    started = time.perf_counter()
    try:
        root = prepare_tree(work)
        seeded = seed_imagenet_cache(sorted(backbones_of(names)))
        print("seeded weights cache: " + ", ".join(f"{b} -> {p}" for b, p in seeded.items()))
        rows, problems = [], []
        for name in names:
            seconds, code, last = run_experiment(name, root, work / "results", env, variants)
            found = check_records(name, work / "results", variants) if code == 0 else [f"{name}: exit {code}: {last}"]
            problems += found
            rows.append((name, seconds, "ok" if not found else "FAILED"))
            print(f"{name:<24} {seconds:7.1f} s  {rows[-1][2]}", flush=True)
        total = time.perf_counter() - started
        print(f"paper-smoke: {sum(r[2] == 'ok' for r in rows)}/{len(rows)} experiments ok, "
              f"{total / 60:.1f} min in all (tree, weights, runs)")
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
