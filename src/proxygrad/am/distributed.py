"""Rendering over several processes (``torchrun``): each rank renders a slice of the images, rank 0 gathers.

Every image depends only on its own objective and seed, so a sharded render gives the same images as a
single-process one (bitwise on the CPU with ``deterministic=True``). Launch, e.g.:

    torchrun --nproc-per-node 4 -m proxygrad.cli visualize --model resnet18 --weights IMAGENET1K_V1

Outside ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything runs in the one process.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from ..models.spec import InputSpec
from ..parallel import barrier as _barrier, close, init
from .config import RenderConfig
from .objectives import Objective
from .render import RenderResult, render


def world() -> tuple[int, int]:
    """(rank, world size); joins the process group ``torchrun`` set up (gloo on CPU, nccl on GPU)."""
    env = init()
    return env.rank, env.world


def local_device() -> torch.device:
    """This rank's device: cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    return init().device


def finish() -> None:
    """Leave the process group (if any) at the end of a command."""
    close(init())


def barrier() -> None:
    _barrier(init())


def render_sharded(model: nn.Module, spec: InputSpec, objectives: Sequence[Objective], seeds: Sequence[int],
                   config: RenderConfig, device=None) -> RenderResult | None:
    """Like :func:`render`, with image i rendered by rank i % world size; rank 0 returns the whole result
    (in the original order), the other ranks return None."""
    rank, size = world()
    if size == 1:
        return render(model, spec, objectives, seeds, config, device=device)
    mine = list(range(rank, len(objectives), size))
    part = None
    if mine:
        part = render(model, spec, [objectives[i] for i in mine], [seeds[i] for i in mine],
                      replace(config, progress=config.progress and rank == 0), device=device)
    parts = [None] * size if rank == 0 else None
    dist.gather_object((mine, part), parts, dst=0)
    if rank != 0:
        return None
    return _merge(parts, len(objectives), config)


def _merge(parts, n: int, config: RenderConfig) -> RenderResult:
    """One RenderResult in the original order from (indices, result) pairs of every rank."""
    order = [None] * n
    for indices, result in parts:
        for k, i in enumerate(indices):
            order[i] = (result, k)
    first = next(result for _, result in parts if result is not None)

    def stack(field: str) -> torch.Tensor:
        return torch.stack([getattr(result, field)[k] for result, k in order])

    return RenderResult(images=stack("images"), objectives=[r.objectives[k] for r, k in order],
                        seeds=[r.seeds[k] for r, k in order], activation=stack("activation"),
                        predicted=stack("predicted"), trace=stack("trace"), trace_steps=first.trace_steps,
                        zero_gradient_steps=stack("zero_gradient_steps"),
                        nonfinite_gradient_steps=stack("nonfinite_gradient_steps"),
                        seconds=max(r.seconds for _, r in parts if r is not None), config=config,
                        batch_size=first.batch_size,
                        transparency=stack("transparency") if first.transparency is not None else None)
