"""ablation-aspp: LargeFOV vs ASPP-S vs ASPP-L on VGG-16, before and after CRF.

Paper: DeepLab v2 (TPAMI'17), Table 3 "ASPP, VGG-16", PASCAL VOC 2012 val.
Scientific knob: ``head`` (one fc6 branch at rate 12, or four branches at rates 2/4/8/12 or
6/12/18/24, logits summed). Fixed: VGG-16 backbone, OS 8, fc6/fc7 1024 channels, the v2 training
recipe of the scale. Seeds: 3 at the tiny scale, 1 at the paper scale.

    make ablation-aspp          # = bench run ablation-aspp (tiny, synthetic data, 3 seeds)
    bench crf-search ablation-aspp   # CRF parameters per variant, on the held-out images
    bench run ablation-aspp --scale paper --data voc:/data/VOCdevkit   # the paper's protocol

Expected at the tiny scale: about 10 min of runs plus 5 min of crf-search on a 2-core CPU
(results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-aspp",
    description="v2 VGG-16 heads: LargeFOV vs ASPP-S vs ASPP-L, before/after CRF [v2 Table 3]",
    version="v2",
    paper_table="DeepLab v2 Table 3 (ASPP, VGG-16)",
    scientific_knobs=("head",),
    fixed_knobs={"backbone": "vgg16"},
    crf=True,
    variants=(
        Variant("largefov", {"head": "largefov"}, paper_miou=65.76, paper_miou_crf=69.84),
        Variant("aspp-s", {"head": "aspp-s"}, paper_miou=66.98, paper_miou_crf=69.73),
        Variant("aspp-l", {"head": "aspp-l"}, paper_miou=68.96, paper_miou_crf=71.57),
    ),
    findings=(
        # v2 Table 3, before CRF: ASPP-L 68.96 > ASPP-S 66.98 > LargeFOV 65.76
        Finding("v2 Table 3", "ASPP-L > ASPP-S > LargeFOV",
                (Better("aspp-l", "aspp-s"), Better("aspp-s", "largefov"))),
    ),
)
