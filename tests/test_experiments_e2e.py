"""Every registered experiment runs end to end, the moment it is registered (STYLE.md: a smoke mode
CI runs for every experiment): `bench run NAME --smoke` on its first two variants, one seed, into a
temporary results dir, writes two ok records and the tables. --smoke keeps every stage (training,
validation, CRF and trimap where the experiment has them, pictures, fps, GFLOPs, tables, plots) but
on 2 steps, 8 validation images and 2 timed forwards, so the whole set stays cheap on 2 cores.

Also the W&B sweep YAML of `bench sweep`: its grid is the experiment's variants x seeds, and the
command wandb's agent builds from it is a valid `bench run` of one (variant, seed).
"""

import json

import pytest
import yaml

from bench.cli import build_parser, main
from bench.registry import experiments

NAMES = list(experiments())


@pytest.mark.parametrize("name", NAMES)
def test_every_experiment_runs_end_to_end(name, tmp_path, capsys):
    variants = experiments()[name].variant_names()[:2]
    code = main(["run", name, "--smoke", "--max-steps", "2", "--seeds", "1", "--variants", ",".join(variants),
                 "--wandb", "disabled", "--results-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    records = sorted((tmp_path / "runs" / name).glob("*/seed-*.json"))
    assert len(records) == 2
    for path in records:
        record = json.loads(path.read_text())
        assert record["status"] == "ok", record.get("error")
        assert record["variant"] in variants and record["seed"] == 0
        assert record["config"]["protocol"]["num_val"] == 8 and record["config"]["protocol"]["max_steps"] == 2
        assert 0.0 <= record["metrics"]["miou"] <= 100.0
    for suffix in (".csv", ".md", ".tex", ".png", "-per-class.png"):
        assert (tmp_path / f"{name}{suffix}").is_file(), suffix
    assert (tmp_path / f"{name}.md").read_text() in out


def agent_command(config: dict, params: dict) -> list[str]:
    """The command line wandb's agent runs for one trial (wandb_agent.Agent._command_run)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    sweep_vars.update(interpreter=["python"], program=[config["program"]], env=["/usr/bin/env"])
    command = []
    for chunk in create_sweep_command(config["command"]):
        chunk = str(chunk)
        command += sweep_vars.get(chunk[2:-1]) or [] if chunk.startswith("${") else [chunk]
    return command


@pytest.fixture(scope="module")
def sweep_yaml(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "ablation-aspp.yaml"
    assert main(["sweep", "ablation-aspp", "--out", str(out)]) == 0
    return yaml.safe_load(out.read_text())


def test_sweep_grid_is_the_experiments_variants_times_seeds(sweep_yaml):
    assert sweep_yaml["method"] == "grid"
    assert sweep_yaml["metric"] == {"name": "miou", "goal": "maximize"}
    params = sweep_yaml["parameters"]
    assert set(params) == {"variants", "seed"}
    assert params["variants"]["values"] == experiments()["ablation-aspp"].variant_names()
    assert params["seed"]["values"] == [0, 1, 2]  # the tiny scale's 3 seeds
    assert "${args}" in sweep_yaml["command"] and sweep_yaml["program"]


def test_sweep_command_is_one_bench_run_per_variant_and_seed(sweep_yaml, tmp_path, capsys):
    command = agent_command(sweep_yaml, {"variants": "aspp-s", "seed": 1})
    assert command[:4] == ["/usr/bin/env", "python", "-m", "bench"]
    assert command[-2:] == ["--variants=aspp-s", "--seed=1"]
    argv = command[4:]
    args = build_parser().parse_args(argv)
    assert (args.command, args.experiment, args.variants, args.seed, args.seeds) == \
        ("run", "ablation-aspp", ["aspp-s"], 1, None)
    # run it as the agent would, made cheap and kept offline
    code = main([*argv, "--smoke", "--wandb", "disabled", "--results-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err[-3000:]
    assert [p.relative_to(tmp_path / "runs").as_posix() for p in (tmp_path / "runs").rglob("*.json")] == \
        ["ablation-aspp/aspp-s/seed-1.json"]


def test_seed_and_seeds_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "ablation-aspp", "--seed", "1", "--seeds", "2"])
    assert exit_info.value.code == 2
