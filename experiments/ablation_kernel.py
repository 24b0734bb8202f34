"""ablation-kernel: fc6 kernel size 7, 4, 3 at one receptive field (224 px), DeepLab v1.

Paper: DeepLab v1 (ICLR'15), Table 2 "field of view": DeepLab-CRF-7x7 (7x7, rate 4),
DeepLab-CRF-4x4 (4x4, rate 8) and DeepLab-CRF-LargeFOV (3x3, rate 12) all see 224 px
(v1's convention 8*r*(k-1)+32). Scientific knobs: ``kernel_size`` with ``rate`` chosen to keep the
receptive field. Fixed: atrous VGG-16, OS 8, and -- unlike the paper, whose first two rows have 4096
fc6/fc7 channels -- 1024 channels in every row, so that the kernel size is the only difference.
v1 Table 2's numbers are after CRF, and this experiment evaluates with CRF too; the before-CRF
numbers are v2 Table 1's (its copy of v1 Table 2 with both columns). Seeds: 3 at the tiny scale,
1 at the paper scale.

    make ablation-kernel        # = bench run ablation-kernel
    bench crf-search ablation-kernel   # CRF parameters per variant, on the held-out images

Expected at the tiny scale: about 8 min of runs plus 5 min of crf-search on a 2-core CPU
(results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-kernel",
    description="v1 fc6 kernel 7x7 r4 / 4x4 r8 / 3x3 r12 at equal receptive field [v1 Table 2]",
    version="v1",
    paper_table="DeepLab v1 Table 2 / v2 Table 1 (field of view), rows with RF 224",
    scientific_knobs=("kernel_size", "rate"),
    fixed_knobs={"backbone": "vgg16", "fc_channels": 1024},
    crf=True,
    notes="paper rows 7x7 and 4x4 have 4096 fc6/fc7 channels; here all rows have 1024",
    variants=(
        # paper_miou (before CRF): v2 Table 1 (4x4 rate 8 = DeepLab-CRF-4x4: 63.41, v2 Table 1
        # only); paper_miou_crf: v1 Table 2 / v2 Table 1
        Variant("7x7-r4", {"kernel_size": 7, "rate": 4}, paper_miou=64.38, paper_miou_crf=67.64),
        Variant("4x4-r8", {"kernel_size": 4, "rate": 8}, paper_miou=63.41, paper_miou_crf=67.14),
        Variant("3x3-r12", {"kernel_size": 3, "rate": 12}, paper_miou=62.25, paper_miou_crf=67.64),
    ),
    findings=(
        # v1 Table 2, after CRF, all at 224 px: 3x3 r12 67.64 = 7x7 r4 67.64 > 4x4 r8 67.14
        Finding("v1 Table 2", "after CRF: 3x3 r12 and 7x7 r4 > 4x4 r8 (one 224 px field of view)",
                (Better("3x3-r12", "4x4-r8", "miou_crf"), Better("7x7-r4", "4x4-r8", "miou_crf"))),
    ),
)
