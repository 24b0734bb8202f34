"""ablation-crf: each CRF-era version's flagship, before and after the dense CRF.

Papers: DeepLab v1 (ICLR'15) Table 1(a), DeepLab-LargeFOV 62.25 -> 67.64; DeepLab v2 (TPAMI'17)
Table 3, VGG-16 ASPP-L 68.96 -> 71.57, and Table 4, ResNet-101 ASPP (+MSC, COCO, aug) 76.35 ->
77.69. The v2 ResNet-101 row here has no MSC or COCO: at the paper scale it is the ASPP network of
that table, not its whole recipe. Every row reports mIoU before and after CRF.
Scientific knobs: ``version``, ``backbone``, ``head``. Seeds: 3 at the tiny scale, 1 at the paper
scale.

    make ablation-crf           # = bench run ablation-crf
    bench crf-search ablation-crf   # CRF parameters per variant, on the held-out images

Expected at the tiny scale: about 10 min of runs plus 5 min of crf-search on a 2-core CPU
(results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import CrfGain, Finding

EXPERIMENT = Experiment(
    name="ablation-crf",
    description="v1 LargeFOV, v2 ASPP-L VGG-16 and ResNet-101: before/after dense CRF [v1, v2]",
    version="v2",
    paper_table="DeepLab v1 Table 1(a), v2 Tables 3 and 4",
    scientific_knobs=("version", "backbone", "head"),
    crf=True,
    variants=(
        Variant("v1-largefov", {"backbone": "vgg16", "kernel_size": 3, "rate": 12, "fc_channels": 1024},
                version="v1", paper_miou=62.25, paper_miou_crf=67.64),
        Variant("v2-aspp-l-vgg16", {"backbone": "vgg16", "head": "aspp-l"},
                paper_miou=68.96, paper_miou_crf=71.57),
        Variant("v2-aspp-l-resnet101", {"backbone": "resnet101", "head": "aspp-l"},
                paper_miou=76.35, paper_miou_crf=77.69),
    ),
    findings=(
        # the gains in the papers: +5.39 (v1 LargeFOV), +2.61 (v2 ASPP-L VGG-16), +1.34 (v2 ResNet-101)
        Finding("v1 Table 1(a), v2 Tables 3-4", "the dense CRF gains at least 1 point on every row",
                (CrfGain(min_points=1.0),)),
    ),
)
