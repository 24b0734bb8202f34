"""ablation-image-pooling: v3's ASPP with and without the image-level (global pooling) branch.

Paper: DeepLab v3 (arXiv'17), Table 5 "ASPP" (ResNet-101, OS 16, multigrid (1, 2, 4), ASPP rates
(6, 12, 18)): adding image pooling gives the best model, 77.21. The row without image pooling is
not in ../shared/reference/paper-tables.md as a checked number, so its paper column stays empty.
Scientific knob: ``image_pooling``. Fixed: ResNet-101, OS 16, multigrid (1, 2, 4), rates (6, 12, 18).
Seeds: 3 at the tiny scale, 1 at the paper scale.

    make ablation-image-pooling # = bench run ablation-image-pooling

Expected at the tiny scale: about 6 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-image-pooling",
    description="v3 ASPP (6,12,18) with vs without image pooling, multigrid (1,2,4) [v3 Table 5]",
    version="v3",
    paper_table="DeepLab v3 Table 5 (ASPP, ResNet-101, OS 16)",
    scientific_knobs=("image_pooling",),
    fixed_knobs={"backbone": "resnet101", "output_stride": 16, "multigrid": (1, 2, 4),
                 "aspp_rates": (6, 12, 18)},
    variants=(
        Variant("aspp", {"image_pooling": False}),
        Variant("aspp+image-pooling", {"image_pooling": True}, paper_miou=77.21),
    ),
    findings=(
        # v3 Table 5: adding image pooling to ASPP (6, 12, 18) gives the best model, 77.21
        Finding("v3 Table 5", "ASPP + image pooling > ASPP", (Better("aspp+image-pooling", "aspp"),)),
    ),
)
