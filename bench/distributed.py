"""Data-parallel training of one run over several devices and nodes (Lightning DDP).

What changes with ``--devices N --num-nodes M`` (world size W = N * M > 1):

- Lightning's ``ddp`` strategy (gloo on the CPU, NCCL on GPUs). Locally the sweep starts each
  run's ranks (bench.launchers.run_ranks); under SLURM every task is a rank.
- The protocol's batch is the *global* batch, as in the papers (v3: 16 images): each rank trains
  on batch / W images and BatchNorm is synchronised across ranks (SyncBatchNorm), so a run on
  8 GPUs follows the same recipe (lr, steps, BN batch) as on one. The batch must divide by W.
  (On the CPU, where torch has no SyncBatchNorm, BN sees each rank's batch / W images.)
- Validation runs on every rank over disjoint shards of the split, *without* the padding of
  Lightning's DistributedSampler (which repeats samples when len(val) % W != 0 and would count
  them twice); the confusion matrix (torchmetrics) is summed over ranks, so mIoU is the one of
  the whole split, the same as on one device.
- CRF, trimap, pictures, fps, the record and W&B happen on global rank 0 only; the other ranks
  end after validation.
- Each run's ranks are processes of their own (bench.launchers.run_ranks starts them, bench.rank
  is one): when one fails, the sweep stops the others and goes on with the next run in fresh
  processes. No rank waits in a collective longer than ``collective_timeout()``.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from torch.utils.data import DataLoader

from bench.errors import BenchError

COLLECTIVE_TIMEOUT_ENV = "BENCH_COLLECTIVE_TIMEOUT_S"
DEFAULT_COLLECTIVE_TIMEOUT_S = 30 * 60  # torch's own default: far above one step at the paper scale


def collective_timeout() -> timedelta:
    """How long a rank waits in one collective before it fails: a dead or stuck peer then ends the
    run instead of hanging it ($BENCH_COLLECTIVE_TIMEOUT_S seconds, default 30 minutes)."""
    text = os.environ.get(COLLECTIVE_TIMEOUT_ENV, str(DEFAULT_COLLECTIVE_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise BenchError(f"{COLLECTIVE_TIMEOUT_ENV}={text!r} is not a number of seconds > 0")
    return timedelta(seconds=seconds)


def global_rank() -> int:
    """This process's rank in its run's group (RANK as bench.launchers sets it, SLURM_PROCID under SLURM)."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))


def node_rank() -> int:
    """This node's index in a multi-node sweep (NODE_RANK, as README's Scale out sets it)."""
    return int(os.environ.get("NODE_RANK", os.environ.get("SLURM_NODEID", 0)))


def rendezvous(num_nodes: int) -> tuple[str, int]:
    """Where a run's ranks meet: this machine and a free port, or MASTER_ADDR:MASTER_PORT across nodes."""
    if num_nodes == 1:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return "127.0.0.1", probe.getsockname()[1]
    address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if not address or not (port or "").isdigit():
        raise BenchError("--num-nodes needs MASTER_ADDR and MASTER_PORT (node 0's address and a free port) "
                         "and NODE_RANK on every node; see README, Scale out")
    return address, int(port)


def world_size(devices: int, num_nodes: int) -> int:
    for name, value in (("--devices", devices), ("--num-nodes", num_nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BenchError(f"{name} must be an integer >= 1, got {value!r}")
    return devices * num_nodes


def per_device_batch(batch_size: int, world: int) -> int:
    """The protocol's global batch split over the ranks; it has to split evenly."""
    if batch_size % world:
        valid = [w for w in range(1, batch_size + 1) if batch_size % w == 0]
        raise BenchError(f"the protocol's batch of {batch_size} images does not split over {world} devices "
                         f"(devices x nodes); valid world sizes: {', '.join(map(str, valid))}")
    return batch_size // world


def strategy(world: int):
    """Lightning's strategy for a world size: plain single-device, or DDP with the collective timeout."""
    if world == 1:
        return "auto"
    from pytorch_lightning.strategies import DDPStrategy

    return DDPStrategy(timeout=collective_timeout())


def sync_batchnorm(accelerator: str, world: int) -> bool:
    """SyncBatchNorm across ranks on GPUs; torch's SyncBatchNorm has no CPU implementation, so
    CPU ranks normalise over their own batch / world images (tests and smoke runs only)."""
    import torch

    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return world > 1 and gpu


def is_global_zero() -> bool:
    """Whether this process is global rank 0 (Lightning sets the rank when the strategy starts;
    before that, from RANK / LOCAL_RANK / SLURM_PROCID as the launchers set them)."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def unpadded_loader(loader: DataLoader, *, world: int, rank: int) -> DataLoader:
    """``loader`` restricted to this rank's shard of the dataset, every sample on exactly one rank.

    The sampler is a DistributedSampler subclass, so Lightning (use_distributed_sampler=True)
    keeps it instead of injecting its padded one. Shards differ by at most one sample; that is
    fine in validation, where no collective runs per step (the metric syncs once, at compute).
    """
    if world == 1:
        return loader
    from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

    sampler = UnrepeatedDistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=False)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=False,
                      persistent_workers=loader.num_workers > 0)
