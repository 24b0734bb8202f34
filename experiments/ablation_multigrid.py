"""ablation-multigrid: the unit rates (r1, r2, r3) inside block4 of v3's ResNet-101.

Paper: DeepLab v3 (arXiv'17), Table 3 "multigrid" (ResNet-101, OS 16), block4 column (no cascaded
blocks): (1,1,1) 68.39, (1,2,1) 70.23, (2,2,2) 71.45, (1,2,4) 73.45. The paper's table has no
ASPP; our v3 keeps its ASPP head, so at the paper scale the comparison is of multigrid under ASPP,
and the paper column is the reference trend.
Scientific knob: ``multigrid``. Fixed: ResNet-101, OS 16, ASPP (6, 12, 18) with image pooling.
Seeds: 3 at the tiny scale, 1 at the paper scale.

    make ablation-multigrid     # = bench run ablation-multigrid

Expected at the tiny scale: about 11 min of runs on a 2-core CPU (results/README.md).
"""

from bench.registry import Experiment, Variant
from bench.scorecard import Better, Finding

_PAPER_BLOCK4 = {(1, 1, 1): 68.39, (1, 2, 1): 70.23, (2, 2, 2): 71.45, (1, 2, 4): 73.45}

EXPERIMENT = Experiment(
    name="ablation-multigrid",
    description="v3 block4 multigrid (1,1,1) / (1,2,1) / (2,2,2) / (1,2,4) [v3 Table 3]",
    version="v3",
    paper_table="DeepLab v3 Table 3 (multigrid, ResNet-101, OS 16, block4)",
    scientific_knobs=("multigrid",),
    fixed_knobs={"backbone": "resnet101", "output_stride": 16},
    notes="paper numbers are without ASPP (block4 column); ours keep the ASPP head",
    variants=tuple(
        Variant("mg-" + "".join(map(str, grid)), {"multigrid": grid}, paper_miou=miou)
        for grid, miou in _PAPER_BLOCK4.items()
    ),
    findings=(
        # v3 Table 3, block4: (1, 2, 4) 73.45 and (1, 2, 1) 70.23 > (1, 1, 1) 68.39
        Finding("v3 Table 3", "multigrid (1, 2, 4) and (1, 2, 1) > (1, 1, 1)",
                (Better("mg-124", "mg-111"), Better("mg-121", "mg-111"))),
    ),
)
