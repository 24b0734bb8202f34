"""The `bench` command: list, run and table the DeepLab ablations.

Errors in the user's input print one line on stderr and exit with code 2 (`--debug` shows the
traceback); a sweep with failed runs exits with code 1 after writing its tables.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from bench.config import SCALES
from bench.errors import BenchError

DEFAULT_RESULTS = Path("results")


def _variants(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="Rerun the DeepLab papers' ablations.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="the experiments, one line each")

    run = sub.add_parser("run", help="train and evaluate every variant x seed, then write the tables")
    run.add_argument("experiment")
    run.add_argument("--scale", default="tiny", choices=SCALES)
    run.add_argument("--data", default="synthetic", help="synthetic (default), voc:PATH or cityscapes:PATH")
    run.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default: the scale's, 3 at tiny)")
    run.add_argument("--variants", type=_variants, default=None, help="comma-separated subset, e.g. largefov,aspp-l")
    run.add_argument("--max-steps", type=int, default=None, help="override the scale's training steps")
    run.add_argument("--wandb", default=None, choices=("online", "offline", "disabled"),
                     help="default: online with WANDB_API_KEY set, else offline")
    run.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    run.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")

    table = sub.add_parser("table", help="rebuild an experiment's tables from its records and print one")
    table.add_argument("experiment")
    table.add_argument("--format", default="markdown", choices=("markdown", "latex", "csv"))
    table.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    return parser


def cmd_list(args) -> int:
    from bench.registry import experiments

    registry = experiments()
    width = max(map(len, registry))
    for name, exp in registry.items():
        print(f"{name:<{width}}  {len(exp.variants)} variants  {exp.description}")
    return 0


def cmd_run(args) -> int:
    from bench.registry import get_experiment
    from bench.runner import quiet_libraries, run_experiment

    experiment = get_experiment(args.experiment)
    quiet_libraries()
    result = run_experiment(experiment, results_dir=args.results_dir, scale=args.scale, data=args.data,
                            seeds=args.seeds, variants=args.variants, max_steps=args.max_steps,
                            wandb_mode=args.wandb, accelerator=args.accelerator)
    print()
    print(result.tables["md"].read_text())
    print(f"{result.ran} run(s) done, {result.skipped} already recorded; tables: "
          + ", ".join(str(p) for p in result.tables.values()))
    if result.failed:
        print(f"{len(result.failed)} run(s) failed:", *result.failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


def cmd_table(args) -> int:
    from bench.registry import get_experiment
    from bench.runner import write_tables

    experiment = get_experiment(args.experiment)
    tables = write_tables(experiment, args.results_dir)
    key = {"markdown": "md", "latex": "tex", "csv": "csv"}[args.format]
    print(tables[key].read_text(), end="")
    return 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "table": cmd_table}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BenchError as err:
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
