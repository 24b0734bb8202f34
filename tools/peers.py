"""`make bench-peers` (also the second step of `make bench`): our v3 and v3+ beside
segmentation-models-pytorch's (smp) DeepLabV3 and DeepLabV3Plus, like for like, written to
results/bench-peers.md and bench-peers.csv.

    .venv/bin/python tools/peers.py --out results     # = make bench-peers (about 4 min on 2 cores)

smp is a benchmark-only dependency (the `bench` extra, also in `test`): `pip install -e '.[bench]'`.

Each pair: ResNet-101 (torchvision's, random weights: encoder_weights=None), output stride 16, the
same ASPP rates, 21 classes, 512x512 (smp needs sides divisible by 32), batch 1, fp32, inference
mode, timed by bench.evaluation.speed.measure_fps in alternating rounds (best of each kept,
benchmarks.best_alternating), BN statistics calibrated the same way for both (benchmarks.
calibrate_batch_norms). Each model is timed eager, and through the same path: bench.models.fuse.
optimize_for_inference (BN folded into the convs + channels-last), then fold_after_sequences for
the BNs it leaves (smp's separable convs; see there), so both sides run fully folded.

Scientific knob: the implementation (ours vs smp). Nuisance knobs matched to smp's layout (not
our flagships of experiments/versions.py): multigrid (1, 1, 1) (smp dilates every unit of block4
at rate 2, not contracted, as ours), and for v3 torchvision's head (smp's DeepLabV3Decoder has its
extra 3x3 conv after the ASPP projection and dropout 0.5). The differences that remain are
listed in DIFFERENCES and printed under the table.

Issue 16 reported, on the 2-core Xeon: our v3 1.03x smp's DeepLabV3; our separable v3+ 0.99x smp's
DeepLabV3Plus eager and 1.12x with the path. optimize_for_inference alone leaves the BNs after
smp's 5 separable convs unfolded (tests/test_bench_peers.py), so the table also has that ratio.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from benchmarks import _fmt, best_alternating, calibrate_batch_norms, provenance
from bench.evaluation.speed import count_gflops, count_params_m, measure_fps
from bench.models import build_model
from bench.models.fuse import optimize_for_inference

SIZE = 512  # smp checks that the sides divide by 32; 512 is the nearest to the papers' 513
OUTPUT_STRIDE = 16
# v3 Sec. 3.3: (6, 12, 18) at output stride 16. smp's default, (12, 24, 36), is torchvision's
# OS-8 rates, which smp keeps at every output stride; both sides get the paper's OS-16 rates.
RATES = (6, 12, 18)
NUM_CLASSES = 21

SMP_COMMON = dict(encoder_name="resnet101", encoder_weights=None, encoder_output_stride=OUTPUT_STRIDE,
                  decoder_atrous_rates=RATES, decoder_channels=256, classes=NUM_CLASSES)
# pair -> ((our row label, version, knobs), (smp row label, smp class, kwargs))
PAIRS = {
    "v3": (("ours v3 (ResNet-101, OS 16, torchvision head)", "v3",
            dict(backbone="resnet101", output_stride=OUTPUT_STRIDE, multigrid=(1, 1, 1), aspp_rates=RATES,
                 image_pooling=True, torchvision_head=True, num_classes=NUM_CLASSES)),
           ("smp DeepLabV3 (resnet101, OS 16)", "DeepLabV3", SMP_COMMON)),
    "v3+ separable": (("ours v3+ separable=True (ResNet-101, OS 16)", "v3+",
                       dict(backbone="resnet101", output_stride=OUTPUT_STRIDE, multigrid=(1, 1, 1),
                            aspp_rates=RATES, image_pooling=True, decoder=True, separable=True,
                            low_level_channels=48, num_classes=NUM_CLASSES)),
                      ("smp DeepLabV3Plus (resnet101, OS 16, separable ASPP)", "DeepLabV3Plus",
                       {**SMP_COMMON, "decoder_aspp_separable": True})),
}
# What still differs after the knobs above (read from smp 0.6's decoders/deeplabv3/decoder.py).
DIFFERENCES = {
    "v3": [
        "same layers: ResNet-101 with block4 at rate 2 in every unit, ASPP 1x1 + three 3x3 (6, 12, 18) + "
        "image pooling, 1x1 projection + dropout 0.5, 3x3 conv 256 + BN + ReLU, 1x1 logits (same "
        "parameters and FLOPs, rows above)",
        "our flagship v3 follows the paper instead: multigrid (1, 2, 4) and no 3x3 conv after the "
        "projection (torchvision_head=False); here the knobs follow smp",
        "final upsampling: smp nn.Upsample(x16, align_corners=True), ours F.interpolate to the input "
        "size, align_corners=False (same cost)",
        "smp's head ReLUs are not in place, ours are",
    ],
    "v3+ separable": [
        "separable conv: smp depthwise -> pointwise -> BN -> ReLU; ours (the paper's code) depthwise -> "
        "BN -> ReLU -> pointwise -> BN -> ReLU: one more BN + ReLU on each of our 5 separable convs "
        "(3 ASPP branches, 2 decoder convs; the BN folds away on the path, the ReLU stays)",
        "smp adds a separable 3x3 conv 256 + BN + ReLU after the ASPP projection (stride 16); the paper "
        "and ours have none",
        "decoder: smp refines with one separable 3x3 conv (304 -> 256), ours with two (v3+ Table 2: two "
        "3x3 convs of 256) at stride 4: most of our extra GFLOPs",
        "smp's ASPP projection has dropout 0.5, ours none (a no-op at inference); upsampling x4 "
        "align_corners=True (smp) vs to the low-level / input size, align_corners=False (ours)",
    ],
}


def build_smp(name: str, kwargs: dict) -> nn.Module:
    import segmentation_models_pytorch as smp

    return getattr(smp, name)(**kwargs)


def fold_after_sequences(model: nn.Module) -> int:
    """Fold a BatchNorm2d registered right after a plain nn.Sequential that ends in a Conv2d into
    that last conv, in place; returns the number folded.

    bench.models.fuse.fold_batch_norms folds a Conv2d and the BN registered right after it in the
    same parent. smp's SeparableConv2d is an nn.Sequential(depthwise, pointwise) followed by the BN
    in its parent, so the fold leaves those BNs; the function is the same (the Sequential's output
    is its last conv's), so this folds them too. Our models have none (it returns 0 on them)."""
    folded = 0
    for parent in model.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            seq, bn = parent._modules[first], parent._modules[second]
            if (type(bn) is nn.BatchNorm2d and bn.track_running_stats and isinstance(seq, nn.Sequential)
                    and type(seq).forward is nn.Sequential.forward and len(seq)
                    and isinstance(seq[-1], nn.Conv2d) and seq[-1].out_channels == bn.num_features):
                seq[-1] = fuse_conv_bn_eval(seq[-1], bn)
                parent._modules[second] = nn.Identity()
                folded += 1
    return folded


def inference_path(model: nn.Module) -> tuple[nn.Module | None, nn.Module, int]:
    """(optimize_for_inference's model if it left BNs, else None; the path's model; the number of
    BNs it left, which the path folds)."""
    fused = optimize_for_inference(model)
    path = copy.deepcopy(fused)
    left = fold_after_sequences(path)
    if not left:
        fused, path = None, fused
    path = path.to(memory_format=torch.channels_last)  # the convs the extra fold rewrote
    if any(type(m) is nn.BatchNorm2d for m in path.modules()):
        raise RuntimeError("a BatchNorm2d survived the path; both sides must run fully folded")
    return fused, path, left


def relative_error(model: nn.Module, path: nn.Module, size: int) -> float:
    """Largest |path - eager| logit over the largest |eager| logit, one random image."""
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        eager = model(x)
        fast = path(x.contiguous(memory_format=torch.channels_last))
    return ((fast - eager).abs().max() / eager.abs().max()).item()


def pair_rows(pair: str, size: int, warmup: int, iters: int, rounds: int, calibration: int) -> list[dict]:
    """The two models of ``pair``: one row each (fps eager and through the path, params, GFLOPs),
    then the ratios ours / smp, each computed from those fps."""
    (ours_label, version, knobs), (smp_label, smp_name, smp_kwargs) = PAIRS[pair]
    torch.manual_seed(0)
    models = {ours_label: (build_model(version, **knobs), _knobs(knobs)),
              smp_label: (build_smp(smp_name, smp_kwargs), _knobs(smp_kwargs))}
    rows, timers = [], []
    for label, (model, shown) in models.items():
        calibrate_batch_norms(model, calibration)
        fused, path, left = inference_path(model)
        rows.append({"benchmark": label, "value": None, "unit": "fps", "pair": pair, "knobs": shown,
                     "params_m": count_params_m(model), "gflops": count_gflops(model, (size, size)),
                     "bn_left_by_fuse": left, "path_error": relative_error(model, path, size)})
        timers += [(model, False), (path, True)] + ([(fused, True)] if left else [])

    def timer(model: nn.Module, channels_last: bool):
        return lambda: 1 / measure_fps(model, (size, size), warmup=warmup, iters=iters,
                                       channels_last=channels_last)["fps"]

    fps = iter(1 / s for s in best_alternating(rounds, *(timer(m, cl) for m, cl in timers)))
    for row in rows:
        row["value"], row["fps_path"] = next(fps), next(fps)
        row["fps_fuse_alone"] = next(fps) if row["bn_left_by_fuse"] else None
    ours, peer = rows
    rows += [
        {"benchmark": f"{pair}: ours / smp, eager", "value": ours["value"] / peer["value"], "unit": "x"},
        {"benchmark": f"{pair}: ours / smp, both fully folded + channels-last",
         "value": ours["fps_path"] / peer["fps_path"], "unit": "x"},
        {"benchmark": f"{pair}: ours / smp, params", "value": ours["params_m"] / peer["params_m"], "unit": "x"},
        {"benchmark": f"{pair}: ours / smp, GFLOPs", "value": ours["gflops"] / peer["gflops"], "unit": "x"},
    ]
    if peer["bn_left_by_fuse"]:
        rows.append({"benchmark": f"{pair}: ours folded / smp through optimize_for_inference alone "
                                  f"({peer['bn_left_by_fuse']} BN left unfolded)",
                     "value": ours["fps_path"] / peer["fps_fuse_alone"], "unit": "x"})
    return rows


def _knobs(knobs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in knobs.items() if k not in ("encoder_weights", "num_classes", "classes"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/peers.py")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the tests")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # smoke: 64 px (smp: divisible by 32), 1 warm-up, 1 timed forward, one round
    size, warmup, iters, rounds, calibration = (64, 1, 1, 1, 64) if args.smoke else (SIZE, 2, 10, 3, 128)
    rows = []
    for pair in PAIRS:
        rows += pair_rows(pair, size, warmup, iters, rounds, calibration)
    rows.append({"benchmark": "wall time of this benchmark", "value": time.perf_counter() - started, "unit": "s"})
    write(rows, args.out, size=size, smoke=args.smoke)
    return 0


def write(rows: list[dict], out: Path, *, size: int, smoke: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "bench-peers.csv", index=False)
    header = (f"# make bench-peers\n\n{provenance(smoke=smoke)}\n\n"
              f"Our v3 and v3+ beside segmentation-models-pytorch's DeepLabV3 and DeepLabV3Plus (smp "
              f"{_smp_version()}): ResNet-101, random weights, output stride 16, ASPP rates {RATES}, "
              f"{size}x{size}, batch 1, fp32, inference mode; fps by bench's speed protocol (measure_fps, "
              "median of the timed iterations), best of alternating rounds. 'path' = "
              "bench.models.fuse.optimize_for_inference (BN folded into the convs + channels-last) and "
              "tools/peers.py's fold_after_sequences for the BNs it leaves (smp's separable convs: a "
              "BN after an nn.Sequential(depthwise, pointwise)), so both sides run with every BN folded; "
              "'optimize_for_inference alone' leaves those. Path error = largest |path - eager| logit / "
              "largest |eager| logit. Back to [bench.md](bench.md).\n\n")
    models = [r for r in rows if "params_m" in r]
    lines = ["| pair | model | knobs | params (M) | GFLOPs | fps eager | fps path | "
             "BN left by optimize_for_inference | fps optimize_for_inference alone | path error |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['pair']} | {r['benchmark']} | {r['knobs']} | {r['params_m']:.2f} | {r['gflops']:.2f} | "
              f"{r['value']:.2f} | {r['fps_path']:.2f} | {r['bn_left_by_fuse']} | {_fmt(r['fps_fuse_alone'])} | "
              f"{_fmt(r['path_error'])} |" for r in models]
    lines += ["", "| benchmark | value | unit |", "|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {_fmt(r['value'])} | {r['unit']} |" for r in rows if "params_m" not in r]
    lines += ["", "Differences that remain:", ""]
    for pair, differences in DIFFERENCES.items():
        lines += [f"- {pair}: {difference}" for difference in differences]
    (out / "bench-peers.md").write_text(header + "\n".join(lines) + "\n")
    print(header + "\n".join(lines))


def _smp_version() -> str:
    from importlib import metadata

    return metadata.version("segmentation-models-pytorch")


if __name__ == "__main__":
    raise SystemExit(main())
