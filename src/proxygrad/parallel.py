"""Where this process stands under ``torchrun``: rank, world size, device, and joining the process group.

The lowest layer of the project's scale-out (needs only torch): ``train.dist`` builds data-parallel training on
it and ``am.distributed`` sharded rendering. Outside ``torchrun`` everything is a single process.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

import torch
import torch.distributed as dist

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
