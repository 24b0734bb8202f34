"""ablation-output-stride: v3 at output stride 8, 16 and 32 (train and eval alike).

Paper: DeepLab v3 (arXiv'17), Table 1 (cascaded ResNet-50 to block7, multigrid (1, 1, 1)):
OS 8 75.18, OS 16 73.88, OS 32 70.06 (provisional in paper-tables.md) -- a denser feature map
is more accurate and costs more. Scientific knob: ``output_stride``. Fixed: ResNet-50 with blocks
5-7 cascaded, unit rates; our v3 keeps its ASPP head (rates scaled with the stride, see
V3Config.atrous_rates), which the paper's table does not have.
OS 8 against OS 32 is issue 4's evidence that the synthetic data needs resolution.

    make ablation-output-stride # = bench run ablation-output-stride
"""

from bench.registry import Experiment, Variant

EXPERIMENT = Experiment(
    name="ablation-output-stride",
    description="v3 output stride 8 / 16 / 32, cascaded ResNet-50 [v3 Table 1]",
    version="v3",
    paper_table="DeepLab v3 Table 1 (output stride, cascaded ResNet-50), VOC 2012 val",
    scientific_knobs=("output_stride",),
    fixed_knobs={"backbone": "resnet50", "cascade_blocks": 3, "multigrid": (1, 1, 1),
                 "image_pooling": False},
    notes="paper numbers are without ASPP; ours keep the ASPP head",
    variants=(
        Variant("os8", {"output_stride": 8}, paper_miou=75.18),
        Variant("os16", {"output_stride": 16}, paper_miou=73.88),
        Variant("os32", {"output_stride": 32}, paper_miou=70.06),
    ),
)
