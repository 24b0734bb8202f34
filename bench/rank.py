"""One rank of a data-parallel run as a process of its own: ``python -m bench.rank SPEC``.

A local sweep with ``--devices N`` (bench.launchers.run_ranks) starts N of these for each run,
in the torch.distributed environment (RANK, LOCAL_RANK, NODE_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT): Lightning finds its processes already created and joins them into one DDP group.
Global rank 0 evaluates and writes the record. A rank that fails writes its error beside the run
(ResultsDir.rank_error) and exits with code 1 (2 for bad input); the sweep then ends the other
ranks, records the run as failed (or stops, for bad input), and goes on with the next run in
fresh processes.

SPEC is a JSON file: {"config": RunConfig dict, "results": dir, "wandb": mode, "accelerator",
"devices", "num_nodes"}.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from bench import distributed
from bench.atomic import atomic_write
from bench.errors import BenchError
from bench.launchers import EXIT_BAD_INPUT, SWEEP_PID_ENV, WANDB_MODE_FILE, record_rank_failure
from bench.results_dir import ResultsDir
from bench.run import quiet_libraries, run_and_record
from bench.run_config import RunConfig
from bench.tracking import WandbGuard


def die_with_parent() -> None:
    """End with the sweep that started this rank, even when the sweep is SIGKILLed (Linux's
    PR_SET_PDEATHSIG), so no rank trains on unwatched. Set here, not in the sweep's preexec_fn,
    which is unsafe in a process with threads (torch's)."""
    parent = int(os.environ.get(SWEEP_PID_ENV, os.getppid()))
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the sweep's own stop still ends its ranks
        return
    if os.getppid() != parent:  # the sweep died before the signal was set
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    cfg, results = RunConfig.from_dict(spec["config"]), ResultsDir(spec["results"])
    quiet_libraries()
    wandb = WandbGuard(spec["wandb"])
    try:
        run_and_record(cfg, results, wandb=wandb, accelerator=spec["accelerator"], devices=spec["devices"],
                       num_nodes=spec["num_nodes"])
    except BenchError as err:  # bad input: the sweep stops with this line, as it would in one process
        record_rank_failure(results, cfg, err)
        return EXIT_BAD_INPUT
    except BaseException as err:  # every other failure ends this rank; the sweep records the run
        record_rank_failure(results, cfg, err)
        return 1
    finally:
        if distributed.global_rank() == 0 and wandb.mode != spec["wandb"]:  # W&B stepped down: tell the sweep
            mode = results.ranks(cfg.experiment, cfg.variant, cfg.seed) / WANDB_MODE_FILE
            atomic_write(mode, lambda tmp: tmp.write_text(wandb.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
