"""The `bench` command: list, run and table the DeepLab ablations.

Errors in the user's input print one line on stderr and exit with code 2 (`--debug` shows the
traceback); a sweep with failed runs exits with code 1 after writing its tables.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from bench.atomic import atomic_write
from bench.data.stats import report as data_stats_report
from bench.errors import BenchError
from bench.evaluation.score import score_dirs
from bench.evaluation.speed import count_gflops, count_params_m
from bench.models import build_model, receptive_field
from bench.registry import experiments, get_experiment, resolve_variant
from bench.report import write_document
from bench.results_dir import ResultsDir
from bench.scorecard import scorecard, to_markdown
from bench.recipes import protocol_for, protocols_markdown
from bench.run_config import SCALES
from bench.tables import write_tables

DEFAULT_RESULTS = Path("results")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other bad input (the usage stays under --help)."""

    def error(self, message: str):
        self.exit(2, f"bench: error: {message}; see `{self.prog} --help`\n")


def _variants(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _scales(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must be numbers separated by commas, got {text!r}") from None


def _inference(args) -> dict:
    """Only the test-time options given on the command line; they override the experiment's."""
    given = {"scales": args.eval_scales, "flip": args.eval_flip or None, "output_stride": args.eval_output_stride}
    return {k: v for k, v in given.items() if v is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bench", description="Rerun the DeepLab papers' ablations.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="the experiments, one line each")

    run = sub.add_parser("run", help="train and evaluate every variant x seed, then write the tables")
    run.add_argument("experiment")
    run.add_argument("--scale", default="tiny", choices=SCALES)
    run.add_argument("--data", default="synthetic", help="synthetic (default), voc:PATH or cityscapes:PATH")
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the scale's, 3 at tiny)")
    seeds.add_argument("--seed", type=int, default=None, metavar="K",
                       help="run seed K alone (one trial of a W&B sweep, see `bench sweep`)")
    run.add_argument("--variants", type=_variants, default=None, help="comma-separated subset, e.g. largefov,aspp-l")
    run.add_argument("--max-steps", type=int, default=None, help="override the scale's training steps")
    run.add_argument("--lr", type=float, default=None, metavar="LR",
                     help="override the scale's base learning rate (recorded in the config)")
    run.add_argument("--crop-size", type=int, default=None, metavar="PX",
                     help="override the scale's training crop; on synthetic data the image size, so "
                          "validation too (recorded in the config; fps stays at the scale's size). Give it "
                          "its own --results-dir: a results dir's CRF search was made at its crop")
    run.add_argument("--data-seed", type=int, default=None, metavar="S",
                     help="draw the synthetic data set with seed S (default 0, the committed results'); "
                          "pilot on another seed than the results you report")
    run.add_argument("--num-val", type=int, default=None, metavar="N",
                     help="evaluate on the first N validation images (recorded in the config)")
    run.add_argument("--val-every", type=int, default=None, metavar="N",
                     help="also validate every N training steps: a learning curve in the record, "
                          "W&B and EXPERIMENT-curve.png (training is unchanged)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (bench plan: recipe, weights, cost, time estimate) and train nothing")
    run.add_argument("--rates-dir", type=Path, default=None, help="with --dry-run: as for bench plan")
    run.add_argument("--smoke", action="store_true",
                     help="check that every stage runs: 2 steps, 8 val images, 2 fps iterations (numbers meaningless)")
    run.add_argument("--wandb", default=None, choices=("online", "offline", "disabled"),
                     help="default: online with WANDB_API_KEY set, else offline")
    run.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    run.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    run.add_argument("--amp", action="store_true",
                     help="bf16 mixed precision for training, evaluation and fps (Lightning 'bf16-mixed')")
    run.add_argument("--devices", type=int, default=1, metavar="N",
                     help="devices per node for each run (DDP when devices x nodes > 1; the protocol's "
                          "batch is split over them)")
    run.add_argument("--num-nodes", type=int, default=1, metavar="M", help="nodes for each run (DDP)")
    run.add_argument("--launcher", default="local", choices=("local", "slurm"),
                     help="local: run here one after another; slurm: one job per variant x seed (submitit)")
    run.add_argument("--no-wait", action="store_true",
                     help="with --launcher slurm: print the job ids and return; `bench table` later")
    run.add_argument("--slurm-partition", default=None)
    run.add_argument("--slurm-account", default=None)
    run.add_argument("--slurm-time", type=int, default=240, metavar="MINUTES", help="time limit per job")
    run.add_argument("--slurm-gpus-per-node", type=int, default=None, metavar="N",
                     help="default: --devices (0 with --accelerator cpu)")
    run.add_argument("--slurm-cpus-per-task", type=int, default=None, metavar="N")
    run.add_argument("--eval-scales", type=_scales, default=None, metavar="S,S,...",
                     help="multi-scale test inputs, probabilities averaged (v3: 0.5,0.75,1,1.25,1.5,1.75)")
    run.add_argument("--eval-flip", action="store_true", help="add left-right flipped inputs at test time")
    run.add_argument("--eval-output-stride", type=int, default=None, choices=(8, 16, 32),
                     help="evaluate v3/v3+ at another output stride than training's (v3: train 16, eval 8)")
    run.add_argument("--backbone-weights", default=None, metavar="PATH",
                     help="trunk weights to start from: absent = the scale's (paper: ImageNet via torchvision/timm, "
                          "tiny: from scratch); none = from scratch; vgg16=PATH,resnet101=none = per backbone "
                          "(vgg16, resnet50, resnet101, xception65)")

    plan = sub.add_parser("plan", help="what a run would cost, before any GPU is spent: per run the recipe, "
                                       "the weights it starts from, images, FLOPs and an estimated time")
    plan.add_argument("experiment")
    plan.add_argument("--scale", default="tiny", choices=SCALES)
    plan.add_argument("--data", default="synthetic", help="synthetic (default), voc:PATH or cityscapes:PATH")
    plan.add_argument("--variants", type=_variants, default=None)
    plan.add_argument("--seeds", type=int, default=None)
    plan.add_argument("--devices", type=int, default=1, metavar="N",
                      help="devices per node for each run (time divided by devices x nodes)")
    plan.add_argument("--num-nodes", type=int, default=1, metavar="M")
    plan.add_argument("--max-steps", type=int, default=None, help="as for bench run")
    plan.add_argument("--backbone-weights", default=None, metavar="SPEC", help="as for bench run")
    plan.add_argument("--crop-size", type=int, default=None, metavar="PX", help="as for bench run")
    plan.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS,
                      help="the sweep's results dir: runs recorded there are skipped, as bench run skips them")
    plan.add_argument("--rates-dir", type=Path, default=None,
                      help="where bench.csv / bench-gpu.csv (the measured rates) are (default: ./results, "
                           "else the repository's results/)")

    describe = sub.add_parser("describe", help="per variant, without training: params, GFLOPs, receptive field, knobs")
    describe.add_argument("experiment")
    describe.add_argument("--scale", default="tiny", choices=SCALES)
    describe.add_argument("--format", default="table", choices=("table", "csv"))

    table = sub.add_parser("table", help="rebuild an experiment's tables from its records and print one")
    table.add_argument("experiment", nargs="?", default=None)
    table.add_argument("--all", action="store_true",
                       help="every experiment with records, and DIR/tables.tex that \\inputs their .tex")
    table.add_argument("--format", default="markdown", choices=("markdown", "latex", "csv"))
    table.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    sweep = sub.add_parser("sweep", help="write a W&B sweep YAML: one agent trial per (variant, seed)")
    sweep.add_argument("experiment")
    sweep.add_argument("--out", type=Path, default=None, help="file to write (default: print it)")
    sweep.add_argument("--scale", default="tiny", choices=SCALES)
    sweep.add_argument("--data", default="synthetic")
    sweep.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 in the grid (default: the scale's)")
    sweep.add_argument("--variants", type=_variants, default=None)
    search = sub.add_parser("crf-search", help="cross-validate the dense CRF on held-out images, re-score after-CRF mIoU")
    search.add_argument("experiment")
    search.add_argument("--variants", type=_variants, default=None)
    search.add_argument("--images", type=int, default=100, help="held-out images to search on (papers: 100)")
    search.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    card = sub.add_parser("scorecard", help="how many of the papers' findings our tables reproduce "
                                            "(a Markdown section: one row per finding, then the total)")
    card.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS, metavar="DIR")
    card.add_argument("--out", type=Path, default=None, metavar="FILE",
                      help="write the section to FILE (default: print it)")
    pretrain = sub.add_parser("pretrain", help="the tiny scale's ImageNet: pretrain one trunk on synthetic object "
                                               "classification (bench/pretrain.py), write its file and record")
    pretrain.add_argument("backbone", help="vgg16, resnet50, resnet101 or xception65")
    pretrain.add_argument("--scale", default="tiny", choices=("tiny",),
                          help="the paper scale starts from ImageNet's weights (bench/trunks.py)")
    pretrain.add_argument("--out", type=Path, default=None,
                          help="folder for BACKBONE.pt and BACKBONE.json (default: the shipped set, trunks/tiny-v1)")
    pretrain.add_argument("--steps", type=int, default=None,
                          help="override the recipe's steps (a quick check; needs --out)")
    score = sub.add_parser("score", help="mIoU of label PNGs against ground-truth label PNGs (same stems)")
    score.add_argument("pred_dir", type=Path)
    score.add_argument("gt_dir", type=Path)
    score.add_argument("--num-classes", type=int, required=True)
    sub.add_parser("protocols", help="every scale's training recipe per version and dataset, with sources "
                                     "(Markdown; docs/protocols.md is this)")
    stats = sub.add_parser("data-stats", help="class frequencies and object sizes of the synthetic data")
    stats.add_argument("--split", default="train")
    stats.add_argument("--images", type=int, default=1000)
    stats.add_argument("--size", type=int, default=128)
    stats.add_argument("--seed", type=int, default=0)
    add_data_parser(sub)
    return parser


def add_data_parser(sub) -> None:
    """bench data prepare voc|cityscapes ROOT [...], bench data check SPEC."""
    data = sub.add_parser("data", help="download and prepare VOC 2012 + SBD trainaug or Cityscapes, or check a tree")
    action = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    prepare = action.add_parser("prepare", help="download (VOC + SBD) or extract (Cityscapes) into ROOT, then check it")
    prepare.add_argument("dataset", choices=("voc", "cityscapes"))
    prepare.add_argument("root", type=Path, help="voc: ROOT/VOC2012 is made; cityscapes: the folder with the zips")
    source = prepare.add_mutually_exclusive_group()
    source.add_argument("--mirror", metavar="URL", help="voc: fetch the official file names from this base URL")
    source.add_argument("--sources", type=Path, metavar="FILE",
                        help='voc: JSON {"voc2012": {"url": URL, "md5": MD5}, "sbd": {...}} naming other archives')
    prepare.add_argument("--keep-downloads", action="store_true", help="voc: keep the archives in ROOT/downloads")
    check = action.add_parser("check", help="every list, count, image and label file of a tree; one line per problem")
    check.add_argument("spec", help="voc:PATH or cityscapes:PATH")


def cmd_protocols(args) -> int:
    print(protocols_markdown(), end="")
    return 0


def cmd_data(args) -> int:
    """Prepare or check a data tree: its problems one line each on stderr (exit 2), else one line."""
    # imported here: downloading and converting need urllib, tarfile and scipy, no other command does
    from bench.data.check import check
    from bench.data.prepare import prepare_cityscapes, prepare_voc

    if args.action == "check":
        spec, report = args.spec, check(args.spec)
    elif args.dataset == "voc":
        spec = f"voc:{args.root}"
        report = prepare_voc(args.root, mirror=args.mirror, sources=args.sources, keep_downloads=args.keep_downloads)
    elif args.mirror or args.sources:
        raise BenchError("--mirror and --sources are for voc; Cityscapes needs a login, so its zips are put in ROOT by hand")
    else:
        spec, report = f"cityscapes:{args.root}", prepare_cityscapes(args.root)
    limit = 50  # 10,582 unreadable trainaug labels are 51 lines, not 10,582
    for line in report.problems[:limit]:
        print(line, file=sys.stderr)
    if len(report.problems) > limit:
        print(f"... and {len(report.problems) - limit:,} more problems", file=sys.stderr)
    if report.problems:
        return 2
    print(f"{spec}: {report.summary}")
    return 0


def cmd_data_stats(args) -> int:
    if args.images < 1 or args.size < 8:
        raise BenchError(f"need --images >= 1 and --size >= 8, got {args.images} and {args.size}")
    print(data_stats_report(seed=args.seed, split=args.split, n=args.images, size=args.size))
    return 0


def cmd_score(args) -> int:
    summary = score_dirs(args.pred_dir, args.gt_dir, args.num_classes)
    print(f"{summary['images']} images, {args.num_classes} classes")
    for c, iou in enumerate(summary["per_class_iou"]):
        print(f"class {c:3d}  IoU " + ("    - (absent)" if iou is None else f"{iou:8.4f}"))
    print(f"pixel accuracy: {summary['pixel_acc']:.4f}")
    print(f"mIoU: {summary['miou']:.4f}")
    return 0


def cmd_list(args) -> int:
    registry = experiments()
    width = max(map(len, registry))
    for name, exp in registry.items():
        print(f"{name:<{width}}  {len(exp.variants)} variants  {exp.description}")
    return 0


def _slurm_options(args):
    from bench.launchers import SlurmOptions  # imported here: it imports Lightning (see cmd_run)

    return SlurmOptions(partition=args.slurm_partition, gpus_per_node=args.slurm_gpus_per_node,
                        time_min=args.slurm_time, account=args.slurm_account,
                        cpus_per_task=args.slurm_cpus_per_task)


def _sweep_options(args) -> dict:
    """What plans a sweep's runs, the same for `bench run` and its --dry-run (and `bench plan`,
    whose parser has the subset that changes a plan)."""
    given = lambda name, default=None: getattr(args, name, default)
    return dict(scale=args.scale, data=args.data, seeds=args.seeds, variants=args.variants,
                max_steps=given("max_steps"), backbone_weights=args.backbone_weights,
                inference=_inference(args) if hasattr(args, "eval_scales") else None, seed=given("seed"),
                num_val=given("num_val"), smoke=given("smoke", False), lr=given("lr"), amp=given("amp", False),
                val_every=given("val_every"), data_seed=given("data_seed"), crop_size=given("crop_size"))


def rates_dir(given: Path | None) -> Path:
    """Where the measured rates (bench.csv, bench-gpu.csv) are: --rates-dir, else ./results, else
    the repository's results/ (a bench installed from a clone, run elsewhere)."""
    if given is not None:
        return given
    repository = Path(__file__).resolve().parents[1] / "results"
    return next((d for d in (DEFAULT_RESULTS, repository) if (d / "bench.csv").is_file()), DEFAULT_RESULTS)


def cmd_plan(args) -> int:
    from bench import distributed, plan, trunks  # imported here: Lightning (see cmd_run), via the sweep's planning
    from bench.runner import is_finished, plan_runs, recorded  # imported here: Lightning (see cmd_run)

    world = args.devices * args.num_nodes
    if world < 1:
        raise BenchError(f"--devices and --num-nodes must be at least 1, got {args.devices} x {args.num_nodes}")
    experiment = get_experiment(args.experiment)
    results = ResultsDir(args.results_dir)
    configs = plan_runs(experiment, results_dir=results, fetch_weights=False, **_sweep_options(args))
    for cfg in configs:  # what the run would refuse, refused now, with the run's own line
        distributed.per_device_batch(cfg.protocol.batch_size, world)
        trunks.check_obtainable(cfg)
    finished = [is_finished(recorded(results, cfg), cfg) for cfg in configs]
    runs = plan.plan(configs, rates_dir(args.rates_dir), devices=world)
    print(plan.render(runs, devices=world, finished=finished))
    return 0


def cmd_run(args) -> int:
    # imported here, not at the top: the training stack (Lightning) takes seconds to import, and
    # `bench table`, `describe` and `list` must not need it
    from bench.run import quiet_libraries
    from bench.runner import run_experiment

    if args.dry_run:
        return cmd_plan(args)
    experiment = get_experiment(args.experiment)
    quiet_libraries()
    result = run_experiment(experiment, results_dir=args.results_dir, wandb_mode=args.wandb,
                            accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes,
                            launcher=args.launcher, slurm=_slurm_options(args), wait=not args.no_wait,
                            **_sweep_options(args))
    if args.no_wait and args.launcher == "slurm":
        print(f"submitted {len(result.jobs)} job(s): {' '.join(result.jobs) or '-'} "
              f"({result.skipped} run(s) already recorded)")
        print(f"when they are done: bench table {experiment.name} --results-dir {args.results_dir}")
        return 0
    if result.left:  # another `bench run` on this results dir is doing these runs
        print(f"{result.ran} run(s) done, {result.skipped} already recorded, {len(result.left)} left to "
              "other processes (the last to finish writes the tables, or run `bench table`):",
              *result.left, sep="\n  ")
    if not result.tables and not result.failed:  # a node other than 0 of a multi-node sweep: node 0 reports
        return 0
    if result.tables:
        print()
        print(result.tables["md"].read_text())
        print(f"{result.ran} run(s) done, {result.skipped} already recorded; tables: "
              + ", ".join(str(p) for p in result.tables.values()))
    if result.failed:
        print(f"{len(result.failed)} run(s) failed:", *result.failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


def cmd_describe(args) -> int:
    """One row per variant with the knobs the runner would use at ``--scale`` (same resolution as
    bench.registry.resolve_variant), parameters, forward GFLOPs at the scale's fps input size and the fc6
    receptive field (v1/v2: ``receptive_field`` in v1 Table 2's convention, ``rf_theoretical`` the
    full one; '-' where undefined). Models are built on the meta device: no memory, no compute."""
    import csv

    import torch

    experiment = get_experiment(args.experiment)
    rows, knob_names = [], []
    for variant in experiment.variants:
        version, protocol, knobs = resolve_variant(experiment, variant, args.scale)
        with torch.device("meta"):
            model = build_model(version, **knobs)
        size = (protocol.fps_size, protocol.fps_size)
        fields = {}
        for name, convention in (("receptive_field", "paper"), ("rf_theoretical", "theoretical")):
            try:
                fields[name] = str(receptive_field(model, convention=convention))
            except ValueError:
                fields[name] = "-"
        rows.append({"variant": variant.name, "version": version, "params_m": f"{count_params_m(model):.2f}",
                     "gflops": f"{count_gflops(model, size, device='meta'):.2f}",
                     "gflops_input": f"{size[0]}x{size[1]}", **fields,
                     **{k: str(v) for k, v in knobs.items()}})
        knob_names += [k for k in knobs if k not in knob_names]
    columns = ["variant", "version", "params_m", "gflops", "gflops_input", "receptive_field", "rf_theoretical"]
    columns += knob_names
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, restval="-", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return 0
    cells = [columns] + [[row.get(c, "-") for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    print(f"{experiment.name} at scale {args.scale}: {experiment.paper_table}")
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def cmd_table(args) -> int:
    if args.all == (args.experiment is not None):
        raise BenchError("bench table: name one EXPERIMENT or give --all; valid: " + ", ".join(experiments()))
    if args.all:  # every experiment with records, then one LaTeX document of them all
        for name, experiment in experiments().items():
            if ResultsDir(args.results_dir).record_paths(name):
                tables = write_tables(experiment, args.results_dir)
                print(" ".join(str(p) for p in tables.values()))
            else:
                print(f"{name}: no records yet (bench run {name})")
        document = write_document(args.results_dir, list(experiments()))
        if document is None:
            raise BenchError(f"no records of any experiment under {args.results_dir}/runs")
        print(f"{document}  (cd {args.results_dir} && pdflatex {document.name})")
        return 0
    experiment = get_experiment(args.experiment)
    tables = write_tables(experiment, args.results_dir)
    key = {"markdown": "md", "latex": "tex", "csv": "csv"}[args.format]
    print(tables[key].read_text(), end="")
    return 0


def sweep_config(experiment, *, scale: str = "tiny", data: str = "synthetic", seeds: int | None = None,
                 variants: list[str] | None = None) -> dict:
    """A W&B sweep (grid over variant x seed) whose every trial is one `bench run ... --seed K`.

    wandb's agent expands ${args} into --variants=NAME --seed=K (one value per parameter), so each
    trial trains one (variant, seed) and writes its record like `bench run` does."""
    selected = experiment.select(variants)
    if seeds is None:
        seeds = max(protocol_for(scale, experiment.version_of(v)).seeds for v in selected)
    if seeds < 1:
        raise BenchError(f"--seeds must be at least 1, got {seeds}")
    return {
        "name": f"{experiment.name}-{scale}",
        "description": f"{experiment.description}. {experiment.paper_table}",
        "program": "bench/__main__.py",  # the command below runs it as `python -m bench`
        "method": "grid",
        "metric": {"name": "miou", "goal": "maximize"},
        "parameters": {
            "variants": {"values": [v.name for v in selected]},
            "seed": {"values": list(range(seeds))},
        },
        "command": ["${env}", "${interpreter}", "-m", "bench", "run", experiment.name,
                    "--scale", scale, "--data", data, "--wandb", "online", "${args}"],
    }


def cmd_sweep(args) -> int:
    import yaml

    experiment = get_experiment(args.experiment)
    config = sweep_config(experiment, scale=args.scale, data=args.data, seeds=args.seeds, variants=args.variants)
    text = (f"# W&B sweep of {experiment.name}: wandb sweep FILE, then wandb agent ENTITY/PROJECT/ID\n"
            f"# from the repository root; each trial runs one variant x seed.\n"
            + yaml.safe_dump(config, sort_keys=False))
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        n = len(config["parameters"]["variants"]["values"]) * len(config["parameters"]["seed"]["values"])
        print(f"{args.out}: {n} trials; start with `wandb sweep {args.out}`")
    return 0


def cmd_pretrain(args) -> int:
    from dataclasses import replace

    # imported here: the models and timm take seconds, which no other command needs
    from bench import trunks
    from bench.pretrain import TINY_PRETRAIN, pretrain

    if args.steps is not None and args.steps < 1:
        raise BenchError(f"--steps must be at least 1, got {args.steps}")
    protocol = TINY_PRETRAIN if args.steps is None else replace(TINY_PRETRAIN, steps=args.steps,
                                                                warmup_steps=min(TINY_PRETRAIN.warmup_steps, args.steps))
    shipped_set = trunks.TRUNKS_DIR / trunks.TINY_TRUNKS
    out = args.out or shipped_set
    if protocol != TINY_PRETRAIN and out.resolve() == shipped_set.resolve():
        # the shipped set is the recipe's: a quick check must not replace a trunk under its name
        raise BenchError(f"--steps {args.steps} is not the recipe's {TINY_PRETRAIN.steps}: give --out DIR, "
                         f"not the shipped set {shipped_set}")
    record = pretrain(args.backbone, out, protocol)
    print(f"{out / record['file']}: {args.backbone}, top-1 {record['val_top1']:.2f}% on {record['data']['num_val']} "
          f"held-out images after {protocol.steps} steps, {record['seconds'] / 60:.1f} min, sha256 {record['sha256'][:12]}...")
    return 0


def cmd_scorecard(args) -> int:
    text = to_markdown(scorecard(args.results_dir))
    if args.out is None:
        print(text, end="")
    else:
        atomic_write(args.out, lambda tmp: tmp.write_text(text))
        print(f"{args.out}: {text.rstrip().splitlines()[-1]}")
    return 0


def cmd_crf_search(args) -> int:
    from bench.crf_tuning import crf_search_experiment  # imported here: Lightning (see cmd_run)
    from bench.run import quiet_libraries  # imported here: Lightning (see cmd_run)

    experiment = get_experiment(args.experiment)
    quiet_libraries()
    chosen = crf_search_experiment(experiment, results_dir=args.results_dir, variants=args.variants,
                                   images=args.images)
    for variant, found in chosen.items():
        best = found["history"][-1]
        params = ", ".join(f"{k}={v:g}" for k, v in found["best"].items())
        print(f"{variant}: {params} -> held-out mIoU after CRF {best['miou']:.2f} "
              f"({len(found['history'])} settings tried)")
    print(ResultsDir(args.results_dir).table(experiment.name, ".md").read_text())
    return 0


COMMANDS = {"plan": cmd_plan, "list": cmd_list, "describe": cmd_describe, "run": cmd_run, "table": cmd_table, "crf-search": cmd_crf_search,
            "score": cmd_score, "scorecard": cmd_scorecard, "pretrain": cmd_pretrain, "sweep": cmd_sweep, "data-stats": cmd_data_stats,
            "data": cmd_data, "protocols": cmd_protocols}


def _end_progress_bars() -> None:
    """Close the bars an error interrupted (a bad mask met mid-sweep), so the message starts a line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    # bad input, and a full disk or an I/O error outside a run (tables, plots): one line each
    except (BenchError, OSError) as err:
        _end_progress_bars()
        if args.debug:
            traceback.print_exc()
        print(f"bench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished runs are recorded, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
