"""Set-level scores computed per group (per class, per objective) and averaged over the groups."""
from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from torch import Tensor


@dataclass(frozen=True)
class GroupScores:
    """One score per group and their unweighted mean.

    Attributes:
        per_group: group key (class index, objective name, ...) -> score.
        counts: group key -> number of images that entered its score (report it with the score).
        mean: mean of ``per_group`` over the groups, each group weighted equally.
    """

    per_group: dict[Hashable, float]
    counts: dict[Hashable, int]
    mean: float


def group_indices(keys: Any, n: int, what: str = "keys") -> dict[Hashable, list[int]]:
    """{key: positions} for ``n`` keys (a tensor (n,) or a sequence of hashables), in order of first appearance."""
    keys = keys.tolist() if isinstance(keys, Tensor) else list(keys)
    if len(keys) != n:
        raise ValueError(f"{what} must have one entry per image ({n}), got {len(keys)}")
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        try:
            groups.setdefault(key, []).append(i)
        except TypeError:
            raise ValueError(f"{what} must be hashable (ints, strings, tuples), got {key!r}") from None
    return groups
