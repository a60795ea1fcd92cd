"""Scale-out: data-parallel training under ``torchrun`` and sweeps spread over ranks.

Data parallel (one run on many devices)::

    torchrun --nproc_per_node=8 -m proxygrad.cli train --dataset cub200 --root DATA ...        # one node
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \\
        -m proxygrad.cli train ...                                                          # two nodes

Every process holds a copy of the model (``DistributedDataParallel``); each global batch of ``batch_size``
images is split into near-equal shards, one per process, and the loss is scaled so that the averaged gradient
is that of the whole global batch. On GPUs BatchNorm is synchronized across processes (``SyncBatchNorm``), so
the run equals single-device training on the global batch; on CPUs (gloo) PyTorch has no SyncBatchNorm and
each process normalizes its own shard.

Sweep (many runs, one per process at a time)::

    torchrun --nproc_per_node=8 -m proxygrad.cli table --sweep ...

Process ``rank`` trains cells ``rank, rank + world, ...`` on its own device; no process group is needed.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world`` processes, ``local_rank`` on its node, its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1 and dist.is_available() and dist.is_initialized()


def launch_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment variables ((0, 1, 0) outside torchrun)."""
    read = lambda name, default: int(os.environ.get(name, default))
    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


def pick_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``device`` when given ("cuda" alone: this process's GPU ``cuda:LOCAL_RANK``); otherwise that GPU when there
    is one, else the CPU."""
    if device:
        dev = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device} was asked for but CUDA is not available here; use --device cpu")
        return dev
    return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def init(device: str | None = None, backend: str | None = None) -> DistEnv:
    """Join the process group when started by torchrun with more than one process (NCCL on GPUs, gloo on CPUs);
    a single process gets a plain :class:`DistEnv`."""
    rank, world, local_rank = launch_env()
    dev = pick_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"),
                                timeout=datetime.timedelta(hours=2))
    return DistEnv(rank, world, local_rank, dev)


def close(env: DistEnv) -> None:
    """Leave the process group (if this process joined one)."""
    if env.distributed:
        dist.destroy_process_group()


def wrap(model: nn.Module, env: DistEnv, sync_bn: bool = True) -> nn.Module:
    """``model`` (already on ``env.device``) for data-parallel training; unchanged for one process.

    ``sync_bn``: convert BatchNorm to ``SyncBatchNorm`` on GPUs (PyTorch supports it only there).
    """
    if not env.distributed:
        return model
    if sync_bn and env.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_sum(values: Sequence[float], env: DistEnv) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64; the values themselves for one process)."""
    if not env.distributed:
        return list(values)
    device = env.device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast(obj: T, env: DistEnv) -> T:
    """Rank 0's ``obj`` on every process (pickled)."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every process, e.g. before testing."""
    if env.distributed:
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def my_share(items: Sequence[T], rank: int | None = None, world: int | None = None) -> list[T]:
    """Sweep mode: the items of process ``rank`` out of ``world`` (round robin; torchrun's values by default)."""
    if rank is None or world is None:
        rank, world, _ = launch_env()
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank}")
    return list(items[rank::world])
