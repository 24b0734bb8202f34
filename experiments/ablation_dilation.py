"""ablation-dilation: the fc6 atrous rate of a 3x3 fc6, from 1 (no atrous) to 24, DeepLab v1.

Paper: the field-of-view trade-off of DeepLab v1 Sec. 4.1 / Table 2 and v2 Sec. 3.1: a larger rate
enlarges the field of view at no cost in parameters. Only rate 12 (DeepLab-LargeFOV) has a published
number; the other rows are the sweep the papers argue from. Scientific knob: ``rate``. Fixed:
atrous VGG-16, OS 8, 3x3 fc6 with 1024 channels (the LargeFOV head).
Rate 1 against rate 12 is issue 4's evidence that the synthetic data needs field of view.

At the tiny scale (600 steps, 128 px) no rate beats rate 1 beyond seed noise. 600 steps leaves
every rate still learning colour (7-29 mIoU); trained 5x longer, rate 1 and rate 12 both learn
shape (about 62 mIoU) and still tie (results/dilation-3000-steps/, with the command and the
learning curves). What remains is structural: the fc6 input is 16x16, so at half the positions
along each axis both outer taps of a rate-12 3x3 fall in the padding, where the paper's 321 px
crops give a 41x41 map.

    make ablation-dilation      # = bench run ablation-dilation
"""

from bench.registry import Experiment, Variant

EXPERIMENT = Experiment(
    name="ablation-dilation",
    description="v1 3x3 fc6 atrous rate 1, 2, 4, 8, 12, 16, 24 [v1/v2 field-of-view trade-off]",
    version="v1",
    paper_table="DeepLab v1 Table 2 / v2 Sec. 3.1 (rate 12 = LargeFOV), VOC 2012 val",
    scientific_knobs=("rate",),
    fixed_knobs={"backbone": "vgg16", "kernel_size": 3, "fc_channels": 1024},
    variants=tuple(
        Variant(f"r{rate}", {"rate": rate}, paper_miou=62.25 if rate == 12 else None)
        for rate in (1, 2, 4, 8, 12, 16, 24)
    ),
)
