"""The speed protocol: parameters, GFLOPs, and fps of the network alone.

fps: batch 1 (or the batch given), ``warmup`` untimed forwards, then ``iters`` timed forwards in
inference mode, each timed on its own with the device synchronised before and after; we report
the median as fps = batch / median seconds, and the interquartile range as the spread. Data
loading and post-processing (CRF) are outside the timed region.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params_m(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_gflops(model: nn.Module, input_size: tuple[int, int], device: str | torch.device = "cpu") -> float:
    """Forward GFLOPs (2 x multiply-adds, as torch.utils.flop_counter counts) for one image."""
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, *input_size, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_fps(model: nn.Module, input_size: tuple[int, int], *, batch_size: int = 1,
                warmup: int = 5, iters: int = 20, device: str | torch.device = "cpu",
                channels_last: bool = False) -> dict:
    """Median fps over ``iters`` timed forwards after ``warmup`` untimed ones; ``channels_last``
    feeds an NHWC input (for models converted by bench.models.fuse.optimize_for_inference)."""
    if iters < 1 or warmup < 0:
        raise ValueError(f"need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, 3, *input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    seconds = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
    model.train(was_training)
    fps = [batch_size / s for s in seconds]
    q1, _, q3 = statistics.quantiles(fps, n=4) if len(fps) > 1 else (fps[0], None, fps[0])
    return {
        "fps": batch_size / statistics.median(seconds),
        "fps_iqr": q3 - q1,
        "latency_ms": 1000.0 * statistics.median(seconds),
        "batch_size": batch_size,
        "input_size": list(input_size),
        "warmup": warmup,
        "iters": iters,
        "device": str(device),
        "precision": "fp32",
    }
