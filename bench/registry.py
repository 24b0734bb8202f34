"""The experiment registry: a plain mapping from name to Experiment, filled by experiments/.

Each module in the ``experiments`` package defines ``EXPERIMENT = Experiment(...)``; loading the
registry imports them all. A duplicate name is an error, an unknown one a BenchError that lists
the valid names.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError


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

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"experiment {self.name!r} declares variant {duplicates[0]!r} twice")

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
