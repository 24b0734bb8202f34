"""ablation-dilation: the fc6 atrous rate of a 3x3 fc6, from 1 (no atrous) to 24, DeepLab v1.

Paper: the field-of-view trade-off of DeepLab v1 Sec. 4.1 / Table 2 and v2 Sec. 3.1: a larger rate
enlarges the field of view at no cost in parameters. Only rate 12 (DeepLab-LargeFOV) has a
published number before CRF, 62.25 (v1 Table 1(a), repeated in v2 Table 1; v1 Table 2 gives only
its after-CRF 67.64); the other rows are the sweep the papers argue from.
Scientific knob: ``rate``. Fixed: atrous VGG-16, OS 8, 3x3 fc6 with 1024 channels (the LargeFOV
head). Seeds: 3 at the tiny scale, 1 at the paper scale.
Rate 1 against rate 12 is the field-of-view check of docs/synthetic-data.md; results/README.md
reads the table, and results/dilation-3000-steps/ trains those two rows 5x longer.

    make ablation-dilation      # = bench run ablation-dilation

Expected at the tiny scale: about 15 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

EXPERIMENT = Experiment(
    name="ablation-dilation",
    description="v1 3x3 fc6 atrous rate 1, 2, 4, 8, 12, 16, 24 [v1/v2 field-of-view trade-off]",
    version="v1",
    paper_table="DeepLab v1 Table 1(a) / v2 Table 1 (rate 12 = LargeFOV)",
    scientific_knobs=("rate",),
    fixed_knobs={"backbone": "vgg16", "kernel_size": 3, "fc_channels": 1024},
    variants=tuple(
        # rate 12 is DeepLab-LargeFOV: 62.25 before CRF, v1 Table 1(a) / v2 Table 1
        Variant(f"r{rate}", {"rate": rate}, paper_miou=62.25 if rate == 12 else None)
        for rate in (1, 2, 4, 8, 12, 16, 24)
    ),
    findings=(
        # v1 Sec. 4.1 / v2 Sec. 3.1: a larger rate enlarges the field of view, which helps (LargeFOV)
        Finding("v1/v2 field of view", "rate 12 (LargeFOV) > rate 1 (no atrous)", (Better("r12", "r1"),)),
    ),
)
