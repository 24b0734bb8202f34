"""ablation-output-stride: v3 at output stride 8, 16 and 32 (train and eval alike).

Paper: DeepLab v3 (arXiv'17), Table 1 "output stride" (ResNet-50 cascaded to block7):
OS 8 75.18, OS 16 73.88, OS 32 70.06 -- a denser feature map is more accurate and costs more.
Scientific knob: ``output_stride``. Fixed: ResNet-50 with blocks 5-7 cascaded, multigrid
(1, 1, 1); our v3 keeps its ASPP head (rates scaled with the stride, see V3Config.atrous_rates,
no image pooling), which the paper's table does not have. Seeds: 3 at the tiny scale, 1 at the
paper scale. OS 8 against OS 32 is the resolution check of docs/synthetic-data.md.

    make ablation-output-stride # = bench run ablation-output-stride

Expected at the tiny scale: about 8 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-output-stride",
    description="v3 output stride 8 / 16 / 32, cascaded ResNet-50 [v3 Table 1]",
    version="v3",
    paper_table="DeepLab v3 Table 1 (output stride, cascaded ResNet-50)",
    scientific_knobs=("output_stride",),
    fixed_knobs={"backbone": "resnet50", "cascade_blocks": 3, "multigrid": (1, 1, 1),
                 "image_pooling": False},
    notes="paper numbers are without ASPP; ours keep the ASPP head",
    variants=(
        Variant("os8", {"output_stride": 8}, paper_miou=75.18),
        Variant("os16", {"output_stride": 16}, paper_miou=73.88),
        Variant("os32", {"output_stride": 32}, paper_miou=70.06),
    ),
    findings=(
        # v3 Table 1: OS 8 75.18 > OS 16 73.88 > OS 32 70.06
        Finding("v3 Table 1", "OS 8 > OS 16 > OS 32", (Better("os8", "os16"), Better("os16", "os32"))),
    ),
)
