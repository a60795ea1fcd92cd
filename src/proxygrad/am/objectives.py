"""What to maximize: small composable objectives that score each image of a batch.

An objective reads the activations it needs from a :class:`Capture` (a dict from layer name to the tensor
that module output, plus ``"input"``: the images in [-1, 1], and ``"output"``: the model's output) and
returns one score per image, shape (B,). Objectives compose: ``a + b``, ``a - b``, ``2.0 * a``, ``-a``.

Layer names are the model's own module names (``model.named_modules()``), e.g. ``layer4.1.conv2``.
Text form (``parse``): ``3`` or ``logit:3`` or ``class:cat`` (a class logit), ``logsoftmax:3``,
``layer4.1.conv2:17`` (channel mean), ``layer4.1.conv2:17@3,4`` (one neuron at row 3, column 4),
``layer4.1.conv2`` (whole layer, DeepDream: mean of squared activations).
"""
from __future__ import annotations

import difflib
from typing import Callable, Sequence

import torch
import torch.nn as nn
from torch import Tensor

INPUT, OUTPUT = "input", "output"
Capture = dict[str, Tensor]


class Objective:
    """A score per image. Subclasses set ``layers`` (what they read) and implement ``score``."""

    layers: frozenset[str] = frozenset()
    name: str = "objective"

    def score(self, capture: Capture) -> Tensor:
        """Scores (B,) of the B images in ``capture``."""
        raise NotImplementedError

    def __add__(self, other: "Objective") -> "Objective":
        return Sum((self, other)) if isinstance(other, Objective) else NotImplemented

    def __radd__(self, other):  # so that sum([a, b]) works
        return self if other == 0 else NotImplemented

    def __mul__(self, factor: float) -> "Objective":
        return Scaled(self, float(factor))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return Scaled(self, -1.0)

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    def __repr__(self) -> str:
        return self.name


class Sum(Objective):
    def __init__(self, parts: Sequence[Objective]):
        self.parts = tuple(parts)
        self.layers = frozenset().union(*(p.layers for p in self.parts))
        self.name = " + ".join(p.name for p in self.parts)

    def score(self, capture: Capture) -> Tensor:
        return sum(p.score(capture) for p in self.parts)


class Scaled(Objective):
    def __init__(self, inner: Objective, factor: float):
        self.inner, self.factor = inner, factor
        self.layers, self.name = inner.layers, f"{factor:g}*({inner.name})"

    def score(self, capture: Capture) -> Tensor:
        return self.factor * self.inner.score(capture)


class Unit(Objective):
    """One unit of a layer: a channel (mean over space), a neuron (channel at a position), or a logit.

    ``position`` is (row, column) for 4-D activations; None means the mean over all positions.
    """

    def __init__(self, layer: str, channel: int, position: tuple[int, int] | None = None, label: str | None = None):
        self.layer, self.channel, self.position = layer, int(channel), position
        self.layers = frozenset({layer})
        where = f"@{position[0]},{position[1]}" if position is not None else ""
        self.name = label or f"{layer}:{channel}{where}"

    def score(self, capture: Capture) -> Tensor:
        act = capture[self.layer]
        if not 0 <= self.channel < act.shape[1]:
            raise ValueError(f"channel {self.channel} out of range: layer {self.layer!r} has {act.shape[1]} channels")
        unit = act[:, self.channel]
        if self.position is not None:
            if unit.dim() != 3:
                raise ValueError(f"a position needs a spatial layer; {self.layer!r} gives shape {tuple(act.shape)}")
            row, col = self.position
            if not (0 <= row < unit.shape[1] and 0 <= col < unit.shape[2]):
                raise ValueError(f"position {self.position} outside layer {self.layer!r} of size "
                                 f"{tuple(unit.shape[1:])}")
            return unit[:, row, col]
        return unit.flatten(1).mean(1) if unit.dim() > 1 else unit


class LayerEnergy(Objective):
    """DeepDream: the mean of the squared activations of a whole layer."""

    def __init__(self, layer: str):
        self.layer, self.layers, self.name = layer, frozenset({layer}), f"{layer} (deepdream)"

    def score(self, capture: Capture) -> Tensor:
        return capture[self.layer].flatten(1).pow(2).mean(1)


class LogSoftmax(Objective):
    """log p(class | x) from the model's output (seed 002's probabilistic objective)."""

    def __init__(self, index: int, label: str | None = None):
        self.index, self.layers = int(index), frozenset({OUTPUT})
        self.name = f"logsoftmax:{label or index}"

    def score(self, capture: Capture) -> Tensor:
        return torch.log_softmax(capture[OUTPUT].flatten(1), dim=1)[:, self.index]


class ImagePenalty(Objective):
    """``-weight * penalty(x)`` for a per-image penalty of the images in [-1, 1] (L2, total variation)."""

    def __init__(self, penalty: Callable[[Tensor], Tensor], weight: float, name: str):
        self.penalty, self.weight, self.layers = penalty, float(weight), frozenset({INPUT})
        self.name = f"-{weight:g}*{name}"

    def score(self, capture: Capture) -> Tensor:
        return -self.weight * self.penalty(capture[INPUT])


def class_logit(index: int, label: str | None = None) -> Unit:
    return Unit(OUTPUT, index, label=label or f"logit:{index}")


def channel(layer: str, index: int) -> Unit:
    return Unit(layer, index)


def neuron(layer: str, index: int, row: int, col: int) -> Unit:
    return Unit(layer, index, (row, col))


def l2_penalty(weight: float) -> ImagePenalty:
    """-weight * ||x||_2^2 per image (seed 002)."""
    return ImagePenalty(lambda x: x.flatten(1).pow(2).sum(1), weight, "l2")


def parse(text: str, class_names: Sequence[str] | None = None) -> Objective:
    """An objective from its text form (see the module docstring); ValueError naming the valid forms."""
    text = text.strip()
    head, _, tail = text.partition(":")
    if text.isdigit():
        return class_logit(int(text), _label(class_names, int(text)))
    if head in ("logit", "class", "logsoftmax") and tail:
        index = _class_index(tail, class_names)
        label = _label(class_names, index)
        return LogSoftmax(index, label) if head == "logsoftmax" else class_logit(index, label)
    if not tail:
        if not head:
            raise ValueError("empty objective; valid forms: 3, logit:3, class:NAME, logsoftmax:3, LAYER:CH, "
                             "LAYER:CH@ROW,COL, LAYER")
        return LayerEnergy(head)
    index_text, _, where = tail.partition("@")
    try:
        index = int(index_text)
        position = tuple(int(v) for v in where.split(",")) if where else None
    except ValueError:
        raise ValueError(f"cannot read objective {text!r}: expected LAYER:CHANNEL or LAYER:CHANNEL@ROW,COL") from None
    if position is not None and len(position) != 2:
        raise ValueError(f"a neuron position is ROW,COL, got {where!r}")
    return Unit(head, index, position)


def _label(class_names, index: int) -> str:
    if class_names is None:
        return f"logit:{index}"
    return f"class:{class_names[index]}" if 0 <= index < len(class_names) else f"logit:{index}"


def _class_index(key: str, class_names: Sequence[str] | None) -> int:
    if key.lstrip("-").isdigit():
        return int(key)
    if class_names is None:
        raise ValueError(f"class {key!r} given by name, but this model has no class names: use its index")
    names = list(class_names)
    if key in names:
        return names.index(key)
    near = difflib.get_close_matches(key, names, n=5)
    raise ValueError(f"unknown class {key!r}; closest: {near or names[:10]}")


def check_layers(model: nn.Module, objectives: Sequence[Objective]) -> None:
    """ValueError naming the closest valid module names if an objective reads a layer the model lacks."""
    names = dict(model.named_modules())
    for objective in objectives:
        for layer in objective.layers - {INPUT, OUTPUT}:
            if layer not in names:
                near = difflib.get_close_matches(layer, list(names), n=5)
                raise ValueError(f"unknown layer {layer!r}; closest: {near or list(names)[1:20]}")


class Capturer:
    """Forward hooks on the modules of ``model`` named in ``layers`` (``"input"`` and ``"output"`` need none),
    registered once for many forwards (a context manager: registered on enter, removed on exit). Calling it
    runs one forward and returns that forward's capture, so a loop pays for the hooks once, and a compiled
    :attr:`forward` sees the same hooks at every call (no recompilation).

    ``forward(model_input) -> (output, [activation or None per name in names])`` is the traced part; assign a
    compiled version of it to ``capturer.forward`` to compile the network's forward with its captures."""

    def __init__(self, model: nn.Module, layers: frozenset[str]):
        self.model = model
        self.names = sorted(set(layers) - {INPUT, OUTPUT})
        self._store: dict[str, Tensor] = {}
        self._handles: list = []
        self._recording = False  # hooks keep nothing outside this capturer's own calls
        self.forward = self._forward

    def __enter__(self) -> "Capturer":
        modules = dict(self.model.named_modules())
        self._handles = [modules[name].register_forward_hook(self._keep(name)) for name in self.names]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._store.clear()

    def _keep(self, name: str):
        def hook(module, args, output):
            if self._recording:
                self._store[name] = output
        return hook

    def _forward(self, model_input: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        output = self.model(model_input)
        return output, [self._store.get(name) for name in self.names]

    def __call__(self, images: Tensor, model_input: Tensor) -> Capture:
        """The capture of one forward of ``model_input``; ``images`` are the same images in [-1, 1]."""
        self._recording = True
        try:
            output, activations = self.forward(model_input)
        finally:
            self._recording = False
            self._store.clear()  # no references kept between calls
        capture: Capture = {INPUT: images}
        capture.update((n, a) for n, a in zip(self.names, activations) if a is not None)
        capture[OUTPUT] = output
        return capture


def run_and_capture(model: nn.Module, images: Tensor, model_input: Tensor, layers: frozenset[str]) -> Capture:
    """Forward ``model_input`` through ``model``, hooking only the modules in ``layers`` (removed after).

    ``images`` are the same images in [-1, 1] (for image penalties). Returns the capture dict. For many
    forwards, enter one :class:`Capturer` instead (hooks registered once).
    """
    with Capturer(model, layers) as capturer:
        return capturer(images, model_input)


def batch_scores(objectives: Sequence[Objective], capture: Capture) -> Tensor:
    """Score image i with objectives[i]; shape (B,). Plain units on one layer are gathered in one go."""
    first = objectives[0]
    if all(type(o) is Unit and o.layer == first.layer and o.position is None for o in objectives):
        act = capture[first.layer]
        channels = [o.channel for o in objectives]
        if max(channels) >= act.shape[1] or min(channels) < 0:  # Python ints: no device round trip
            raise ValueError(f"channel out of range: layer {first.layer!r} has {act.shape[1]} channels")
        index = torch.tensor(channels).to(act.device, non_blocking=True)
        per_image = act.gather(1, index.view(-1, *([1] * (act.dim() - 1))).expand(-1, 1, *act.shape[2:]))
        return per_image.flatten(1).mean(1)
    rows = {}
    for i, objective in enumerate(objectives):
        rows.setdefault(id(objective), (objective, []))[1].append(i)
    scores = [None] * len(objectives)
    for objective, idx in rows.values():
        values = objective.score(_rows(capture, idx))
        for k, i in enumerate(idx):
            scores[i] = values[k]
    return torch.stack(scores)


def _rows(capture: Capture, idx: list[int]) -> Capture:
    if len(idx) == next(iter(capture.values())).shape[0]:
        return capture
    index = torch.tensor(idx, device=capture[INPUT].device)
    return {k: v.index_select(0, index) for k, v in capture.items()}


def target_class(objective: Objective) -> int | None:
    """The class an objective asks for (a logit or log-softmax of the output), else None."""
    if isinstance(objective, Unit) and objective.layer == OUTPUT:
        return objective.channel
    if isinstance(objective, LogSoftmax):
        return objective.index
    return None
