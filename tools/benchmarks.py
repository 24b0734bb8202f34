"""`make bench`: measured side by side in one run, written to results/bench.md and bench.csv.

    .venv/bin/python tools/benchmarks.py --out results     # = make bench (about 11 min on 2 cores)

What it measures (the tables of results/bench.md), all in one process on one machine:
- the machine's fp32 GEMM rate (torch.mm), the ceiling every GFLOP/s figure is a fraction of;
- our v3 ResNet-101 (OS 8, image pooling) against torchvision's deeplabv3_resnet101 holding the
  same weights, 513x513, batch 1: eager, and folded + channels-last (bench.models.fuse);
- every version's flagship at 513x513 and at the tiny scale: fps, params, GFLOPs, GFLOP/s. The
  flagships are the variants of experiments/versions.py (v1 LargeFOV, v2 ASPP-L on VGG-16, v3 and
  v3+ on ResNet-101 at OS 16), each built from its experiment knobs at the row's width, without
  the tiny scale's other model knobs (no BN in VGG, dropout kept), as before. This differs from
  the earlier list in two rows: results/bench.md as measured at ec4feda also has v2 ASPP-L on
  ResNet-101 and v3+ on Xception-65, which versions.py does not list (add them there to measure
  them again); the row labels are now the variant names;
- harness overhead: the fps `bench` records (measure_fps) against a bare timing loop, and
  Lightning's training loop against a bare PyTorch loop on the same model and batches;
- the dense CRF with one worker and with the pool, beside the two ceilings that bound a pool on
  this machine (independent processes; a memory-free loop);
- the synthetic generator against the images/s a training step consumes, and the wall time of
  the tiny ablation-aspp sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.data.synthetic import generate
from bench.evaluation.crf import CRFParams, default_workers, dense_crf_batch
from bench.evaluation.speed import count_gflops, count_params_m, measure_fps
from bench.models import build_model
from bench.models.fuse import optimize_for_inference
from bench.provenance import device_name, git_state, utc_now
from bench.recipes import TINY_VGG
from bench.registry import get_experiment


def best_seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` (the caller warms it up first if needed)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def best_alternating(rounds: int, *timers) -> list[float]:
    """The fastest of ``rounds`` calls of each timer (a function returning seconds), called in
    turn round by round: pairs compared this way share the machine's drift, which on this VM is
    several percent over a minute - more than some of the differences being measured."""
    best = [float("inf")] * len(timers)
    for _ in range(rounds):
        best = [min(b, timer()) for b, timer in zip(best, timers)]
    return best


def _crf_inputs(n_images: int, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Real synthetic images with a blurred one-hot unary, as a trained network's softmax."""
    images, masks = generate(0, "bench", n_images, size)
    probs = []
    for mask in masks:
        onehot = np.eye(21, dtype=np.float32)[np.where(mask == 255, 0, mask)].transpose(2, 0, 1)
        noisy = onehot * 0.6 + 0.4 / 21 + np.random.default_rng(0).random(onehot.shape, dtype=np.float32) * 0.2
        probs.append(np.ascontiguousarray(noisy / noisy.sum(0, keepdims=True)))
    return list(images), probs


def crf_scaling(n_images: int, size: int, workers: int, rounds: int = 3) -> dict[str, float]:
    """Dense-CRF images/s with one worker and with the pool, measured in alternating rounds of the
    same process (best of each; timing them minutes apart let the machine's drift pass for a
    speed-up), plus the two ceilings that bound the pool on this machine:

    - ``independent``: ``workers`` separate processes, each running the single-worker CRF on its
      share, started together - the speed-up any pool could reach here;
    - ``busy_loop``: the same for a pure-Python loop, which touches no memory: whether the cores
      themselves are independent (a CRF ceiling below it is memory traffic, not the pool).
    """
    images, probs = _crf_inputs(n_images, size)
    dense_crf_batch(images[:2], probs[:2], CRFParams(), workers=1)  # warm-up: first allocations
    dense_crf_batch(images[:2 * workers], probs[:2 * workers], CRFParams(), workers=workers)
    one, pool = best_alternating(
        rounds,
        lambda: best_seconds(lambda: dense_crf_batch(images, probs, CRFParams(), workers=1), 1),
        lambda: best_seconds(lambda: dense_crf_batch(images, probs, CRFParams(), workers=workers), 1))
    share = n_images // workers

    def crf_share(k: int) -> None:  # one independent process of the CRF ceiling
        dense_crf_batch(images[k * share:(k + 1) * share], probs[k * share:(k + 1) * share], CRFParams(), workers=1)

    independent, loop_one, loop_all = best_alternating(
        rounds, lambda: _side_by_side(crf_share, workers), lambda: _side_by_side(_busy_loop, 1),
        lambda: _side_by_side(_busy_loop, workers))
    return {"one": n_images / one, "pool": n_images / pool,
            "independent": (share * workers / independent) / (n_images / one),
            "busy_loop": workers * loop_one / loop_all}


def _busy_loop(k: int) -> None:
    """Pure-Python arithmetic: no memory traffic to share between cores."""
    total = 0
    for i in range(3_000_000):
        total += i * i


def _side_by_side(work, processes: int) -> float:
    """Seconds until the slowest of ``processes`` forked processes, each running ``work(k)`` once
    they have all started, finishes."""
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()

    def child(k: int) -> None:
        start.wait()
        began = time.perf_counter()
        work(k)
        results.put(time.perf_counter() - began)

    procs = [ctx.Process(target=child, args=(k,)) for k in range(processes)]
    for proc in procs:
        proc.start()
    time.sleep(0.2)  # every process forked and waiting
    start.set()
    seconds = max(results.get() for _ in procs)
    for proc in procs:
        proc.join()
    return seconds


def generator_throughput(n_images: int, size: int) -> float:
    start = time.perf_counter()
    generate(1, "bench-gen", n_images, size)
    return n_images / (time.perf_counter() - start)


def tiny_step(size: int, batch: int = 8, *, channels_last: bool = False, bf16: bool = False, seed: int = 0):
    """A function running one SGD step (the tiny recipe's momentum and weight decay) of the tiny
    v2 ASPP-L on a fixed random batch; ``channels_last`` / ``bf16``: the paths tools/train_speed.py
    compares (NHWC model and input; bf16 autocast of forward and backward, fp32 weights)."""
    torch.manual_seed(seed)
    model = build_model("v2", head="aspp-l", width=TINY_VGG.width, **TINY_VGG.model_knobs)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 21, (batch, size, size))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=TINY_VGG.momentum,
                                weight_decay=TINY_VGG.weight_decay)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step() -> None:
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def training_consumption(size: int, batch: int = 8, steps: int = 10) -> float:
    """Images/s one tiny-scale training step (v2 ASPP-L) consumes on this machine."""
    step = tiny_step(size, batch)
    step(), step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def machine_limit(smoke: bool) -> tuple[list[dict], float]:
    """The machine's fp32 limit: rows for torch.mm and the faster oneDNN conv, and the faster of the two."""
    n_gemm, channels, side = (256, 64, 16) if smoke else (2048, 1024, 64)
    mm = gemm_gflops(n_gemm)
    conv = max(conv_gflops(channels, side, 1), conv_gflops(channels // 2, side + 1, 3))
    rows = [{"benchmark": f"fp32 GEMM, torch.mm {n_gemm}^3 (MKL)", "value": mm, "unit": "GFLOP/s"},
            {"benchmark": f"fp32 oneDNN conv, best of 1x1 {channels}ch and 3x3 {channels // 2}ch at {side}px",
             "value": conv, "unit": "GFLOP/s"}]
    return rows, max(mm, conv)


def conv_gflops(channels: int, size: int, kernel: int, repeats: int = 5) -> float:
    """fp32 GFLOP/s of one oneDNN convolution (a 1x1 conv is a GEMM), best of ``repeats``.

    On this AMD EPYC torch.mm (MKL) runs at ~220 GFLOP/s while oneDNN's JIT kernels, which every
    conv of the models uses, reach ~500: the machine's limit is the faster of the two."""
    conv = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False).eval()
    x = torch.randn(1, channels, size, size)
    with torch.inference_mode():
        conv(x)
        best = best_seconds(lambda: conv(x), repeats)
    return 2 * channels * channels * kernel * kernel * size * size / best / 1e9


def gemm_gflops(n: int, repeats: int = 5) -> float:
    """fp32 GFLOP/s of an n x n x n torch.mm, best of ``repeats`` (2 n^3 FLOPs per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    return 2 * n**3 / best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def flagships() -> dict[str, tuple[str, dict]]:
    """Each version's flagship, the variants of experiments/versions.py: row label -> (version,
    the variant's experiment knobs; the caller adds the width)."""
    experiment = get_experiment("versions")
    rows = {}
    for variant in experiment.variants:
        version, knobs = experiment.version_of(variant), experiment.knobs_of(variant)
        rows[f"{variant.name} ({version}, {knobs['backbone']})"] = (version, knobs)
    return rows


def calibrate_batch_norms(model: torch.nn.Module, size: int, batches: int = 2) -> torch.nn.Module:
    """Give a randomly initialised model's BN running statistics that normalise, as trained weights
    have (fresh ones, mean 0 and var 1, let activations grow through 101 layers and make any
    difference look large): ``batches`` training-mode forwards of 2 random ``size`` x ``size``
    images, averaged. Returns the model in eval mode."""
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(2, 3, size, size))
    return model.eval()


def _timed(model, size: int, warmup: int, iters: int, *, channels_last: bool = False) -> dict:
    return measure_fps(model, (size, size), warmup=warmup, iters=iters, channels_last=channels_last)


def torchvision_comparison(size: int, warmup: int, iters: int) -> tuple[list[dict], float, float]:
    """Ours vs torchvision's deeplabv3_resnet101, the same (random) weights, batch 1, fp32.

    Returns the table rows, our v3's GFLOPs and its folded fps (for the GEMM fraction)."""
    from torchvision.models.segmentation import deeplabv3_resnet101

    from bench.models.torchvision_port import TORCHVISION_DEEPLABV3_KNOBS, load_torchvision_deeplabv3

    torch.manual_seed(0)
    reference = calibrate_batch_norms(deeplabv3_resnet101(weights=None, weights_backbone=None, aux_loss=False),
                                      min(size, 129))
    ours = load_torchvision_deeplabv3(build_model("v3", **TORCHVISION_DEEPLABV3_KNOBS, num_classes=21),
                                      reference.state_dict()).eval()
    fast = optimize_for_inference(ours)
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        expected = reference(x)["out"]
        eager_out = ours(x)
        folded_out = fast(x.contiguous(memory_format=torch.channels_last))
        diff_eager = (eager_out - expected).abs().max().item()
        diff_folded = (folded_out - expected).abs().max().item()
        # The float64 forward is the exact answer both fp32 models approximate: fp32's own rounding
        # error through 101 layers is the floor any reordering of the arithmetic (folding,
        # channels-last's kernels) can be held to.
        exact = copy.deepcopy(ours).double()(x.double())
        error_fp32 = (expected.double() - exact).abs().max().item()
        error_folded = (folded_out.double() - exact).abs().max().item()
    gflops = count_gflops(ours, (size, size))

    class Out(torch.nn.Module):  # torchvision returns {"out": logits}
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)["out"]

    tv = _timed(Out(reference), size, warmup, iters)
    eager = _timed(ours, size, warmup, iters)
    folded = _timed(fast, size, warmup, iters, channels_last=True)
    rows = [
        {"benchmark": f"torchvision deeplabv3_resnet101, {size}x{size}, batch 1", "value": tv["fps"], "unit": "fps"},
        {"benchmark": f"ours v3 same weights, eager, {size}x{size}", "value": eager["fps"], "unit": "fps"},
        {"benchmark": f"ours v3 same weights, folded BN + channels-last, {size}x{size}", "value": folded["fps"], "unit": "fps"},
        {"benchmark": "ours (folded, channels-last) / torchvision (target >= 1.10)", "value": folded["fps"] / tv["fps"], "unit": "x"},
        {"benchmark": "ours eager / torchvision", "value": eager["fps"] / tv["fps"], "unit": "x"},
        {"benchmark": "largest |ours eager - torchvision| logit (target <= 1e-4)", "value": diff_eager, "unit": "abs"},
        {"benchmark": "largest |ours folded - torchvision| logit (target <= 1e-4)", "value": diff_folded, "unit": "abs"},
        {"benchmark": "largest |torchvision fp32 - float64| logit (fp32's own error, the floor)",
         "value": error_fp32, "unit": "abs"},
        {"benchmark": "largest |ours folded fp32 - float64| logit (no worse than the floor?)",
         "value": error_folded, "unit": "abs"},
        {"benchmark": "largest |torchvision| logit (the scale of the differences)", "value": expected.abs().max().item(), "unit": "abs"},
    ]
    return rows, gflops, folded["fps"]


def flagship_rows(size: int, width: float, warmup: int, iters: int, gemm: float, label: str,
                  *, folded: bool = True) -> list[dict]:
    """fps (eager, as records measure it; and folded + channels-last unless ``folded`` is off, to
    keep the 513x513 pass short), params, GFLOPs, and the GEMM fraction of the faster of the two."""
    rows = []
    for name, (version, knobs) in flagships().items():
        model = build_model(version, **{**knobs, "width": width}).eval()
        gflops = count_gflops(model, (size, size))
        eager = _timed(model, size, warmup, iters)
        fast = _timed(optimize_for_inference(model), size, warmup, iters, channels_last=True)["fps"] if folded else None
        rows.append({"benchmark": f"{name}, {label}", "value": eager["fps"], "unit": "fps",
                     "fps_folded": fast, "fps_iqr": eager["fps_iqr"],
                     "params_m": count_params_m(model), "gflops": gflops,
                     "gemm_fraction": gflops * max(eager["fps"], fast or 0.0) / gemm})
    return rows


def harness_overhead(size: int, iters: int, rounds: int = 3) -> list[dict]:
    """measure_fps against a bare loop; Lightning's fit loop against a bare training loop.

    Each pair is timed in alternating rounds, the best of each side kept (best_alternating)."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from bench.module import SegmentationModule

    model = build_model("v2", head="aspp-l", width=0.125, batch_norm=True, dropout=0.0).eval()
    x = torch.randn(1, 3, size, size)

    def bare_fps() -> float:
        with torch.inference_mode():
            for _ in range(3):
                model(x)
            start = time.perf_counter()
            for _ in range(iters):
                model(x)
        return iters / (time.perf_counter() - start)

    recorded, bare = best_alternating(  # seconds per image
        rounds, lambda: 1 / measure_fps(model, (size, size), warmup=3, iters=iters)["fps"],
        lambda: 1 / bare_fps())

    # Training: the same module, optimiser, schedule and batches through Lightning and by hand.
    batch, steps = 8, max(4, iters)
    data = TensorDataset(torch.randn(batch * (steps + 2), 3, size, size),
                         torch.randint(0, 21, (batch * (steps + 2), size, size)))

    def module():
        torch.manual_seed(0)
        net = build_model("v2", head="aspp-l", width=0.125, batch_norm=True, dropout=0.0)
        return SegmentationModule(net, num_classes=21, max_steps=steps + 2, lr=0.01, momentum=0.9,
                                  weight_decay=5e-4, poly_power=0.9, classifier_lr_mult=1.0)

    class StepTimer(pl.Callback):  # times steps 2.. so both loops skip the same warm-up
        def on_train_batch_start(self, trainer, *args):
            if trainer.global_step == 2:
                self.start = time.perf_counter()

        def on_train_end(self, trainer, *args):
            self.seconds = time.perf_counter() - self.start

    def lightning_seconds() -> float:
        timer = StepTimer()
        trainer = pl.Trainer(max_steps=steps + 2, accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
                             enable_progress_bar=False, callbacks=[timer])
        trainer.fit(module(), train_dataloaders=DataLoader(data, batch_size=batch))
        return timer.seconds

    def bare_seconds() -> float:
        bare_module = module()
        optimizers = bare_module.configure_optimizers()
        optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
        bare_module.train()
        for i, (images, masks) in enumerate(DataLoader(data, batch_size=batch)):
            if i == 2:
                start = time.perf_counter()
            loss = bare_module.loss(bare_module(images), masks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        return time.perf_counter() - start

    lightning, bare_loop = best_alternating(rounds, lightning_seconds, bare_seconds)
    return [
        {"benchmark": f"bench's fps (measure_fps) / bare timing loop, v2 ASPP-L tiny, {size}x{size} (target >= 0.97)",
         "value": bare / recorded, "unit": "x"},
        {"benchmark": f"Lightning fit / bare PyTorch loop, images/s, batch {batch}, {size}x{size} (target >= 0.95)",
         "value": bare_loop / lightning, "unit": "x"},
    ]


def ablation_wall_seconds() -> float:
    """Wall time of `bench run ablation-aspp` (tiny, 9 runs) into a scratch results dir."""
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "run", "ablation-aspp", "--results-dir", scratch,
                        "--wandb", "disabled"], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/benchmarks.py")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    parser.add_argument("--skip-ablation", action="store_true",
                        help="do not time `bench run ablation-aspp` (about 8 minutes on 2 cores)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    n, size = (4, 48) if args.smoke else (64, 128)
    big, warmup, iters = (65, 1, 2) if args.smoke else (513, 2, 10)  # 513: v3 Sec. 4.1's crop; v3+ Table 3 counts at 513
    workers = default_workers()
    rows, gemm = machine_limit(args.smoke)
    rows.append({"benchmark": "the machine's limit used below (the faster of the two)", "value": gemm,
                 "unit": "GFLOP/s"})
    tv_rows, v3_gflops, v3_fps = torchvision_comparison(big, warmup, iters)
    rows += tv_rows
    rows.append({"benchmark": f"v3 (OS 8, folded) achieved GFLOP/s / GEMM, {big}x{big} (target >= 0.90)",
                 "value": v3_gflops * v3_fps / gemm, "unit": "x"})
    # at 513x513 eager only: the folded v3 is timed above, and each 513 forward takes seconds here
    rows += flagship_rows(big, 1.0 if not args.smoke else 0.125, 1, iters, gemm, f"{big}x{big}", folded=False)
    rows += flagship_rows(size, 0.125, 3, 15, gemm, f"tiny (width 0.125), {size}x{size}")
    rows += harness_overhead(size, 4 if args.smoke else 30, rounds=1 if args.smoke else 5)
    crf = crf_scaling(n, size, workers, rounds=1 if args.smoke else 5)
    generated = generator_throughput(n * 4, size)
    consumed = training_consumption(size, steps=2 if args.smoke else 10)
    rows += [
        {"benchmark": f"dense CRF, {size}x{size}, 10 iterations, 1 worker", "value": crf["one"], "unit": "images/s"},
        {"benchmark": f"dense CRF, {size}x{size}, 10 iterations, {workers} workers", "value": crf["pool"], "unit": "images/s"},
        {"benchmark": "dense CRF pool speed-up (target >= 1.6 on 2 cores)", "value": crf["pool"] / crf["one"], "unit": "x"},
        {"benchmark": f"ceiling: {workers} independent single-worker CRF processes at once / one",
         "value": crf["independent"], "unit": "x"},
        {"benchmark": f"ceiling: {workers} pure-Python loops at once / one (are the cores independent?)",
         "value": crf["busy_loop"], "unit": "x"},
        {"benchmark": f"synthetic generator, {size}x{size}", "value": generated, "unit": "images/s"},
        {"benchmark": f"tiny training step consumes (v2 ASPP-L, batch 8, {size}x{size})", "value": consumed, "unit": "images/s"},
        {"benchmark": "generator / training consumption", "value": generated / consumed, "unit": "x"},
    ]
    if not (args.smoke or args.skip_ablation):
        rows.append({"benchmark": "wall time of `bench run ablation-aspp` (tiny, 9 runs, warm install)",
                     "value": ablation_wall_seconds(), "unit": "s"})
    rows.append({"benchmark": "wall time of this benchmark", "value": time.perf_counter() - started, "unit": "s"})
    write(rows, args.out, smoke=args.smoke)
    return 0


def write(rows: list[dict], out: Path, *, smoke: bool) -> None:
    frame = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "bench.csv", index=False)
    header = (f"# make bench\n\n{provenance(smoke=smoke)}\n\n"
              "fps: batch 1, median of the timed iterations after warm-up, inference mode (bench's "
              "speed protocol); 'folded' = BN folded into convs + channels-last (bench.models.fuse); "
              "GEMM fraction = GFLOPs x the faster fps / the machine's limit. GFLOPs count every tap of a "
              "dilated conv, also those that fall on zero padding, which oneDNN skips; with large rates "
              "on small maps (ASPP at 513 px) a fraction above 1 is that, not a faster-than-peak machine.\n\n"
              "Peers: our v3 and v3+ beside segmentation-models-pytorch's DeepLabV3 and DeepLabV3Plus, like for "
              "like, in [bench-peers.md](bench-peers.md) (tools/peers.py; `make bench-peers` reruns it alone).\n\n")
    lines = ["| benchmark | value | unit |", "|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {_fmt(r['value'])} | {r['unit']} |" for r in rows if "params_m" not in r]
    models = [r for r in rows if "params_m" in r]
    if models:
        lines += ["", "| model | params (M) | GFLOPs | fps eager (IQR) | fps folded | GEMM fraction |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['benchmark']} | {r['params_m']:.2f} | {r['gflops']:.2f} | {r['value']:.2f} "
                  f"({r['fps_iqr']:.2f}) | {_fmt(r['fps_folded'])} | {r['gemm_fraction']:.2f} |" for r in models]
    (out / "bench.md").write_text(header + "\n".join(lines) + "\n")
    print(header + "\n".join(lines))


def provenance(*, smoke: bool) -> str:
    """The line under a benchmark table's title: machine, torch, threads, date, commit."""
    git = git_state()
    return (f"Machine: {device_name(torch.device('cpu'))}, {platform.node()}; torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads; date {utc_now()}; commit "
            f"{(git['git_commit'] or '?')[:7]}{' (dirty)' if git['git_dirty'] else ''}"
            f"{'; SMOKE sizes, not a measurement' if smoke else ''}.")


def _fmt(value: float | None) -> str:
    if value is None or value != value:  # not measured
        return "-"
    return f"{value:.2e}" if 0 < abs(value) < 1e-2 else f"{value:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
