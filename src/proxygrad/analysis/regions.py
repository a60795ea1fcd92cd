"""Linear regions of MLPs with 2-D inputs (seed 003): exact counts per layer (``regioncam``, through
:func:`proxygrad.exact.regions.partition`), a grid-sampling estimate, and dead units.

The networks are ``nn.Sequential`` stacks of ``nn.Linear`` layers, each hidden one followed by ``nn.ReLU``,
``nn.LeakyReLU`` or ``ProxyGradReLU``; only the forward pass matters (a ProxyGrad-trained ReLU network has
ReLU regions). Regions are counted inside a rectangle of the input plane (:class:`Box`).

What is counted: the *activation regions* after hidden layer l are the connected pieces of the box on which the
on/off pattern (pre-activation > 0) of every unit of layers 1..l is constant. Each is a convex polygon and the
network is affine on it; neighbouring regions can, rarely, carry the same affine function (e.g. when a unit's
output is ignored downstream), so this is the usual upper bound on the number of linear pieces, as in seed 003
and Hanin & Rolnick (2019). For Leaky ReLU (slope > 0) every pattern change is a genuine kink.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..exact.network import Affine, Rectifier, trace
from ..exact.regions import partition
from ..surrogates import ProxyGradReLU


@dataclass(frozen=True)
class Box:
    """The rectangle [low[0], high[0]] x [low[1], high[1]] of the input plane."""

    low: tuple[float, float]
    high: tuple[float, float]

    def __post_init__(self):
        if not all(h > lo for lo, h in zip(self.low, self.high)):
            raise ValueError(f"a box needs low < high in both coordinates, got low={self.low}, high={self.high}")

    @property
    def center(self) -> np.ndarray:
        return (np.asarray(self.low) + np.asarray(self.high)) / 2

    @property
    def half(self) -> np.ndarray:
        return (np.asarray(self.high) - np.asarray(self.low)) / 2

    def grid(self, resolution: int) -> np.ndarray:
        """Centres of a ``resolution`` x ``resolution`` grid of equal cells: (resolution**2, 2)."""
        axes = [lo + (np.arange(resolution) + 0.5) * (h - lo) / resolution for lo, h in zip(self.low, self.high)]
        xx, yy = np.meshgrid(*axes, indexing="xy")
        return np.stack([xx.ravel(), yy.ravel()], axis=1)


def box_around(points: np.ndarray, margin: float = 0.1) -> Box:
    """The bounding box of ``points`` (N, 2), widened by ``margin`` times its size on every side."""
    points = np.asarray(points, dtype=float)
    low, high = points.min(0), points.max(0)
    pad = margin * (high - low)
    return Box(tuple((low - pad).tolist()), tuple((high + pad).tolist()))


def _forward_slope(module: nn.Module) -> float | None:
    """The negative slope of a rectifier's forward pass (None if ``module`` is not a plain rectifier)."""
    if type(module) is nn.ReLU:
        return 0.0
    if type(module) is nn.LeakyReLU:
        return float(module.negative_slope)
    if isinstance(module, ProxyGradReLU) and module.upper is None:
        return module.forward_slope
    return None


def hidden_layers(model: nn.Sequential) -> list[tuple[nn.Linear, float]]:
    """(linear layer, forward negative slope of the rectifier after it) for every hidden layer of an MLP
    ``Linear, act, Linear, act, ..., [Linear]`` with 2 inputs (act: ``nn.ReLU`` (0), ``nn.LeakyReLU`` or
    ``ProxyGradReLU``: only the forward pass shapes the regions)."""
    modules = list(model)
    layers = []
    for i in range(0, len(modules) - 1, 2):
        linear, act = modules[i], modules[i + 1]
        if not isinstance(linear, nn.Linear) or _forward_slope(act) is None:
            raise ValueError("expected an nn.Sequential of Linear layers each followed by ReLU, LeakyReLU or "
                             f"ProxyGradReLU (optionally ending with a Linear layer), got {model}")
        layers.append((linear, _forward_slope(act)))
    tail = modules[len(layers) * 2:]
    if not layers or len(tail) > 1 or (tail and not isinstance(tail[0], nn.Linear)):
        raise ValueError(f"expected Linear/activation pairs and at most one final Linear layer, got {model}")
    if layers[0][0].in_features != 2:
        raise ValueError(f"linear regions are counted for 2-D inputs; the first layer takes "
                         f"{layers[0][0].in_features}")
    return layers


def _forward_network(model: nn.Sequential) -> nn.Sequential:
    """A CPU copy of ``model``'s hidden layers, each rectifier replaced by the plain module of its forward pass
    (``nn.LeakyReLU(slope)``; slope 0 is ReLU)."""
    return nn.Sequential(*(m for linear, slope in hidden_layers(model)
                           for m in (copy.deepcopy(linear).cpu(), nn.LeakyReLU(slope))))


@dataclass
class RegionMesh:
    """Exact regions of an MLP in a box.

    ``counts[l]``: number of activation regions after hidden layer l+1 (1 before any unit splits the box).
    ``polygons``: the regions after the last hidden layer, each (n_i, 2) vertex coordinates in input space,
    in boundary order. ``max_preactivation[l]``: (units,) maximum over the box of each unit's pre-activation in
    hidden layer l+1 (a unit with maximum <= 0 is never active anywhere in the box).
    """

    counts: list[int]
    polygons: list[np.ndarray]
    max_preactivation: list[np.ndarray]


def exact_regions(model: nn.Sequential, box: Box) -> RegionMesh:
    """The exact region mesh of ``model``'s hidden layers in ``box``, enumerated by ``regioncam``."""
    net = trace(_forward_network(model), (2,))
    found = partition(net, box.low, box.high)
    operations = list(enumerate(net.operations))
    return RegionMesh(counts=[found.faces[k] for k, op in operations if isinstance(op, Rectifier)],
                      polygons=found.polygons(),
                      max_preactivation=[found.vertex_values(k).max(0) for k, op in operations
                                         if isinstance(op, Affine)])


@torch.no_grad()
def activation_patterns(model: nn.Sequential, points: np.ndarray) -> list[np.ndarray]:
    """On/off patterns (pre-activation > 0) of every hidden layer at ``points`` (N, 2): list of bool (N, units)."""
    layers = hidden_layers(model)
    x = torch.as_tensor(np.asarray(points), dtype=layers[0][0].weight.dtype, device=layers[0][0].weight.device)
    patterns = []
    for linear, slope in layers:
        pre = linear(x)
        patterns.append((pre > 0).cpu().numpy())
        x = torch.nn.functional.leaky_relu(pre, slope)
    return patterns


def sampled_regions(model: nn.Sequential, box: Box, resolution: int = 256) -> list[int]:
    """Grid-sampling estimate: distinct activation patterns of layers 1..l over the centres of a
    ``resolution`` x ``resolution`` grid, for each hidden layer l. A lower bound of the exact count: each
    region has one pattern, and regions that no grid point falls into are missed."""
    if resolution < 1:
        raise ValueError(f"resolution must be a positive number of grid cells per side, got {resolution}")
    patterns = activation_patterns(model, box.grid(resolution))
    return [_distinct_rows(np.concatenate(patterns[:l + 1], axis=1)) for l in range(len(patterns))]


def _distinct_rows(bits: np.ndarray) -> int:
    """Number of distinct rows of a bool array (N, units)."""
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))
    return len(np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel()))


def dead_units(model: nn.Sequential, points: np.ndarray) -> list[int]:
    """Units never active (pre-activation <= 0) at any of ``points`` (N, 2), per hidden layer. For a ReLU (or
    ProxyGrad-trained) network their output is 0 there and their ReLU passes no gradient: the unit is dead on
    the data. For Leaky ReLU the unit still passes slope-scaled values and gradients."""
    return [int((~p).all(0).sum()) for p in activation_patterns(model, points)]
