"""How much of each atrous branch sees the image rather than the zero padding, per image size:
the tap coverage (bench.models.receptive_field.tap_coverage) of every fc6 / ASPP branch of the
variants of ablation-fov, ablation-aspp and ablation-dilation at the tiny scale's 128 px, the
256 px of issue 17's isolating experiment, and the papers' 321 px training crop and 513 px
evaluation size.

    python tools/atrous_coverage.py > results/pilot-tiny-v1/coverage.md

Nothing trains: the networks are built on the meta device.
"""

from __future__ import annotations

import torch

from bench.models.build import build_model
from bench.models.receptive_field import tap_coverage
from bench.registry import get_experiment
from bench.runner import resolve_variant

SIZES = (128, 256, 321, 513)
EXPERIMENTS = ("ablation-fov", "ablation-aspp", "ablation-dilation")


def rows() -> list[str]:
    lines = ["| experiment | variant | branch (kernel, rate) | " + " | ".join(f"{s} px" for s in SIZES) + " |",
             "| :-- | :-- | :-- | " + " | ".join("--:" for _ in SIZES) + " |"]
    for name in EXPERIMENTS:
        experiment = get_experiment(name)
        for variant in experiment.variants:
            version, _, knobs = resolve_variant(experiment, variant, "tiny", data="synthetic")
            with torch.device("meta"):
                model = build_model(version, **knobs)
            per_size = [tap_coverage(model, size) for size in SIZES]
            for i, (kernel, rate, _) in enumerate(per_size[0]):
                values = " | ".join(f"{branches[i][2]:.2f}" for branches in per_size)
                lines.append(f"| {name} | {variant.name} | {kernel}x{kernel} r{rate} | {values} |")
    return lines


if __name__ == "__main__":
    print("Tap coverage: the fraction of a branch's taps inside the feature map (not its zero padding), "
          "averaged over the map; 1/9 = a 3x3 branch reduced to its centre tap (a 1x1 conv). "
          "Output stride 8 (VGG-16): the map's side is the image's / 8.\n")
    print("\n".join(rows()))
