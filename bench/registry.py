"""The experiment registry: a plain mapping from name to Experiment, filled by experiments/.

Each module in the ``experiments`` package defines ``EXPERIMENT = Experiment(...)``; loading the
registry imports them all. A duplicate name is an error, an unknown one a BenchError that lists
the valid names. Beside the knobs lives the rule that merges them into a run's model knobs
(``resolve_variant``: scale, then experiment, then variant) and checks its test-time strategy.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from bench.data.spec import num_classes_of, parse_data_spec
from bench.errors import BenchError
from bench.evaluation.inference import Inference
from bench.models.config import make_config
from bench.recipes import protocol_for
from bench.run_config import Protocol


@dataclass(frozen=True)
class Variant:
    """One row of a paper table: a name, the knobs that make it, and the paper's numbers."""

    name: str
    knobs: dict[str, Any] = field(default_factory=dict)
    paper_miou: float | None = None       # before CRF, percent
    paper_miou_crf: float | None = None   # after CRF, percent
    version: str | None = None            # defaults to the experiment's version
    inference: dict[str, Any] = field(default_factory=dict)  # test-time scales / flip / output_stride


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str          # one line, shown by `bench list`
    version: str
    variants: tuple[Variant, ...]
    paper_table: str          # which table the paper scale reproduces
    scientific_knobs: tuple[str, ...]  # what is compared; everything else is held fixed
    fixed_knobs: dict[str, Any] = field(default_factory=dict)
    crf: bool = False         # whether the paper reports mIoU after CRF
    notes: str = ""
    paper_data: str = "VOC 2012 val"  # what the paper's numbers were measured on
    findings: tuple[Any, ...] = ()    # the paper's claims these rows test (bench.scorecard.Finding)

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"experiment {self.name!r} declares variant {duplicates[0]!r} twice")
        for finding in self.findings:
            unknown = [n for n in finding.variants if n not in names]
            if unknown:
                raise ValueError(f"experiment {self.name!r}: finding {finding.claim!r} names variant "
                                 f"{unknown[0]!r}, which it does not declare; valid: {', '.join(names)}")

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def select(self, names: list[str] | None) -> list[Variant]:
        """The variants named (all when None), in the experiment's order."""
        if not names:
            return list(self.variants)
        unknown = [n for n in names if n not in self.variant_names()]
        if unknown:
            raise BenchError(f"unknown variant {unknown[0]!r} of {self.name}; "
                             f"valid: {', '.join(self.variant_names())}")
        return [v for v in self.variants if v.name in names]

    def knobs_of(self, variant: Variant) -> dict[str, Any]:
        return {**self.fixed_knobs, **variant.knobs}

    def version_of(self, variant: Variant) -> str:
        return variant.version or self.version

    def paper_numbers(self) -> dict[str, dict[str, float | None]]:
        """variant -> its published numbers, as the tables put them beside ours."""
        return {v.name: {"paper_miou": v.paper_miou, "paper_miou_crf": v.paper_miou_crf} for v in self.variants}


# ---------------------------------------------------------------- the knob-merge rule


def resolve_variant(experiment: Experiment, variant: Variant, scale: str,
                    data: str = "synthetic") -> tuple[str, Protocol, dict[str, Any]]:
    """(version, protocol, validated model knobs) of a variant at a scale: the scale's width and
    model knobs, overridden by the experiment's fixed knobs and the variant's own; num_classes
    from the data spec (21 synthetic and VOC, 19 Cityscapes); the protocol from the scale, the
    version, the dataset and the backbone (bench.recipes)."""
    version = experiment.version_of(variant)
    # v2 trains VGG-16 and ResNet with different recipes; Cityscapes has its own (bench.recipes)
    backbone = experiment.knobs_of(variant).get("backbone")
    protocol = protocol_for(scale, version, parse_data_spec(data)[0], backbone)
    knobs = {"width": protocol.width, "num_classes": num_classes_of(data), **protocol.model_knobs,
             **experiment.knobs_of(variant)}
    try:
        make_config(version, knobs)
    except ValueError as err:
        raise BenchError(f"{experiment.name}/{variant.name}: {err}") from err
    return version, protocol, knobs


def check_inference(experiment: Experiment, variant: Variant, version: str, knobs: dict[str, Any],
                    inference: dict[str, Any]) -> dict[str, Any]:
    """The variant's test-time strategy, validated (an eval output stride needs a v3/v3+ model);
    {} for the default (single scale, no flip, the training output stride)."""
    try:
        strategy = Inference(**inference)
        if strategy.output_stride is not None:
            make_config(version, {**knobs, "output_stride": strategy.output_stride})
    except (TypeError, ValueError) as err:
        raise BenchError(f"{experiment.name}/{variant.name}: inference {inference}: {err}") from err
    return strategy.to_dict() if not strategy == Inference() else {}


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is registered twice")
    _REGISTRY[experiment.name] = experiment
    return experiment


def experiments() -> dict[str, Experiment]:
    """Every registered experiment, importing the experiments package on first use."""
    if not _REGISTRY:
        import experiments as package

        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if hasattr(module, "EXPERIMENT"):
                register(module.EXPERIMENT)
    return _REGISTRY


def get_experiment(name: str) -> Experiment:
    registry = experiments()
    if name not in registry:
        raise BenchError(f"unknown experiment {name!r}; valid: {', '.join(registry)}")
    return registry[name]
