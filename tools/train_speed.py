"""`make bench-train` (also a step of `make bench`): how fast a tiny training step runs, per path.

The tiny scale's cost is its training steps. This times one step of the tiny v2 ASPP-L (batch 8,
SGD with momentum, cross-entropy; what `make ablation-aspp` runs) along three paths, side by side
in alternating rounds (benchmarks.best_alternating, so the paths share the machine's drift):
- fp32, NCHW: what every committed tiny record trained with;
- fp32, channels-last (model and input in NHWC memory format; oneDNN's faster conv kernels);
- channels-last + bf16 autocast (the forward and backward convs in bf16, weights and the optimiser
  in fp32, as Lightning's "bf16-mixed" does).
Per path: images/s, the speed-up over fp32 NCHW, and the fraction of the machine's fp32 limit the
step reaches (3 x forward GFLOPs x images/s / the GEMM limit; a bf16 path may pass 1, its limit
is higher). Nothing here changes how runs train: whether a faster path is adopted is decided by a
pilot of its mIoU against fp32 (issue 17), not by speed alone.

    .venv/bin/python tools/train_speed.py --out results     # = make bench-train -> results/bench-train.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from benchmarks import _fmt, best_alternating, machine_limit, provenance, tiny_step
from bench.evaluation.speed import count_gflops
from bench.models import build_model
from bench.recipes import TINY_VGG

PATHS = {  # name -> (channels_last, bf16 autocast)
    "fp32 NCHW": (False, False),
    "fp32 channels-last": (True, False),
    "channels-last + bf16 autocast": (True, True),
}


def timer(step, steps: int):
    """Seconds for ``steps`` steps (after the caller's warm-up)."""
    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start
    return run


def measure(size: int, batch: int, steps: int, rounds: int, limit: float) -> list[dict]:
    forward = count_gflops(build_model("v2", head="aspp-l", width=TINY_VGG.width, **TINY_VGG.model_knobs),
                           (size, size))
    steppers = {name: tiny_step(size, batch, channels_last=cl, bf16=bf16) for name, (cl, bf16) in PATHS.items()}
    for step in steppers.values():  # warm-up: oneDNN picks and caches its kernels
        step(), step()
    seconds = best_alternating(rounds, *(timer(s, steps) for s in steppers.values()))
    rows = []
    base = None
    for name, s in zip(steppers, seconds):
        images = steps * batch / s
        base = base or images
        label = f"tiny v2 ASPP-L training step, batch {batch}, {size}x{size}, {name}"
        rows += [{"benchmark": label, "value": images, "unit": "images/s"},
                 {"benchmark": f"{label}: speed-up over fp32 NCHW", "value": images / base, "unit": "x"},
                 {"benchmark": f"{label}: 3 x forward GFLOPs x images/s / the fp32 limit",
                  "value": 3 * forward * images / limit, "unit": "x"}]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/train_speed.py")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sizes, batch, steps, rounds = ((32,), 2, 1, 1) if args.smoke else ((128, 321), 8, 5, 3)
    limit = machine_limit(args.smoke)[1]
    rows = [{"benchmark": "the machine's fp32 limit (the faster of torch.mm and a oneDNN conv)",
             "value": limit, "unit": "GFLOP/s"}]
    for size in sizes:
        rows += measure(size, batch, steps, rounds, limit)
    rows.append({"benchmark": "wall time of this benchmark", "value": time.perf_counter() - started, "unit": "s"})
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "bench-train.csv", index=False)
    text = (f"# make bench-train\n\n{provenance(smoke=args.smoke)}\n\n"
            f"One SGD step of the tiny v2 ASPP-L (width {TINY_VGG.width}, batch {batch}) on a fixed random "
            f"batch, best of {rounds} alternating rounds of {steps} steps per path (tools/train_speed.py). "
            "The committed tiny records trained with fp32 NCHW; no path is adopted from speed alone.\n\n"
            "| benchmark | value | unit |\n|---|---:|---|\n"
            + "\n".join(f"| {r['benchmark']} | {_fmt(r['value'])} | {r['unit']} |" for r in rows) + "\n")
    (args.out / "bench-train.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
