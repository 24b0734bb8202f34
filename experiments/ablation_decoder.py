"""ablation-decoder: v3 vs v3+ (decoder), separable convolutions, ResNet-101 vs Xception-65.

Paper: DeepLab v3+ (ECCV'18), train OS 16, eval OS 16, no multi-scale or flip: Table 3
(ResNet-101) no decoder 77.21, with decoder 78.85 (the table has no separable ResNet-101 row);
Table 5 (modified Xception, the paper's Xception-65) with decoder 79.93, with decoder and
separable convolutions in ASPP and decoder ("SC") 79.79. Scientific knobs: ``decoder``,
``separable``, ``backbone``. Fixed: OS 16, ASPP (6, 12, 18) with image pooling, the backbone's own
multigrid (V3PLUS_BACKBONE_DEFAULTS). Seeds: 3 at the tiny scale, 1 at the paper scale.

    make ablation-decoder       # = bench run ablation-decoder

Expected at the tiny scale: about 15 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-decoder",
    description="v3+ decoder on/off, separable on/off, ResNet-101 vs Xception-65 [v3+ Tables 3, 5]",
    version="v3+",
    paper_table="DeepLab v3+ Table 3 (ResNet-101) and Table 5 (Xception-65), eval OS 16",
    scientific_knobs=("decoder", "separable", "backbone"),
    fixed_knobs={"output_stride": 16},
    variants=(
        # v3+ Table 3 (train and eval OS 16, no MS, no flip)
        Variant("r101", {"backbone": "resnet101", "decoder": False, "separable": False}, paper_miou=77.21),
        Variant("r101-decoder", {"backbone": "resnet101", "decoder": True, "separable": False},
                paper_miou=78.85),
        Variant("r101-decoder-separable", {"backbone": "resnet101", "decoder": True, "separable": True}),
        # v3+ Table 5 (train and eval OS 16): decoder 79.93, decoder + SC 79.79
        Variant("x65-decoder", {"backbone": "xception65", "decoder": True, "separable": False},
                paper_miou=79.93),
        Variant("x65-decoder-separable", {"backbone": "xception65", "decoder": True, "separable": True},
                paper_miou=79.79),
    ),
    findings=(
        # v3+ Table 3: decoder 78.85 > none 77.21 (ResNet-101); Table 5: Xception-65 with decoder 79.93
        Finding("v3+ Tables 3, 5", "the decoder helps ResNet-101; Xception-65 beats ResNet-101 (with decoder)",
                (Better("r101-decoder", "r101"), Better("x65-decoder", "r101-decoder"))),
    ),
)
