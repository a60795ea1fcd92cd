"""A trained piecewise-linear network as a short list of operations on flat float64 vectors.

:func:`trace` turns an ``nn.Module`` (traced with ``torch.fx``) into a :class:`PiecewiseLinear` program that
the MILP (:mod:`.milp`) and the 2-D region enumeration (:mod:`.regions`) encode. Value 0 is the input,
flattened (C*H*W,); operation k produces value k + 1; the last value is the network's flattened output.

Operations:
- :class:`Affine`: ``y = W v + b``. Every affine layer (Linear, Conv1d/2d, eval-mode BatchNorm, average and
  adaptive average pooling, flatten, dropout, identity) is measured exactly by pushing the unit vectors through
  a float64 copy of the layer, so its padding, stride and groups are whatever PyTorch does.
- :class:`Rectifier`: ``y = max(v, 0)`` (slope 0) or Leaky ReLU ``y = v if v > 0 else slope * v``.
- :class:`MaxPool`: ``y_i = max_j v[windows[i, j]]`` (index -1: padding, never the max).
- :class:`Add`: ``y = v_a + v_b`` (residual connections).
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from ..surrogates.rectifier import ProxyGradReLU

AFFINE_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool1d, nn.AvgPool2d,
                  nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout, nn.Identity)
AFFINE_FUNCTIONS = (torch.flatten, F.avg_pool2d, F.adaptive_avg_pool2d)
AFFINE_METHODS = ("flatten", "mean", "sum")
RELU_FUNCTIONS = (F.relu, torch.relu)
ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
SUPPORTED = ("Linear, Conv1d/2d, BatchNorm1d/2d (eval), AvgPool, AdaptiveAvgPool, Flatten, Dropout, Identity, "
             "ReLU, LeakyReLU, ProxyGradReLU (its forward), MaxPool2d (modules or functional calls), flatten, mean, "
             "sum, + (residual adds)")


@dataclass(frozen=True)
class Affine:
    """``y = weight @ values[source] + bias``; weight (m, n), bias (m,)."""

    source: int
    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Rectifier:
    """``y = values[source]`` where positive, ``slope * values[source]`` elsewhere (slope 0: ReLU)."""

    source: int
    slope: float


@dataclass(frozen=True)
class MaxPool:
    """``y_i = max_j values[source][windows[i, j]]``; windows (m, k) of int indices, -1 for padding."""

    source: int
    windows: np.ndarray


@dataclass(frozen=True)
class Add:
    """``y = values[a] + values[b]``."""

    a: int
    b: int


Operation = Union[Affine, Rectifier, MaxPool, Add]


@dataclass
class PiecewiseLinear:
    """A network as operations on flat vectors; ``input_shape`` excludes the batch dimension."""

    input_shape: tuple[int, ...]
    operations: list[Operation]

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    def values(self, x: np.ndarray) -> list[np.ndarray]:
        """Every value (float64, shape (B, size)) for inputs ``x`` of shape (B, input_size) or (input_size,);
        the last one is the output."""
        values = [np.asarray(x, dtype=np.float64).reshape(-1, self.input_size)]
        for op in self.operations:
            values.append(apply(op, values))
        return values

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The output (B, m) for inputs (B, ...), or (m,) for one input of ``input_size`` entries."""
        out = self.values(x)[-1]
        return out[0] if np.ndim(x) == 1 or np.size(x) == self.input_size else out


def apply(op: Operation, values: Sequence[np.ndarray]) -> np.ndarray:
    """The value ``op`` computes from earlier ``values`` (float64, each (B, size))."""
    if isinstance(op, Affine):
        return values[op.source] @ op.weight.T + op.bias
    if isinstance(op, Rectifier):
        v = values[op.source]
        return np.where(v > 0, v, op.slope * v)
    if isinstance(op, MaxPool):
        v = values[op.source]
        padded = np.concatenate([v, np.full((len(v), 1), -np.inf)], axis=1)
        return padded[:, op.windows].max(axis=2)
    return values[op.a] + values[op.b]


# ---- tracing -------------------------------------------------------------------------------------------------
def trace(model: nn.Module, input_shape: Sequence[int]) -> PiecewiseLinear:
    """The eval-mode function of ``model`` on inputs of shape (1, *input_shape) as a :class:`PiecewiseLinear`.

    Raises ValueError naming the operation when the model uses something that is not piecewise linear or not
    supported (see ``SUPPORTED``), or when ``torch.fx`` cannot trace it.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if not input_shape or any(s < 1 for s in input_shape):
        raise ValueError(f"input_shape must be positive sizes without the batch dimension, got {input_shape}")
    model = copy.deepcopy(model).double().eval()
    example = torch.zeros(1, *input_shape, dtype=torch.float64)
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as error:
        raise ValueError(f"{type(model).__name__} does not run on inputs of shape (1, *{input_shape}): "
                         f"{error}") from None
    try:
        graph = torch.fx.GraphModule(model, _LeafRectifiers().trace(model))
    except Exception as error:  # torch.fx raises many kinds of errors on data-dependent control flow
        raise ValueError(f"cannot trace {type(model).__name__} with torch.fx ({type(error).__name__}: {error}); "
                         "exact maxima need a network without data-dependent control flow") from None
    ShapeProp(graph).propagate(example)
    tracer = _Tracer(graph, input_shape)
    for node in graph.graph.nodes:
        tracer.visit(node)
    return PiecewiseLinear(input_shape, tracer.operations)


class _LeafRectifiers(torch.fx.Tracer):
    """torch.fx's tracer, keeping ProxyGrad rectifiers (an autograd Function inside) as single module calls."""

    def is_leaf_module(self, module: nn.Module, name: str) -> bool:
        return isinstance(module, ProxyGradReLU) or super().is_leaf_module(module, name)


class _Tracer:
    """Walks an fx graph, giving each tensor node a value index."""

    def __init__(self, graph: torch.fx.GraphModule, input_shape: tuple[int, ...]):
        self.graph, self.input_shape = graph, input_shape
        self.operations: list[Operation] = []
        self.index: dict[torch.fx.Node, int] = {}

    def _emit(self, node: torch.fx.Node, op: Operation) -> None:
        self.operations.append(op)
        self.index[node] = len(self.operations)

    def _source(self, node: torch.fx.Node, arg) -> int:
        if not isinstance(arg, torch.fx.Node) or arg not in self.index:
            raise ValueError(f"{_describe(node)}: expected a tensor computed from the input, got {arg!r}")
        return self.index[arg]

    def visit(self, node: torch.fx.Node) -> None:
        if node.op == "placeholder":
            if self.index:
                raise ValueError("the network must take exactly one input tensor")
            self.index[node] = 0
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, torch.fx.Node) or self.index.get(result) != len(self.operations):
                raise ValueError("the network must return one tensor, computed last")
        elif node.op == "call_module":
            self._module(node, self.graph.get_submodule(node.target))
        elif node.op in ("call_function", "call_method"):
            self._function(node)
        else:
            raise ValueError(f"{_describe(node)} is not supported; supported: {SUPPORTED}")

    def _module(self, node, module: nn.Module) -> None:
        source = self._source(node, node.args[0])
        if type(module) is nn.ReLU:
            self._emit(node, Rectifier(source, 0.0))
        elif type(module) is nn.LeakyReLU:
            self._emit(node, Rectifier(source, float(module.negative_slope)))
        elif type(module) is ProxyGradReLU and module.upper is None:  # converted models: their forward
            self._emit(node, Rectifier(source, float(module.forward_slope)))
        elif type(module) is nn.MaxPool2d:
            self._emit(node, MaxPool(source, _pool_windows(node, module.kernel_size, module.stride,
                                                           module.padding, module.dilation, module.ceil_mode)))
        elif isinstance(module, AFFINE_MODULES):
            self._emit(node, Affine(source, *_measure(node, module)))
        else:
            raise ValueError(f"{_describe(node)} ({type(module).__name__}) is not supported; "
                             f"supported: {SUPPORTED}")

    def _function(self, node) -> None:
        target = node.target
        if target in ADD_FUNCTIONS or target in ("add", "add_", "__add__", "__iadd__"):
            self._add(node)
        elif target in RELU_FUNCTIONS or target in ("relu", "relu_"):
            self._emit(node, Rectifier(self._source(node, node.args[0]), 0.0))
        elif target is F.leaky_relu or target == "leaky_relu":
            slope = node.kwargs.get("negative_slope", node.args[1] if len(node.args) > 1 else 0.01)
            self._emit(node, Rectifier(self._source(node, node.args[0]), float(slope)))
        elif target is F.max_pool2d:
            args = _bind(node, ("input", "kernel_size", "stride", "padding", "dilation",
                                              "ceil_mode", "return_indices"))
            if args.get("return_indices"):
                raise ValueError(f"{_describe(node)}: max_pool2d with return_indices is not supported")
            self._emit(node, MaxPool(self._source(node, node.args[0]), _pool_windows(
                node, args["kernel_size"], args.get("stride") or args["kernel_size"], args.get("padding", 0),
                args.get("dilation", 1), args.get("ceil_mode", False))))
        elif target in AFFINE_FUNCTIONS or target in AFFINE_METHODS:
            self._affine(node)
        else:
            name = getattr(target, "__name__", target)
            raise ValueError(f"{_describe(node)}: {name} is not supported; supported: {SUPPORTED}")

    def _add(self, node) -> None:
        a, b = node.args[:2]
        if isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node):
            if node.kwargs.get("alpha", 1) != 1:
                raise ValueError(f"{_describe(node)}: add with alpha is not supported")
            self._emit(node, Add(self._source(node, a), self._source(node, b)))
        else:  # tensor + constant: affine
            self._affine(node)

    def _affine(self, node) -> None:
        sources = [a for a in node.args if isinstance(a, torch.fx.Node)]
        if len(sources) != 1:
            raise ValueError(f"{_describe(node)}: expected one tensor argument, got {len(sources)}")
        self._emit(node, Affine(self._source(node, sources[0]), *_measure(node, None)))


def _describe(node: torch.fx.Node) -> str:
    return f"operation {node.name!r} ({node.op} {getattr(node.target, '__name__', node.target)})"


def _bind(node, names: Sequence[str]) -> dict:
    args = dict(zip(names, node.args))
    args.update(node.kwargs)
    return args


def _shape(node: torch.fx.Node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def _measure(node: torch.fx.Node, module: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """(weight (m, n), bias (m,)) of an affine node: its output for each unit vector minus its output for 0."""
    source_node = next(a for a in node.args if isinstance(a, torch.fx.Node))
    shape = _shape(source_node)[1:]
    n = int(np.prod(shape))
    basis = torch.cat([torch.zeros(1, n), torch.eye(n)]).double().view(n + 1, *shape)

    def run(x):
        if module is not None:
            return module(x)
        args = [x if a is source_node else a for a in node.args]
        if node.op == "call_method":
            return getattr(x, node.target)(*args[1:], **node.kwargs)
        return node.target(*args, **node.kwargs)

    with torch.no_grad():
        out = run(basis)
    if out.dim() == 0 or out.shape[0] != n + 1 or out[0].numel() != int(np.prod(_shape(node)[1:])):
        raise ValueError(f"{_describe(node)} mixes the batch dimension; it cannot be encoded")
    out = out.reshape(n + 1, -1)
    bias = out[0]
    return (out[1:] - bias).T.numpy().copy(), bias.numpy().copy()


def _pool_windows(node, kernel, stride, padding, dilation, ceil_mode) -> np.ndarray:
    """(outputs, k*k) indices into the flattened (C, H, W) input of a 2-D max pooling; -1 marks padding."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    shape = _shape(node.args[0])[1:]
    if len(shape) != 3:
        raise ValueError(f"{_describe(node)}: max pooling needs a (C, H, W) input, got {shape}")
    channels, height, width = shape
    index = torch.arange(1, channels * height * width + 1, dtype=torch.float64).view(1, channels, height, width)
    kernel, stride, padding, dilation = pair(kernel), pair(stride or kernel), pair(padding), pair(dilation)
    cols = F.unfold(index.view(channels, 1, height, width), kernel, dilation, padding, stride)  # (C, k*k, L)
    out_h, out_w = _shape(node)[2:]
    if ceil_mode or cols.shape[2] != out_h * out_w:
        raise ValueError(f"{_describe(node)}: max pooling with ceil_mode=True is not supported")
    return (cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).round().long() - 1).numpy()
