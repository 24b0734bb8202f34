"""ablation-msc: v1's multi-scale features and field of view, each before and after CRF.

Paper: DeepLab v1 (ICLR'15), Table 1(a) "MSc / CRF", VOC 2012 val. Rows: DeepLab (4x4 fc6, rate 4,
4096 channels), DeepLab-MSc (+ the five 128-channel MLPs on the input and pool1..pool4),
DeepLab-7x7 (7x7, rate 4, 4096), DeepLab-LargeFOV (3x3, rate 12, 1024) and DeepLab-MSc-LargeFOV.
Scientific knobs: ``msc``, ``kernel_size``, ``rate``, ``fc_channels``. Fixed: atrous VGG-16, OS 8.
Seeds: 3 at the tiny scale, 1 at the paper scale.

    make ablation-msc           # = bench run ablation-msc
    bench crf-search ablation-msc   # CRF parameters per variant, on the held-out images

Expected at the tiny scale: about 16 min of runs plus 8 min of crf-search on a 2-core CPU
(results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

_DEEPLAB = {"kernel_size": 4, "rate": 4, "fc_channels": 4096}
_LARGEFOV = {"kernel_size": 3, "rate": 12, "fc_channels": 1024}

EXPERIMENT = Experiment(
    name="ablation-msc",
    description="v1 DeepLab / -MSc / -7x7 / -LargeFOV / -MSc-LargeFOV, before/after CRF [v1 Table 1]",
    version="v1",
    paper_table="DeepLab v1 Table 1(a) (MSc / CRF)",
    scientific_knobs=("msc", "kernel_size", "rate", "fc_channels"),
    fixed_knobs={"backbone": "vgg16"},
    crf=True,
    variants=(
        Variant("deeplab", {**_DEEPLAB, "msc": False}, paper_miou=59.80, paper_miou_crf=63.74),
        Variant("msc", {**_DEEPLAB, "msc": True}, paper_miou=61.30, paper_miou_crf=65.21),
        Variant("7x7", {"kernel_size": 7, "rate": 4, "fc_channels": 4096, "msc": False},
                paper_miou=64.38, paper_miou_crf=67.64),
        Variant("largefov", {**_LARGEFOV, "msc": False}, paper_miou=62.25, paper_miou_crf=67.64),
        Variant("msc-largefov", {**_LARGEFOV, "msc": True}, paper_miou=64.21, paper_miou_crf=68.70),
    ),
    findings=(
        # v1 Table 1(a), before CRF: DeepLab-MSc 61.30 > DeepLab 59.80, MSc-LargeFOV 64.21 > LargeFOV 62.25
        Finding("v1 Table 1(a)",
                "multi-scale features help: DeepLab-MSc > DeepLab, DeepLab-MSc-LargeFOV > DeepLab-LargeFOV",
                (Better("msc", "deeplab"), Better("msc-largefov", "largefov"))),
    ),
)
