"""`make bench`: measured side by side in one run, written to results/bench.md and bench.csv.

So far: the dense CRF's throughput with one worker and with the process pool (the CRF runs on
the CPU whatever the network runs on, so its scaling decides the after-CRF evaluation time), and
the synthetic data generator's images/s against what a training step consumes.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.data.synthetic import generate
from bench.evaluation.crf import CRFParams, default_workers, dense_crf_batch
from bench.models import build_model
from bench.provenance import device_name, git_state, utc_now


def crf_throughput(n_images: int, size: int, workers: int, repeats: int = 3) -> float:
    """Images/s of dense_crf_batch on real synthetic images with a blurred one-hot unary."""
    images, masks = generate(0, "bench", n_images, size)
    probs = []
    for mask in masks:
        onehot = np.eye(21, dtype=np.float32)[np.where(mask == 255, 0, mask)].transpose(2, 0, 1)
        noisy = onehot * 0.6 + 0.4 / 21 + np.random.default_rng(0).random(onehot.shape, dtype=np.float32) * 0.2
        probs.append(noisy / noisy.sum(0, keepdims=True))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dense_crf_batch(list(images), probs, CRFParams(), workers=workers)
        best = min(best, time.perf_counter() - start)
    return n_images / best


def generator_throughput(n_images: int, size: int) -> float:
    start = time.perf_counter()
    generate(1, "bench-gen", n_images, size)
    return n_images / (time.perf_counter() - start)


def training_consumption(size: int, batch: int = 8, steps: int = 10) -> float:
    """Images/s one tiny-scale training step (v2 ASPP-L) consumes on this machine."""
    model = build_model("v2", head="aspp-l", width=0.125, batch_norm=True, dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 21, (batch, size, size))
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    args = parser.parse_args(argv)
    n, size = (4, 48) if args.smoke else (64, 128)
    workers = default_workers()
    one = crf_throughput(n, size, 1, repeats=1 if args.smoke else 3)
    pool = crf_throughput(n, size, workers, repeats=1 if args.smoke else 3)
    generated = generator_throughput(n * 4, size)
    consumed = training_consumption(size, steps=2 if args.smoke else 10)
    rows = [
        {"benchmark": f"dense CRF, {size}x{size}, 10 iterations, 1 worker", "value": one, "unit": "images/s"},
        {"benchmark": f"dense CRF, {size}x{size}, 10 iterations, {workers} workers", "value": pool, "unit": "images/s"},
        {"benchmark": "dense CRF pool speed-up (target >= 1.6 on 2 cores)", "value": pool / one, "unit": "x"},
        {"benchmark": f"synthetic generator, {size}x{size}", "value": generated, "unit": "images/s"},
        {"benchmark": f"tiny training step consumes (v2 ASPP-L, batch 8, {size}x{size})", "value": consumed, "unit": "images/s"},
        {"benchmark": "generator / training consumption", "value": generated / consumed, "unit": "x"},
    ]
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "bench.csv", index=False)
    git = git_state()
    header = (f"# make bench\n\nMachine: {device_name(torch.device('cpu'))}, {platform.node()}; torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads; date {utc_now()}; commit "
              f"{(git['git_commit'] or '?')[:7]}{' (dirty)' if git['git_dirty'] else ''}"
              f"{'; SMOKE sizes, not a measurement' if args.smoke else ''}.\n\n")
    lines = ["| benchmark | value | unit |", "|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {r['value']:.2f} | {r['unit']} |" for r in rows]
    (args.out / "bench.md").write_text(header + "\n".join(lines) + "\n")
    print(header + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
