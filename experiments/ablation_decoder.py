"""ablation-decoder: v3 vs v3+ (decoder), separable convolutions, ResNet-101 vs Xception-65.

Paper: DeepLab v3+ (ECCV'18), Table 3 (ResNet-101, train and eval OS 16): no decoder 77.21,
with decoder 78.85; Table 5 (Xception-65) has no number in paper-tables.md yet, so those rows carry
none. Scientific knobs: ``decoder``, ``separable``, ``backbone``. Fixed: OS 16, ASPP (6, 12, 18) with
image pooling, the backbone's own multigrid (V3PLUS_BACKBONE_DEFAULTS).

    make ablation-decoder       # = bench run ablation-decoder
"""

from bench.registry import Experiment, Variant

EXPERIMENT = Experiment(
    name="ablation-decoder",
    description="v3+ decoder on/off, separable on/off, ResNet-101 vs Xception-65 [v3+ Tables 3, 5]",
    version="v3+",
    paper_table="DeepLab v3+ Table 3 (ResNet-101) and Table 5 (Xception-65), eval OS 16, VOC 2012 val",
    scientific_knobs=("decoder", "separable", "backbone"),
    fixed_knobs={"output_stride": 16},
    variants=(
        Variant("r101", {"backbone": "resnet101", "decoder": False, "separable": False}, paper_miou=77.21),
        Variant("r101-decoder", {"backbone": "resnet101", "decoder": True, "separable": False},
                paper_miou=78.85),
        Variant("r101-decoder-separable", {"backbone": "resnet101", "decoder": True, "separable": True}),
        Variant("x65-decoder", {"backbone": "xception65", "decoder": True, "separable": False}),
        Variant("x65-decoder-separable", {"backbone": "xception65", "decoder": True, "separable": True}),
    ),
)
