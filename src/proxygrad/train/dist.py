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

from typing import Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn

from ..parallel import DistEnv, barrier, close, init, launch_env, my_share, pick_device

T = TypeVar("T")

__all__ = ["DistEnv", "all_sum", "barrier", "broadcast", "close", "init", "launch_env", "my_share", "pick_device",
           "sync_buffers", "unwrap", "wrap"]


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
