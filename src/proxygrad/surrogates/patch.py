"""Swap the rectifiers of any ``nn.Module`` for ProxyGrad (or Leaky ReLU) ones, and restore them exactly.

Modes (the paper's Sections 4-5):
- ``relu``: the original network, nothing changed.
- ``leaky``: every rectifier becomes a Leaky ReLU with slope ``slope`` in forward AND backward.
- ``proxygrad``: every rectifier keeps its forward (ReLU: slope 0; Leaky ReLU: its own slope; or
  ``forward_slope`` when given) and uses ``slope`` in the backward pass.

Both ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.ReLU6`` modules (also when one module object is reused at several
places) and functional calls inside ``forward`` (``F.relu``, ``torch.relu``, ``F.relu_``, ``Tensor.relu``,
``F.leaky_relu``, ``F.relu6``, ...) are changed; the latter through a ``TorchFunctionMode`` that is active only
while the model's own ``forward`` runs.
"""
from __future__ import annotations

import contextlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .rectifier import ProxyGradReLU, check_slope, proxygrad_relu

MODES = ("relu", "leaky", "proxygrad")
RECTIFIER_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)


@dataclass
class PatchRecord:
    """What ``patched``/``convert`` changed: module counts at entry, functional calls as they happen."""

    mode: str
    slope: float
    modules: int = 0
    functional_calls: int = 0
    replaced: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.modules + self.functional_calls


def _own_forward_slope(module: nn.Module) -> float:
    return float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0


def _slopes(mode: str, slope: float, own_forward: float, forward_slope: float | None) -> tuple[float, float]:
    """(forward, backward) slope for one rectifier whose own forward slope is ``own_forward``."""
    if mode == "leaky":
        return slope, slope
    return (own_forward if forward_slope is None else forward_slope), slope


def _replacement(module: nn.Module, mode: str, slope: float, forward_slope: float | None) -> ProxyGradReLU:
    fwd, bwd = _slopes(mode, slope, _own_forward_slope(module), forward_slope)
    upper = 6.0 if isinstance(module, nn.ReLU6) else None
    return ProxyGradReLU(backward_slope=bwd, forward_slope=fwd, inplace=module.inplace, upper=upper)


def _swap_modules(model: nn.Module, make: Callable[[nn.Module], nn.Module]) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every rectifier child (by identity, so a reused module maps to one replacement).

    Returns (parent, attribute name, original) triples for restoring, in the order of ``named_modules``.
    """
    replacements: dict[int, nn.Module] = {}
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if type(child) in RECTIFIER_MODULES:
                if id(child) not in replacements:
                    replacements[id(child)] = make(child)
                parent._modules[name] = replacements[id(child)]
                swapped.append((parent, name, child))
    if type(model) in RECTIFIER_MODULES:
        raise ValueError("patched() needs a model that contains rectifiers, not a bare activation module; "
                         "use proxygrad.ProxyGradReLU directly")
    return swapped


def _qualified_names(model: nn.Module, swapped) -> list[str]:
    prefix = {id(m): name for name, m in model.named_modules()}
    return [".".join(p for p in (prefix[id(parent)], name) if p) for parent, name, _ in swapped]


def _restore(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, name, original in reversed(swapped):
        parent._modules[name] = original


_FUNCTIONAL_SOURCE = re.compile(r"\b(relu6?_?|leaky_relu_?|hardtanh)\s*\(")


def _mentions_functional_rectifier(model: nn.Module) -> bool:
    """Whether any ``forward`` in the model's source calls a rectifier function (static check)."""
    for cls in {type(m) for m in model.modules()}:
        try:
            source = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if _FUNCTIONAL_SOURCE.search(source):
            return True
    return False


class _FunctionalRectifiers(TorchFunctionMode):
    """Reroutes functional rectifier calls to ``proxygrad_relu`` with the patch's slopes."""

    def __init__(self, mode: str, slope: float, forward_slope: float | None, record: PatchRecord):
        super().__init__()
        self.mode, self.slope, self.forward_slope, self.record = mode, slope, forward_slope, record
        self.handlers = {
            F.relu: self._relu, torch.relu: self._relu, torch.Tensor.relu: self._relu,
            F.relu_: self._relu_, torch.relu_: self._relu_, torch.Tensor.relu_: self._relu_,
            F.leaky_relu: self._leaky, F.leaky_relu_: self._leaky_,
            F.relu6: self._relu6,
        }

    def _apply(self, x, own_forward, inplace, upper=None):
        self.record.functional_calls += 1
        fwd, bwd = _slopes(self.mode, self.slope, own_forward, self.forward_slope)
        return proxygrad_relu(x, bwd, fwd, inplace=inplace, upper=upper)

    def _relu(self, x, inplace=False):
        return self._apply(x, 0.0, inplace)

    def _relu_(self, x):
        return self._apply(x, 0.0, True)

    def _leaky(self, x, negative_slope=0.01, inplace=False):
        return self._apply(x, float(negative_slope), inplace)

    def _leaky_(self, x, negative_slope=0.01):
        return self._apply(x, float(negative_slope), True)

    def _relu6(self, x, inplace=False):
        return self._apply(x, 0.0, inplace, upper=6.0)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        handler = self.handlers.get(func)
        if handler is None:
            return func(*args, **(kwargs or {}))
        return handler(*args, **(kwargs or {}))


def _attach_functional_mode(model: nn.Module, mode_obj: TorchFunctionMode) -> list:
    """Enter ``mode_obj`` only while ``model.forward`` runs (also exits when forward raises)."""
    depth = [0]

    def enter(module, args):
        if depth[0] == 0:
            mode_obj.__enter__()
        depth[0] += 1

    def leave(module, args, output):
        depth[0] -= 1
        if depth[0] == 0:
            mode_obj.__exit__(None, None, None)

    return [model.register_forward_pre_hook(enter), model.register_forward_hook(leave, always_call=True)]


def _validate(model: nn.Module, mode: str, slope: float) -> float:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return check_slope(slope, "slope")


@contextlib.contextmanager
def patched(model: nn.Module, mode: str = "proxygrad", slope: float = 0.2, *,
            forward_slope: float | None = None, functional: bool = True) -> Iterator[PatchRecord]:
    """Context manager: inside it, ``model`` uses the given mode; on exit it is restored exactly.

    Yields a :class:`PatchRecord`. ``functional=False`` leaves functional calls alone (e.g. for
    ``torch.compile``, which traces modules more cheaply than a TorchFunctionMode).
    Raises ValueError for bad slopes or modes, and when the model has no rectifier to change.
    """
    slope = _validate(model, mode, slope)
    if forward_slope is not None:
        forward_slope = check_slope(forward_slope, "forward_slope")
    record = PatchRecord(mode=mode, slope=slope)
    if mode == "relu":
        yield record
        return
    swapped = _swap_modules(model, lambda m: _replacement(m, mode, slope, forward_slope))
    record.modules = len(swapped)
    record.replaced = _qualified_names(model, swapped)
    handles = []
    try:
        if functional:
            if not swapped and not _mentions_functional_rectifier(model):
                raise ValueError(f"{type(model).__name__} has no ReLU, LeakyReLU or ReLU6 (neither modules nor "
                                 "functional calls in forward): there is nothing for mode "
                                 f"{mode!r} to change")
            handles = _attach_functional_mode(model, _FunctionalRectifiers(mode, slope, forward_slope, record))
        elif not swapped:
            raise ValueError(f"{type(model).__name__} has no ReLU, LeakyReLU or ReLU6 modules to change")
        yield record
    finally:
        for handle in handles:
            handle.remove()
        _restore(swapped)


def convert(model: nn.Module, mode: str = "proxygrad", slope: float = 0.2, *,
            forward_slope: float | None = None) -> PatchRecord:
    """Permanently replace the rectifier modules of ``model`` (in place) and return the record.

    Functional calls inside ``forward`` cannot be converted permanently: use :func:`patched` for models that
    use them (a ValueError says so when a model has no rectifier modules at all).
    """
    slope = _validate(model, mode, slope)
    if forward_slope is not None:
        forward_slope = check_slope(forward_slope, "forward_slope")
    record = PatchRecord(mode=mode, slope=slope)
    if mode == "relu":
        return record
    swapped = _swap_modules(model, lambda m: _replacement(m, mode, slope, forward_slope))
    if not swapped:
        hint = " (its forward calls rectifier functions: use proxygrad.patched)" if \
            _mentions_functional_rectifier(model) else ""
        raise ValueError(f"{type(model).__name__} has no ReLU, LeakyReLU or ReLU6 modules to convert{hint}")
    record.modules, record.replaced = len(swapped), _qualified_names(model, swapped)
    return record
