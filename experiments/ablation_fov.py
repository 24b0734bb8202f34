"""ablation-fov: the fc6 field of view of DeepLab v1 - kernel size, atrous rate and width.

Paper: DeepLab v1 (ICLR'15), Table 2 "field of view", PASCAL VOC 2012 val, all rows with CRF.
Scientific knobs: fc6 ``kernel_size``, ``rate`` (the paper's "input stride") and ``fc_channels``
(4096 in the first three rows, 1024 for LargeFOV). Fixed: atrous VGG-16, OS 8. v1 Table 2 reports
after-CRF numbers only; the before-CRF numbers come from v2 Table 1, v2's copy of this table with
both columns (three of them also in v1 Table 1(a), MSc/CRF). Seeds: 3 at the tiny scale, 1 at the
paper scale.

    make ablation-fov           # = bench run ablation-fov
    bench crf-search ablation-fov   # CRF parameters per variant, on the held-out images
    bench describe ablation-fov --scale paper   # 134.3M / 65.1M / 65.1M / 20.5M params, RF 224/128/224/224

Expected at the tiny scale: about 13 min of runs plus 7 min of crf-search on a 2-core CPU
(results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-fov",
    description="v1 fc6 field of view: 7x7 r4 / 4x4 r4 / 4x4 r8 / LargeFOV 3x3 r12 [v1 Table 2]",
    version="v1",
    paper_table="DeepLab v1 Table 2 / v2 Table 1 (field of view)",
    scientific_knobs=("kernel_size", "rate", "fc_channels"),
    fixed_knobs={"backbone": "vgg16"},
    crf=True,
    variants=(
        # paper_miou (before CRF): v2 Table 1 for all four rows (also v1 Table 1(a) for all but
        # crf-4x4); paper_miou_crf: v1 Table 2 / v2 Table 1
        Variant("crf-7x7", {"kernel_size": 7, "rate": 4, "fc_channels": 4096},
                paper_miou=64.38, paper_miou_crf=67.64),
        Variant("crf", {"kernel_size": 4, "rate": 4, "fc_channels": 4096},
                paper_miou=59.80, paper_miou_crf=63.74),
        Variant("crf-4x4", {"kernel_size": 4, "rate": 8, "fc_channels": 4096},
                paper_miou=63.41, paper_miou_crf=67.14),
        Variant("crf-largefov", {"kernel_size": 3, "rate": 12, "fc_channels": 1024},
                paper_miou=62.25, paper_miou_crf=67.64),
    ),
    findings=(
        # v1 Table 2, after CRF: the 224 px rows 67.64 / 67.14 / 67.64 > the 128 px DeepLab-CRF 63.74
        Finding("v1 Table 2", "after CRF: a 224 px field of view (7x7 r4, 4x4 r8, LargeFOV) beats 128 px (4x4 r4)",
                (Better("crf-7x7", "crf", "miou_crf"), Better("crf-4x4", "crf", "miou_crf"),
                 Better("crf-largefov", "crf", "miou_crf"))),
    ),
)
