"""Data specs (``bench run --data SPEC``), parsed without reading the data or importing the
training stack: ``synthetic``, ``voc:PATH``, ``cityscapes:PATH``."""

from __future__ import annotations

from bench.data import cityscapes, synthetic, voc
from bench.errors import BenchError

VALID_SPECS = "synthetic, voc:PATH, cityscapes:PATH"
_KINDS_WITH_PATH = ("voc", "cityscapes")
# what a table says its numbers were measured on (the evaluation split of each kind)
EVALUATED_ON = {"synthetic": "synthetic data", "voc": "VOC 2012 val", "cityscapes": "Cityscapes val"}


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """'synthetic' -> ('synthetic', None); 'voc:PATH' -> ('voc', PATH); 'cityscapes:PATH' likewise.

    Anything else raises BenchError naming the valid forms. Only the first ':' splits, so a PATH
    may itself contain colons.
    """
    if not isinstance(spec, str):
        raise BenchError(f"data spec must be a string, got {spec!r}; valid: {VALID_SPECS}")
    if spec == "synthetic":
        return "synthetic", None
    kind, sep, path = spec.partition(":")
    if sep and kind in _KINDS_WITH_PATH and path.strip():
        return kind, path
    if kind in _KINDS_WITH_PATH:
        raise BenchError(f"data spec {spec!r} needs a path: {kind}:PATH; valid: {VALID_SPECS}")
    raise BenchError(f"unknown data spec {spec!r}; valid: {VALID_SPECS}")


def num_classes_of(spec: str) -> int:
    """Classes of a data spec (21 synthetic, 21 VOC, 19 Cityscapes), without reading the data."""
    return len(class_names_of(spec))


def class_names_of(spec: str) -> tuple[str, ...]:
    """Class names of a data spec, index = label, without reading the data."""
    kind = parse_data_spec(spec)[0]
    return {"synthetic": synthetic.CLASS_NAMES, "voc": voc.VOC_CLASSES,
            "cityscapes": cityscapes.CITYSCAPES_CLASSES}[kind]


def evaluated_on(spec: str) -> str:
    """What a run of this spec is evaluated on, for table titles: "synthetic data", "VOC 2012 val"."""
    return EVALUATED_ON[parse_data_spec(spec)[0]]
