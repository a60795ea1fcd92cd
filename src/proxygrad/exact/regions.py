"""Linear regions of a network with a 2-D input, enumerated exactly with ``regioncam``; the exact maximum over
a square from them.

This module is the one wrapper of ``regioncam`` (``proxygrad.analysis.regions`` counts regions per layer with
it). :func:`partition` maps regioncam's square [-1, 1]^2 onto an input rectangle by a first linear layer, then
adds one regioncam layer per operation of a chain of affine layers and rectifiers, splitting regions where a
rectifier's input changes sign. regioncam works in float32.

A piecewise-linear network is affine on each region, and the maximum of an affine function over a polygon lies
at a vertex, so :func:`maximize_2d` takes the largest output over the vertices, recomputed in float64 by the
network itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

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


@dataclass
class Partition:
    """The linear regions of a network over the rectangle [low[0], high[0]] x [low[1], high[1]].

    ``cam``: the ``regioncam.Regioncam``; its square [-1, 1]^2 is the rectangle (x = center + half * u).
    ``layers[k]``: the regioncam layer holding the output of the network's operation k.
    ``faces[k]``: the number of regions after operation k (1 until a rectifier splits the rectangle).
    """

    cam: object
    low: np.ndarray
    high: np.ndarray
    layers: list[int]
    faces: list[int]

    @property
    def vertices(self) -> np.ndarray:
        """(V, 2) float64 coordinates of the vertices in the input plane."""
        center, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        return center + half * np.asarray(self.cam.vertex_inputs, dtype=np.float64)

    def polygons(self) -> list[np.ndarray]:
        """The regions after the last operation, each (n_i, 2) vertex coordinates in boundary order."""
        vertices = self.vertices
        return [vertices[np.asarray(face.vertex_ids)] for face in self.cam.faces]

    def vertex_values(self, k: int) -> np.ndarray:
        """(V, size) float32 output of operation k at every vertex, as regioncam computes it."""
        return np.asarray(self.cam.vertex_activations(self.layers[k]))


def partition(model: nn.Module | PiecewiseLinear, low: Sequence[float], high: Sequence[float]) -> Partition:
    """The linear regions of a network with 2 inputs over the rectangle ``low`` (2,) to ``high`` (2,).

    Supports chains of affine layers and rectifiers (MLPs, also with BatchNorm); ValueError for max pooling or
    residual adds (use :func:`proxygrad.exact.maximize` for those).
    """
    import regioncam

    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if low.shape != (2,) or high.shape != (2,) or not (np.isfinite(low).all() and np.isfinite(high).all()
                                                       and (low < high).all()):
        raise ValueError(f"the input rectangle needs 2 finite coordinates with low < high, got low={low.tolist()}, "
                         f"high={high.tolist()}")
    net = _net(model)
    cam = regioncam.Regioncam(size=1.0)
    center, half = (low + high) / 2, (high - low) / 2
    cam.linear(np.diag(half).astype(np.float32), center.astype(np.float32))
    layers, faces = [], []
    for k, op in enumerate(net.operations):
        if not isinstance(op, (Affine, Rectifier)) or op.source != k:
            raise ValueError(f"region enumeration handles chains of affine layers and rectifiers; operation {k} "
                             f"is {type(op).__name__} (use proxygrad.exact.maximize, the MILP, instead)")
        if isinstance(op, Affine):
            layers.append(cam.linear(op.weight.T.astype(np.float32), op.bias.astype(np.float32)))
        else:
            layers.append(cam.relu() if op.slope == 0 else cam.leaky_relu(float(op.slope)))
        faces.append(int(cam.num_faces))
    return Partition(cam, low, high, layers, faces)


def regions(model: nn.Module | PiecewiseLinear, low: float = -1.0, high: float = 1.0):
    """The ``regioncam.Regioncam`` partition of ``[low, high]^2`` for a network with 2 inputs (see
    :func:`partition`)."""
    return partition(model, (low, low), (high, high)).cam


def maximize_2d(model: nn.Module | PiecewiseLinear, output: int = 0, low: float = -1.0,
                high: float = 1.0) -> RegionMaximum:
    """The maximum of output ``output`` over ``[low, high]^2`` (model input shape (1, 2)), from the linear
    regions: the best vertex, its output recomputed in float64."""
    start = time.perf_counter()
    net = _net(model)
    outputs = net(np.zeros(2)).shape[0]
    if not 0 <= output < outputs:
        raise ValueError(f"output {output} out of range: the network has {outputs} outputs")
    found = partition(net, (low, low), (high, high))
    points = np.clip(found.vertices, low, high)
    values = net.values(points)[-1][:, output]
    best = int(np.argmax(values))
    return RegionMaximum(float(values[best]), points[best], int(found.cam.num_faces), len(points),
                         time.perf_counter() - start)


def _net(model) -> PiecewiseLinear:
    net = model if isinstance(model, PiecewiseLinear) else trace(model, (2,))
    if net.input_size != 2:
        raise ValueError(f"region enumeration needs a network with 2 inputs, got {net.input_size}")
    return net
