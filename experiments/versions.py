"""versions: DeepLab v1, v2, v3 and v3+ flagships side by side (mIoU vs fps).

Papers: v1 DeepLab-LargeFOV (Table 1(a), 62.25 before CRF), v2 VGG-16 ASPP-L (Table 3, 68.96),
v3 ResNet-101 MG (1,2,4) + ASPP + image pooling at OS 16 (Table 5, 77.21), v3+ ResNet-101 with
decoder at eval OS 16 (Table 3, 78.85). All before CRF and without multi-scale or flip, so the rows
compare networks, not test-time tricks. Each row trains with its own version's recipe.
Scientific knob: ``version`` (with each version's flagship network). Seeds: 3 at the tiny scale,
1 at the paper scale.

    make versions               # = bench run versions

Expected at the tiny scale: about 10 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="versions",
    description="v1 LargeFOV vs v2 ASPP-L vs v3 vs v3+, mIoU vs fps [all four papers]",
    version="v3",
    paper_table="DeepLab v1 Table 1(a), v2 Table 3, v3 Table 5, v3+ Table 3",
    scientific_knobs=("version",),
    variants=(
        Variant("v1-largefov", {"backbone": "vgg16", "kernel_size": 3, "rate": 12, "fc_channels": 1024},
                version="v1", paper_miou=62.25),
        Variant("v2-aspp-l", {"backbone": "vgg16", "head": "aspp-l"}, version="v2", paper_miou=68.96),
        Variant("v3", {"backbone": "resnet101", "output_stride": 16}, version="v3", paper_miou=77.21),
        Variant("v3plus", {"backbone": "resnet101", "output_stride": 16, "decoder": True},
                version="v3+", paper_miou=78.85),
    ),
    findings=(
        # v3+ Table 3 78.85 > v3 Table 5 77.21 > v2 Table 3 68.96 > v1 Table 1(a) 62.25, all before CRF
        Finding("all four", "v3+ > v3 > v2 ASPP-L > v1 LargeFOV",
                (Better("v3plus", "v3"), Better("v3", "v2-aspp-l"), Better("v2-aspp-l", "v1-largefov"))),
    ),
)
