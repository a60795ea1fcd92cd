"""An epoch's random numbers as functions of (seed, epoch, index): never of the batch, the worker or the
process, so a resumed or data-parallel run sees exactly the same inputs."""
from __future__ import annotations

import numpy as np


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random numbers of one training sample in one epoch (independent of batch, worker and process)."""
    return np.random.default_rng([seed, epoch, index])


def batches(n: int, batch_size: int, seed: int, epoch: int, *, rank: int = 0, world: int = 1,
            min_shard: int = 2) -> list[list[tuple[int, int]]]:
    """This process's share of one epoch: lists of ``(index, epoch)`` keys for :class:`RandomCropFlip`.

    The epoch's order is a permutation drawn from (seed, epoch); it is cut into global batches of
    ``batch_size``; each global batch is split into ``world`` near-equal contiguous shards and shard ``rank``
    is returned. A last global batch whose shards would hold fewer than ``min_shard`` samples is dropped
    (BatchNorm needs two).
    """
    order = np.random.default_rng([seed, epoch, 2 ** 31 - 1]).permutation(n)
    out = []
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        if len(chunk) < min_shard * world:
            break
        out.append([(int(i), epoch) for i in np.array_split(chunk, world)[rank]])
    return out
