"""The DeepLab model zoo: plain nn.Modules, no Lightning, W&B or registry imports.

``build_model(version, **knobs)`` is the one entry point; knobs are named after the papers.
``load_backbone_weights(model, path_or_state_dict)`` loads ImageNet weights (bench.models.weights);
``receptive_field(model_or_config)`` gives v1/v2's fc6 field of view (bench.models.receptive_field).
"""

from __future__ import annotations

from bench.models.build import build_model
from bench.models.config import make_config
from bench.models.decoder import DeepLabV3Plus
from bench.models.deeplab import DeepLab
from bench.models.receptive_field import receptive_field
from bench.models.weights import load_backbone_weights

__all__ = ["build_model", "make_config", "DeepLab", "DeepLabV3Plus", "load_backbone_weights", "receptive_field"]
