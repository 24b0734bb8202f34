"""ablation-dilation: the fc6 atrous rate of a 3x3 fc6, from 1 (no atrous) to 24, DeepLab v1.

Paper: the field-of-view trade-off of DeepLab v1 Sec. 4.1 / Table 2 and v2 Sec. 3.1: a larger rate
enlarges the field of view at no cost in parameters. Only rate 12 (DeepLab-LargeFOV) has a published
number; the other rows are the sweep the papers argue from. Scientific knob: ``rate``. Fixed:
atrous VGG-16, OS 8, 3x3 fc6 with 1024 channels (the LargeFOV head).
Rate 1 against rate 12 is issue 4's evidence that the synthetic data needs field of view.

Tiny scale: 3000 training steps, not the scale's 600. At 600 steps from scratch every rate is
still learning colour (val mIoU 7-29 over rates and seeds) and the rate made no difference beyond
seed noise. A learning curve (seed 0, val mIoU at 600 / 1000 / 2000 / 3000 steps of one 3000-step
run) shows the field of view starting to matter once the network learns shape:
rate 1: 11.0 / 17.0 / 30.8 / 50.9, rate 12: 9.5 / 16.0 / 42.8 / 62.2.

    make ablation-dilation      # = bench run ablation-dilation (7 rates x 3 seeds, ~80 min on 2 cores)
"""

from bench.registry import Experiment, Variant

EXPERIMENT = Experiment(
    name="ablation-dilation",
    description="v1 3x3 fc6 atrous rate 1, 2, 4, 8, 12, 16, 24 [v1/v2 field-of-view trade-off]",
    version="v1",
    paper_table="DeepLab v1 Table 2 / v2 Sec. 3.1 (rate 12 = LargeFOV), VOC 2012 val",
    scientific_knobs=("rate",),
    fixed_knobs={"backbone": "vgg16", "kernel_size": 3, "fc_channels": 1024},
    tiny_max_steps=3000,
    variants=tuple(
        Variant(f"r{rate}", {"rate": rate}, paper_miou=62.25 if rate == 12 else None)
        for rate in (1, 2, 4, 8, 12, 16, 24)
    ),
)
