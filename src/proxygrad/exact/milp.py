"""Exact global maximum of a piecewise-linear network over an input box, as a mixed-integer linear program.

The big-M encoding of Tjeng et al. (2019), solved with SciPy's HiGHS (``scipy.optimize.milp``); see
``shared/specs/exact-maximum.md``. Affine layers are composed symbolically, so only rectifiers whose input can
take both signs (and max-pool windows whose winner is not known in advance) get variables:

- rectifier y = max(z, 0) or Leaky ReLU (slope a) of z with bounds l < 0 < u, binary d:
  y >= z, y >= a z, y <= z - (1 - a) l (1 - d), y <= a z + (1 - a) u d;
- max pooling y = max_i x_i, binaries d_i with sum d_i = 1: y >= x_i, y <= x_i + (1 - d_i)(max_{j!=i} u_j - l_i).

Bounds l, u come from interval arithmetic over the variables so far, then (``bounds="lp"``) from two LP
relaxations per undecided unit, layer by layer. LP bounds are widened by a relative 1e-6 (interval bounds by
1e-12) so that solver tolerances and rounding never cut off the optimum.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch.nn as nn
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .network import Affine, MaxPool, PiecewiseLinear, Rectifier, trace

BOUND_METHODS = ("lp", "interval")
WIDEN_LP, WIDEN_INTERVAL = 1e-6, 1e-12  # relative widening of bounds: LP solver tolerance, float rounding


@dataclass
class ExactMaximum:
    """The maximum of one output of a network over the box ``[low, high]^d``.

    Attributes:
        value: the network's own output (float64 forward) at ``input``: a value the network reaches.
        bound: an upper bound on the maximum (the solver's dual bound). When ``optimal``, the maximum is
            ``value`` (``bound`` then agrees up to the solver's relative gap, 1e-6 by default).
        input: the maximizing input, shape ``input_shape`` (float64), or None when no solution was found.
        status: the solver's message; ``optimal``: whether it proved optimality (False after a time limit).
        milp_value: the MILP's objective at its solution (equals ``value`` up to the solver's tolerances).
        unstable: rectifier units whose sign is not decided by the bounds (one binary each).
        binaries, variables, constraints: size of the MILP. ``seconds``: total; ``bound_seconds``: bounds part.
    """

    value: float
    bound: float
    input: np.ndarray | None
    status: str
    optimal: bool
    milp_value: float
    unstable: int
    binaries: int
    variables: int
    constraints: int
    seconds: float
    bound_seconds: float

    @property
    def best(self) -> float:
        """The maximum when ``optimal``; otherwise the bound (an upper bound on the maximum)."""
        return self.value if self.optimal else self.bound

    def to_dict(self) -> dict:
        out = {k: v for k, v in vars(self).items() if k != "input"}
        return {**out, "input": None if self.input is None else self.input.tolist()}


@dataclass
class _Expr:
    """Affine expressions ``matrix @ variables + offset`` for each entry of a value; matrix (m, k), k <= n."""

    matrix: sp.csr_matrix
    offset: np.ndarray


class _Program:
    """Variables (with bounds and integrality) and constraint rows ``lo <= M v <= hi``, grown op by op."""

    def __init__(self, low: np.ndarray, high: np.ndarray, bounds: str):
        self.lb, self.ub = list(low), list(high)
        self.integer: list[int] = [0] * len(low)
        self.blocks: list[tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = []
        self.bound_method = bounds
        self.unstable = 0
        self.bound_seconds = 0.0

    @property
    def n(self) -> int:
        return len(self.lb)

    def new(self, lb, ub, integer: bool) -> np.ndarray:
        """Add variables with bounds ``lb``, ``ub`` (arrays); returns their indices."""
        start = self.n
        self.lb += list(lb)
        self.ub += list(ub)
        self.integer += [int(integer)] * len(lb)
        return np.arange(start, self.n)

    def rows(self, matrix, lo, hi) -> None:
        self.blocks.append((sp.csr_matrix(matrix), np.asarray(lo, float), np.asarray(hi, float)))

    def system(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """All constraint rows, padded to the current number of variables."""
        if not self.blocks:
            return sp.csr_matrix((0, self.n)), np.zeros(0), np.zeros(0)
        return (sp.vstack([_width(m, self.n) for m, _, _ in self.blocks]).tocsr(),
                np.concatenate([lo for _, lo, _ in self.blocks]), np.concatenate([hi for _, _, hi in self.blocks]))

    # ---- bounds ------------------------------------------------------------------------------------------
    def interval(self, expr: _Expr) -> tuple[np.ndarray, np.ndarray]:
        """Interval arithmetic: the smallest and largest value of each expression over the variable bounds."""
        k = expr.matrix.shape[1]
        lb, ub = np.array(self.lb[:k]), np.array(self.ub[:k])
        pos, neg = expr.matrix.maximum(0), expr.matrix.minimum(0)
        return expr.offset + pos @ lb + neg @ ub, expr.offset + pos @ ub + neg @ lb

    def bounds(self, expr: _Expr, undecided) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of each expression: interval arithmetic, tightened by LP (``bounds="lp"``) for the rows where
        ``undecided(low, high)`` is True; widened by a relative 1e-6 (LP) or 1e-12 (interval)."""
        start = time.perf_counter()
        low, high = self.interval(expr)
        widen = np.full(len(low), WIDEN_INTERVAL)
        if self.bound_method == "lp" and self.blocks:
            rows = np.flatnonzero(undecided(low, high))
            if len(rows):
                low[rows], high[rows] = self._lp(expr, rows, low[rows], high[rows])
                widen[rows] = WIDEN_LP
        self.bound_seconds += time.perf_counter() - start
        pad = widen * (1 + np.abs(low) + np.abs(high))
        return low - pad, high + pad

    def _lp(self, expr: _Expr, rows, low, high) -> tuple[np.ndarray, np.ndarray]:
        """Min and max of each expression row over the LP relaxation of the constraints so far."""
        matrix, lo, hi = self.system()
        finite_hi, finite_lo = np.isfinite(hi), np.isfinite(lo)
        a_ub = sp.vstack([matrix[finite_hi], -matrix[finite_lo]]).tocsr()
        b_ub = np.concatenate([hi[finite_hi], -lo[finite_lo]])
        box = np.column_stack([self.lb, self.ub])
        low, high = low.copy(), high.copy()
        for i, row in enumerate(rows):
            c = np.zeros(self.n)
            c[: expr.matrix.shape[1]] = expr.matrix[row].toarray().ravel()
            for sign in (1.0, -1.0):
                result = linprog(sign * c, A_ub=a_ub, b_ub=b_ub, bounds=box, method="highs")
                if result.status == 0:
                    value = sign * result.fun + expr.offset[row]
                    if sign > 0:
                        low[i] = max(low[i], value)
                    else:
                        high[i] = min(high[i], value)
        return low, high


def _width(matrix: sp.spmatrix, n: int) -> sp.csr_matrix:
    """``matrix`` with zero columns appended up to ``n`` columns."""
    matrix = sp.csr_matrix(matrix)
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n))


# ---- encoding of each operation ------------------------------------------------------------------------------
def _affine(op: Affine, source: _Expr) -> _Expr:
    weight = sp.csr_matrix(op.weight)
    return _Expr((weight @ source.matrix).tocsr(), op.weight @ source.offset + op.bias)


def _add(a: _Expr, b: _Expr) -> _Expr:
    n = max(a.matrix.shape[1], b.matrix.shape[1])
    return _Expr((_width(a.matrix, n) + _width(b.matrix, n)).tocsr(), a.offset + b.offset)


def _rectifier(program: _Program, op: Rectifier, z: _Expr) -> _Expr:
    """y = z where z > 0, op.slope * z elsewhere; variables only for units with l < 0 < u."""
    alpha = op.slope
    low, high = program.bounds(z, lambda lo, hi: (lo < 0) & (hi > 0))
    scale = np.where(low >= 0, 1.0, np.where(high <= 0, alpha, 0.0))  # stable units: y = scale * z
    unstable = np.flatnonzero((low < 0) & (high > 0))
    q = len(unstable)
    program.unstable += q
    n_before = program.n
    y = program.new(alpha * low[unstable], high[unstable], integer=False)
    program.new(np.zeros(q), np.ones(q), integer=True)
    zq, bq = _width(z.matrix[unstable], n_before), z.offset[unstable]
    lo, hi, eye, none = low[unstable], high[unstable], sp.eye(q), sp.csr_matrix((q, q))
    inf = np.full(q, np.inf)
    # rows over [earlier variables, y, d]; c = 1 - a
    c = 1 - alpha
    program.rows(sp.hstack([-zq, eye, none]), bq, inf)                                       # y >= z
    if alpha > 0:
        program.rows(sp.hstack([-alpha * zq, eye, none]), alpha * bq, inf)                   # y >= a z
    program.rows(sp.hstack([-zq, eye, sp.diags(-c * lo)]), -inf, bq - c * lo)                # y <= z - c l (1 - d)
    program.rows(sp.hstack([-alpha * zq, eye, sp.diags(-c * hi)]), -inf, alpha * bq)         # y <= a z + c u d
    stable = sp.diags(scale) @ _width(z.matrix, program.n)
    chosen = sp.csr_matrix((np.ones(q), (unstable, y)), shape=(len(scale), program.n))
    return _Expr((stable + chosen).tocsr(), scale * z.offset)


def _max_pool(program: _Program, op: MaxPool, x: _Expr) -> _Expr:
    """y_i = max over window i; inputs that can never be the largest are dropped, a sure winner is copied."""
    windows = op.windows
    low, high = program.bounds(x, lambda lo, hi: np.zeros(len(lo), bool))  # interval: inputs are mostly variables
    rows, offsets = [], np.zeros(len(windows))
    constant = np.diff(x.matrix.indptr) == 0  # entries without variables (e.g. rectified negatives): fixed values
    for i, window in enumerate(windows):
        window = window[window >= 0]
        floor = low[window].max()
        candidates = window[(high[window] >= floor) & ~constant[window]]
        fixed = window[constant[window]]
        if len(fixed) and x.offset[fixed].max() >= floor:  # of the fixed values only the largest can win
            candidates = np.append(candidates, fixed[np.argmax(x.offset[fixed])])
        if len(candidates) == 1:
            rows.append(_width(x.matrix[candidates], program.n))
            offsets[i] = x.offset[candidates[0]]
            continue
        rows.append(_pool_window(program, x, candidates, low, high))
    return _Expr(sp.vstack([_width(r, program.n) for r in rows]).tocsr(), offsets)


def _pool_window(program: _Program, x: _Expr, candidates, low, high) -> sp.csr_matrix:
    """Variables and rows of one max-pool window with several candidates; returns the row selecting y."""
    c = len(candidates)
    (y,) = program.new([low[candidates].max()], [high[candidates].max()], integer=False)
    d = program.new(np.zeros(c), np.ones(c), integer=True)
    xs, bs = _width(x.matrix[candidates], program.n), x.offset[candidates]
    pick_y = sp.csr_matrix((np.ones(c), (np.arange(c), np.full(c, y))), shape=(c, program.n))
    others = np.array([np.delete(high[candidates], j).max() for j in range(c)])
    big_m = others - low[candidates]
    pick_d = sp.csr_matrix((big_m, (np.arange(c), d)), shape=(c, program.n))
    program.rows(pick_y - xs, bs, np.full(c, np.inf))                          # y >= x_i
    program.rows(pick_y - xs + pick_d, np.full(c, -np.inf), bs + big_m)        # y <= x_i + (1 - d_i) M_i
    program.rows(sp.csr_matrix((np.ones(c), (np.zeros(c), d)), shape=(1, program.n)), [1.0], [1.0])
    return sp.csr_matrix(([1.0], ([0], [y])), shape=(1, program.n))


def encode(net: PiecewiseLinear, low: float = -1.0, high: float = 1.0,
           bounds: str = "lp") -> tuple[_Program, _Expr]:
    """The MILP of ``net`` over the box ``[low, high]^d`` and the expressions of its outputs."""
    if bounds not in BOUND_METHODS:
        raise ValueError(f"bounds must be one of {BOUND_METHODS}, got {bounds!r}")
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"the input box needs finite low < high, got [{low}, {high}]")
    d = net.input_size
    program = _Program(np.full(d, float(low)), np.full(d, float(high)), bounds)
    exprs = [_Expr(sp.identity(d, format="csr"), np.zeros(d))]
    for op in net.operations:
        if isinstance(op, Affine):
            exprs.append(_affine(op, exprs[op.source]))
        elif isinstance(op, Rectifier):
            exprs.append(_rectifier(program, op, exprs[op.source]))
        elif isinstance(op, MaxPool):
            exprs.append(_max_pool(program, op, exprs[op.source]))
        else:
            exprs.append(_add(exprs[op.a], exprs[op.b]))
    return program, exprs[-1]


def maximize(model: nn.Module | PiecewiseLinear, input_shape=None, output: int = 0, *, low: float = -1.0,
             high: float = 1.0, bounds: str = "lp", time_limit: float = 60.0,
             rel_gap: float = 1e-6) -> ExactMaximum:
    """The global maximum of output ``output`` (index into the flattened output) of ``model`` over
    ``[low, high]^input_shape``, by MILP.

    ``model``: an ``nn.Module`` taking (1, *input_shape) (traced, in eval mode, see :func:`.network.trace`) or
    a :class:`PiecewiseLinear`. ``time_limit`` in seconds caps the solver (bounds come first and are not
    capped); when it stops the solver, ``optimal`` is False and ``bound`` still bounds the maximum from above.
    """
    start = time.perf_counter()
    net = model if isinstance(model, PiecewiseLinear) else trace(model, _shape(input_shape))
    if not (time_limit > 0 and rel_gap >= 0):
        raise ValueError(f"time_limit must be > 0 and rel_gap >= 0, got {time_limit}, {rel_gap}")
    program, out = encode(net, low, high, bounds)
    if not 0 <= output < len(out.offset):
        raise ValueError(f"output {output} out of range: the network has {len(out.offset)} outputs")
    objective = np.zeros(program.n)
    objective[: out.matrix.shape[1]] = out.matrix[output].toarray().ravel()
    constant = float(out.offset[output])
    matrix, lo, hi = program.system()
    with _quiet_stdout():  # HiGHS prints debugging lines from C++ at times
        result = milp(-objective, integrality=np.array(program.integer), bounds=Bounds(program.lb, program.ub),
                      constraints=[LinearConstraint(matrix, lo, hi)] if matrix.shape[0] else None,
                      options={"time_limit": float(time_limit), "mip_rel_gap": float(rel_gap), "disp": False})
    x = None if result.x is None else np.clip(result.x[: net.input_size], low, high)
    value = float(net(x)[output]) if x is not None else float("nan")
    dual = getattr(result, "mip_dual_bound", None)
    bound = constant - dual if dual is not None and np.isfinite(dual) else float("inf")
    return ExactMaximum(
        value=value, bound=max(bound, value) if x is not None else bound,
        input=None if x is None else x.reshape(net.input_shape), status=str(result.message),
        optimal=result.status == 0, milp_value=float(constant - result.fun) if x is not None else float("nan"),
        unstable=program.unstable, binaries=int(sum(program.integer)), variables=program.n,
        constraints=int(matrix.shape[0]), seconds=time.perf_counter() - start, bound_seconds=program.bound_seconds)


def _shape(input_shape) -> tuple[int, ...]:
    if input_shape is None:
        raise ValueError("input_shape is needed to trace an nn.Module, e.g. (1, 8, 8) for a gray 8x8 image")
    return (int(input_shape),) if isinstance(input_shape, int) else tuple(int(s) for s in input_shape)


@contextlib.contextmanager
def _quiet_stdout():
    """Send the process's file descriptor 1 to /dev/null (C++ output that Python cannot catch)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # stdout replaced (pytest capture, notebooks): leave it
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
