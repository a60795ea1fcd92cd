"""The optimality gap: how far below the true maximum an activation-maximization result stays."""
from __future__ import annotations

import numpy as np


def optimality_gap(exact, reached):
    """``(exact - reached) / |exact|`` (elementwise for arrays): 0 at the optimum, 1 for reaching 0, above 1
    for a negative ``reached`` when the maximum is positive. ValueError where ``exact`` is 0 (the relative gap
    is undefined there). With an upper bound for ``exact`` (a time-limited solve), the result is an upper
    bound on the gap (for ``exact`` > 0)."""
    exact, reached = np.asarray(exact, dtype=np.float64), np.asarray(reached, dtype=np.float64)
    if np.any(exact == 0):
        raise ValueError("the optimality gap is relative to |exact|, which is 0 here: report exact - reached")
    gap = (exact - reached) / np.abs(exact)
    return float(gap) if gap.ndim == 0 else gap
