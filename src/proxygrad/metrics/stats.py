"""Statistics over seeds: a mean with its Student-t confidence interval, and a paired comparison of two methods.

Paired comparison: both methods are scored on the same cells (objective, seed); per cell d = a - b. We report
the mean of d with its t interval, wins/ties/losses (a better / equal / worse), and a two-sided p-value for
"no systematic difference": the Wilcoxon signed-rank test on the non-zero d (scipy; zeros dropped, "wilcox"
rule) when there are at least ``MIN_WILCOXON`` of them, else the exact sign test (binomial, p = 1/2). With no
non-zero difference at all, p = 1.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
from torch import Tensor

MIN_WILCOXON = 6  # fewer non-zero differences: the sign test (Wilcoxon's normal/exact tables need a few more)


@dataclass(frozen=True)
class MeanCI:
    """Mean of n values with its two-sided Student-t confidence interval [low, high].

    ``std`` is the sample standard deviation (ddof = 1). With n = 1 the spread is unknown: std is NaN and
    the interval is (-inf, inf).
    """

    mean: float
    low: float
    high: float
    n: int
    std: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class PairedComparison:
    """Method a versus method b on n shared cells (see the module docstring).

    ``mean_difference`` and [low, high] are those of d = a - b in the metric's own units, whatever its
    direction; ``wins`` counts the cells where a is better (larger when ``higher_is_better``).
    """

    n: int
    mean_difference: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    p_value: float
    test: str
    confidence: float


def _values(values: Any, what: str) -> np.ndarray:
    if isinstance(values, Mapping):
        values = list(values.values())
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers, got {type(values).__name__}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def _check_confidence(confidence: float) -> None:
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def mean_ci(values: Any, confidence: float = 0.95) -> MeanCI:
    """Mean of ``values`` (1-D: list, array, tensor or dict of numbers, e.g. one per seed) with its t interval
    mean +- t_{n-1, (1 + confidence) / 2} * std / sqrt(n)."""
    _check_confidence(confidence)
    x = _values(values, "values")
    n, mean = x.size, float(x.mean())
    if n == 1:
        return MeanCI(mean, -math.inf, math.inf, 1, math.nan, confidence)
    std = float(x.std(ddof=1))
    half = float(scipy.stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n, std, confidence)


def _aligned(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """a, b as aligned arrays: dicts matched by key (the same keys required), sequences by position."""
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise ValueError("a and b must both be dicts keyed by cell, or both sequences in the same cell order")
    if isinstance(a, Mapping):
        if set(a) != set(b):
            only_a, only_b = sorted(map(str, set(a) - set(b)))[:3], sorted(map(str, set(b) - set(a)))[:3]
            raise ValueError(f"a and b must score the same cells; only in a: {only_a}, only in b: {only_b}")
        keys = list(a)
        a, b = [a[k] for k in keys], [b[k] for k in keys]
    x, y = _values(a, "a"), _values(b, "b")
    if x.size != y.size:
        raise ValueError(f"a and b must have one value per shared cell, got {x.size} and {y.size}")
    return x, y


def _p_value(d: np.ndarray) -> tuple[float, str]:
    """Two-sided p-value of the non-zero paired differences ``d`` and the test's name."""
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 1.0, "sign"
    if nonzero.size < MIN_WILCOXON:
        return float(scipy.stats.binomtest(int((nonzero > 0).sum()), nonzero.size, 0.5).pvalue), "sign"
    return float(scipy.stats.wilcoxon(nonzero).pvalue), "wilcoxon"


def paired_comparison(a: Any, b: Any, *, higher_is_better: bool = True,
                      confidence: float = 0.95) -> PairedComparison:
    """Compare methods a and b scored on the same cells (dicts keyed by (objective, seed), or aligned 1-D
    sequences); see :class:`PairedComparison`. ValueError for empty, non-finite or mismatched input."""
    _check_confidence(confidence)
    x, y = _aligned(a, b)
    d = x - y
    better = d if higher_is_better else -d
    ci = mean_ci(d, confidence)
    p, test = _p_value(d)
    return PairedComparison(d.size, ci.mean, ci.low, ci.high, int((better > 0).sum()), int((d == 0).sum()),
                            int((better < 0).sum()), p, test, confidence)
