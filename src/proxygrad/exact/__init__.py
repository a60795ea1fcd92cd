"""Exact global maxima of small piecewise-linear networks: MILP (any input size) and linear regions (2-D)."""
from .gap import optimality_gap
from .milp import ExactMaximum, maximize
from .network import PiecewiseLinear, trace
from .regions import RegionMaximum, maximize_2d, regions

__all__ = ["ExactMaximum", "PiecewiseLinear", "RegionMaximum", "maximize", "maximize_2d", "optimality_gap",
           "regions", "trace"]
