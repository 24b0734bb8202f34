"""The experiment registry: every experiment's variants are valid models, names are unique."""

import pytest

from bench.errors import BenchError
from bench.models import make_config
from bench.registry import Experiment, Variant, experiments, get_experiment, register


def test_ablation_aspp_declares_the_v2_vgg16_table():
    exp = get_experiment("ablation-aspp")
    assert exp.variant_names() == ["largefov", "aspp-s", "aspp-l"]
    assert exp.crf
    # v2 Table 3: before / after CRF
    assert [(v.paper_miou, v.paper_miou_crf) for v in exp.variants] == [
        (65.76, 69.84), (66.98, 69.73), (68.96, 71.57)]


@pytest.mark.parametrize("name", sorted(experiments()))
def test_every_variant_of_every_experiment_is_a_valid_model_config(name):
    exp = get_experiment(name)
    for variant in exp.variants:
        make_config(exp.version_of(variant), exp.knobs_of(variant))


def test_unknown_experiment_names_the_valid_ones():
    with pytest.raises(BenchError, match="unknown experiment 'nope'; valid: .*ablation-aspp"):
        get_experiment("nope")


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(BenchError, match="valid: largefov, aspp-s, aspp-l"):
        get_experiment("ablation-aspp").select(["aspp-xl"])


def test_duplicate_names_are_rejected():
    exp = get_experiment("ablation-aspp")
    with pytest.raises(ValueError, match="registered twice"):
        register(exp)
    with pytest.raises(ValueError, match="variant 'a' twice"):
        Experiment(name="x", description="", version="v2", paper_table="", scientific_knobs=(),
                   variants=(Variant("a"), Variant("a")))


def _all_variants():
    return [(name, v.name) for name, exp in sorted(experiments().items()) for v in exp.variants]


@pytest.mark.parametrize("name,variant", _all_variants())
def test_every_registered_variant_trains_forward_and_backward_on_an_odd_size(name, variant):
    """Each variant of each experiment, as the tiny scale builds it: input-sized finite logits,
    a gradient for every parameter (timm-style: tested the moment it is registered)."""
    import torch

    from bench.models import build_model
    from bench.registry import resolve_variant

    exp = get_experiment(name)
    version, _, knobs = resolve_variant(exp, exp.select([variant])[0], "tiny")
    torch.manual_seed(0)
    model = build_model(version, **{**knobs, "width": min(knobs["width"], 0.125)}).train()
    x = torch.randn(2, 3, 65, 97)
    out = model(x)
    logits = out["out"] if isinstance(out, dict) else out
    assert logits.shape == (2, knobs["num_classes"], 65, 97)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def _makefile() -> str:
    from pathlib import Path

    return Path(__file__).resolve().parents[1].joinpath("Makefile").read_text()


def _makefile_experiments() -> list[str]:
    import re

    text = _makefile()
    block = re.search(r"^EXPERIMENTS := (.*?)(?<!\\)\n", text, re.S | re.M).group(1)
    return block.replace("\\", " ").split()


def test_the_makefile_has_a_target_for_every_registered_experiment():
    assert sorted(_makefile_experiments()) == sorted(experiments())


def test_the_makefiles_pilot_searches_the_crf_of_every_experiment_that_evaluates_it():
    import re

    listed = re.search(r"^CRF_EXPERIMENTS := (.*)$", _makefile(), re.M).group(1).split()
    assert sorted(listed) == sorted(name for name, e in experiments().items() if e.crf)


def test_all_eleven_experiments_of_the_four_papers_are_registered():
    assert sorted(experiments()) == sorted([
        "ablation-fov", "ablation-kernel", "ablation-dilation", "ablation-msc", "ablation-aspp",
        "ablation-image-pooling", "ablation-multigrid", "ablation-output-stride", "ablation-crf",
        "ablation-decoder", "versions"])


@pytest.mark.parametrize("name", sorted(experiments()))
def test_make_dry_run_of_each_experiment_runs_bench_run(name):
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(["make", "-n", name], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"bench run {name}" in proc.stdout
