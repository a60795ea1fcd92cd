"""Exact maximum of a network with a 2-D input, by enumerating its linear regions with ``regioncam``.

A piecewise-linear network is affine on each region of a polygonal partition of the input square; the
maximum of an affine function over a polygon lies at a vertex, so the maximum over the square is the largest
output over the partition's vertices. ``regioncam`` builds the partition exactly (layer by layer, splitting
faces where a rectifier's input changes sign); the outputs at the vertices are then recomputed in float64 by
the network itself (regioncam works in float32).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from .network import Affine, PiecewiseLinear, Rectifier, trace


@dataclass
class RegionMaximum:
    """The maximum ``value`` of one output over the square, attained at ``input`` (2,); ``regions`` and
    ``vertices`` count the partition."""

    value: float
    input: np.ndarray
    regions: int
    vertices: int
    seconds: float


def regions(model: nn.Module | PiecewiseLinear, low: float = -1.0, high: float = 1.0):
    """The ``regioncam.Regioncam`` partition of ``[low, high]^2`` for a network with 2 inputs.

    Supports chains of affine layers and rectifiers (MLPs, also with BatchNorm); ValueError for max pooling or
    residual adds (use :func:`proxygrad.exact.maximize` for those).
    """
    import regioncam

    net = _net(model)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"the input square needs finite low < high, got [{low}, {high}]")
    cam = regioncam.Regioncam(size=1.0)  # the square [-1, 1]^2; mapped to [low, high]^2 first
    center, half = (low + high) / 2, (high - low) / 2
    cam.linear(np.eye(2, dtype=np.float32) * np.float32(half), np.full(2, center, dtype=np.float32))
    for k, op in enumerate(net.operations):
        if not isinstance(op, (Affine, Rectifier)) or op.source != k:
            raise ValueError(f"region enumeration handles chains of affine layers and rectifiers; operation {k} "
                             f"is {type(op).__name__} (use proxygrad.exact.maximize, the MILP, instead)")
        if isinstance(op, Affine):
            cam.linear(op.weight.T.astype(np.float32), op.bias.astype(np.float32))
        elif op.slope == 0:
            cam.relu()
        else:
            cam.leaky_relu(float(op.slope))
    return cam


def maximize_2d(model: nn.Module | PiecewiseLinear, output: int = 0, low: float = -1.0,
                high: float = 1.0) -> RegionMaximum:
    """The maximum of output ``output`` over ``[low, high]^2`` (model input shape (1, 2)), from the linear
    regions: the best vertex, its output recomputed in float64."""
    start = time.perf_counter()
    net = _net(model)
    cam = regions(net, low, high)
    vertices = np.asarray(cam.vertex_inputs, dtype=np.float64)
    points = np.clip(low + (vertices + 1) / 2 * (high - low), low, high)
    outputs = net.values(points)[-1]
    if not 0 <= output < outputs.shape[1]:
        raise ValueError(f"output {output} out of range: the network has {outputs.shape[1]} outputs")
    best = int(np.argmax(outputs[:, output]))
    return RegionMaximum(float(outputs[best, output]), points[best], int(cam.num_faces), len(points),
                         time.perf_counter() - start)


def _net(model) -> PiecewiseLinear:
    net = model if isinstance(model, PiecewiseLinear) else trace(model, (2,))
    if net.input_size != 2:
        raise ValueError(f"region enumeration needs a network with 2 inputs, got {net.input_size}")
    return net
