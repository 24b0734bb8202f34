"""Where the time of one v3 forward goes: torch.profiler's operator table, eager vs folded.

    python tools/profile_v3.py [SIZE]      # default 513, batch 1, fp32, CPU

The profile evidence behind the GEMM-fraction row of `make bench` (results/bench.md): it prints
the top operators by self CPU time and the share spent in convolutions, for our v3 (torchvision
layout, OS 8, image pooling) eager and after bench.models.fuse.optimize_for_inference.
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from bench.models import build_model
from bench.models.fuse import optimize_for_inference
from bench.models.torchvision_port import TORCHVISION_DEEPLABV3_KNOBS


def table(model: torch.nn.Module, x: torch.Tensor, label: str) -> None:
    with torch.inference_mode():
        model(x)  # warm-up: oneDNN primitive creation
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "conv" in e.key or "mkldnn" in e.key)
    print(f"\n== {label}: {total / 1e6:.2f} s self CPU time, convolutions {100 * conv / total:.1f}% ==")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 513
    torch.manual_seed(0)
    model = build_model("v3", **TORCHVISION_DEEPLABV3_KNOBS, num_classes=21).eval()
    x = torch.randn(1, 3, size, size)
    table(model, x, f"v3 eager, {size}x{size}")
    table(optimize_for_inference(model), x.contiguous(memory_format=torch.channels_last),
          f"v3 folded + channels-last, {size}x{size}")


if __name__ == "__main__":
    main()
