"""Swap the rectifiers (and, on request, smooth activations and max poolings) of any ``nn.Module`` for their
ProxyGrad versions, and restore them exactly.

Modes (the paper's Sections 4-5):
- ``relu``: the original network, nothing changed.
- ``leaky``: every rectifier becomes a Leaky ReLU with slope ``slope`` in forward AND backward (rectifiers only).
- ``proxygrad``: every changed operation keeps its forward and uses a proxy backward: rectifiers keep their
  forward slope (ReLU: 0; Leaky ReLU: its own; or ``forward_slope`` when given) and use ``slope`` backward.
- ``redirected``, ``redirected-captum``, ``softgate``, ``guided``: the field's other backward rules for
  rectifiers (rectifiers only; :mod:`.gates`), forward unchanged; ``softgate`` uses ``temperature``.
  ``guided`` is not an ascent direction: :func:`is_ascent` says so (:data:`NOT_ASCENT`).

Kinds (``kinds=``; default ``("rectifiers",)``, ``"all"`` for every kind):
- ``rectifiers``: ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.ReLU6`` and ``F.relu``, ``torch.relu``, ``F.relu_``,
  ``Tensor.relu``, ``F.leaky_relu``, ``F.relu6``, ... (:mod:`.rectifier`).
- ``smooth``: ``nn.GELU`` / ``nn.SiLU`` / ``nn.Mish`` / ``nn.ELU`` / ``nn.Hardswish`` (and timm's GELU modules)
  and ``F.gelu``, ``F.silu``, ``F.mish``, ``F.elu``, ``F.elu_``, ``F.hardswish``: proxy derivative
  ``smooth_variant`` with slope ``smooth_slope`` (:mod:`.smooth`).
- ``pooling``: ``nn.MaxPool2d`` and ``F.max_pool2d``, ``F.max_pool2d_with_indices``, ``torch.max_pool2d``
  (so also timm's ``MaxPool2dSame``, which calls ``F.max_pool2d``): ``pool_variant`` "softmax" (temperature
  ``pool_temperature``) or "share" (share ``pool_share``) (:mod:`.pooling`).

``slope`` is the rectifiers' backward slope; each other kind has its own parameters, whose defaults are the
settings that measured best in ``proxygrad beyond`` (docs/proxies.md).

Modules are replaced by identity (one module object reused at several places maps to one replacement);
functional calls inside ``forward`` are rerouted by a ``TorchFunctionMode`` that is active only while the
model's own ``forward`` runs.
"""
from __future__ import annotations

import contextlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import gates, pooling, smooth
from .gates import NOT_ASCENT, GateReLU, gate_relu
from .pooling import ProxyMaxPool2d, proxy_max_pool2d
from .rectifier import ProxyGradReLU, check_slope, proxygrad_relu
from .smooth import SmoothProxy, smooth_proxy

MODES = ("relu", "leaky", "proxygrad") + gates.RULES
KINDS = ("rectifiers", "smooth", "pooling")
RECTIFIER_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)
SMOOTH_MODULES = tuple(smooth.MODULE_FUNCTIONS)
POOLING_MODULES = (nn.MaxPool2d,)
_KIND_NAMES = {"rectifiers": "ReLU, LeakyReLU or ReLU6", "smooth": "GELU, SiLU, Mish, ELU or Hardswish",
               "pooling": "MaxPool2d"}
_PROXY_CLASSES = {"rectifiers": "proxygrad.ProxyGradReLU (or proxygrad.surrogates.GateReLU)",
                  "smooth": "proxygrad.surrogates.smooth.SmoothProxy",
                  "pooling": "proxygrad.surrogates.pooling.ProxyMaxPool2d"}


@dataclass
class PatchRecord:
    """What ``patched``/``convert`` changed: module counts at entry, functional calls as they happen; totals
    and per kind (``modules_by_kind``, ``calls_by_kind``; see :meth:`by_kind`)."""

    mode: str
    slope: float
    modules: int = 0
    functional_calls: int = 0
    replaced: list[str] = field(default_factory=list)
    kinds: tuple[str, ...] = ("rectifiers",)
    modules_by_kind: dict[str, int] = field(default_factory=dict)
    calls_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.modules + self.functional_calls

    def count_call(self, kind: str) -> None:
        self.functional_calls += 1
        self.calls_by_kind[kind] = self.calls_by_kind.get(kind, 0) + 1

    def by_kind(self) -> dict[str, dict[str, int]]:
        """{kind: {"modules": n, "functional_calls": n}} for every selected kind."""
        return {k: {"modules": self.modules_by_kind.get(k, 0), "functional_calls": self.calls_by_kind.get(k, 0)}
                for k in self.kinds}


@dataclass(frozen=True)
class _Settings:
    """Validated arguments of one ``patched``/``convert`` call."""

    mode: str
    slope: float
    forward_slope: float | None
    kinds: tuple[str, ...]
    smooth_variant: str
    smooth_slope: float
    pool_variant: str
    pool_temperature: float
    pool_share: float
    temperature: float = 1.0

    @property
    def pool(self) -> dict:
        return {"variant": self.pool_variant, "temperature": self.pool_temperature, "share": self.pool_share}


def is_ascent(mode: str) -> bool:
    """Whether ``mode``'s gradient is meant as an ascent direction of the objective (False for ``guided``,
    which drops every negative signal at every rectifier). ValueError for an unknown mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return mode not in NOT_ASCENT


def module_kind(module: nn.Module) -> str | None:
    """"rectifiers", "smooth" or "pooling" for a module ``patched`` can replace (by exact type), else None."""
    kind = type(module)
    if kind in RECTIFIER_MODULES:
        return "rectifiers"
    if kind in SMOOTH_MODULES or f"{kind.__module__}.{kind.__qualname__}" in smooth.TIMM_GELU:
        return "smooth"
    return "pooling" if kind in POOLING_MODULES else None


def _own_forward_slope(module: nn.Module) -> float:
    return float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0


def _slopes(mode: str, slope: float, own_forward: float, forward_slope: float | None) -> tuple[float, float]:
    """(forward, backward) slope for one rectifier whose own forward slope is ``own_forward``."""
    if mode == "leaky":
        return slope, slope
    return (own_forward if forward_slope is None else forward_slope), slope


def _replacement(module: nn.Module, s: _Settings) -> nn.Module | None:
    """The proxy of ``module``, or None when its kind is not selected (or it is nothing ``patched`` changes)."""
    kind = module_kind(module)
    if kind not in s.kinds:
        return None
    if kind == "smooth":
        return SmoothProxy.like(module, s.smooth_variant, s.smooth_slope)
    if kind == "pooling":
        return ProxyMaxPool2d.like(module, **s.pool)
    if s.mode in gates.RULES:
        return GateReLU.like(module, s.mode, s.temperature, s.forward_slope)
    fwd, bwd = _slopes(s.mode, s.slope, _own_forward_slope(module), s.forward_slope)
    upper = 6.0 if isinstance(module, nn.ReLU6) else None
    return ProxyGradReLU(backward_slope=bwd, forward_slope=fwd, inplace=module.inplace, upper=upper)


def _swap_modules(model: nn.Module, make: Callable[[nn.Module], nn.Module | None],
                  kinds: Sequence[str]) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every child for which ``make`` gives a module (by identity: a reused module maps to one
    replacement). Returns (parent, attribute name, original) triples for restoring, in ``modules()`` order."""
    if module_kind(model) in kinds:
        kind = module_kind(model)
        raise ValueError(f"patched() needs a model that contains {kind}, not a bare {type(model).__name__} "
                         f"module; use {_PROXY_CLASSES[kind]} directly")
    replacements: dict[int, nn.Module | None] = {}
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if id(child) not in replacements:
                replacements[id(child)] = make(child)
            if replacements[id(child)] is not None:
                parent._modules[name] = replacements[id(child)]
                swapped.append((parent, name, child))
    return swapped


def _qualified_names(model: nn.Module, swapped) -> list[str]:
    prefix = {id(m): name for name, m in model.named_modules()}
    return [".".join(p for p in (prefix[id(parent)], name) if p) for parent, name, _ in swapped]


def _restore(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    for parent, name, original in reversed(swapped):
        parent._modules[name] = original


def _count_modules(record: PatchRecord, model: nn.Module, swapped) -> None:
    record.modules = len(swapped)
    record.replaced = _qualified_names(model, swapped)
    for _, _, original in swapped:
        kind = module_kind(original)
        record.modules_by_kind[kind] = record.modules_by_kind.get(kind, 0) + 1


_FUNCTIONAL_SOURCE = {
    "rectifiers": re.compile(r"\b(relu6?_?|leaky_relu_?|hardtanh)\s*\("),
    "smooth": re.compile(r"\b(gelu|silu|mish|elu_?|hardswish)\s*\("),
    "pooling": re.compile(r"\bmax_pool2d(_with_indices)?\s*\("),
}


def _mentions_functional(model: nn.Module, kinds: Sequence[str] = ("rectifiers",)) -> bool:
    """Whether any ``forward`` in the model's source calls a function of the given kinds (static check)."""
    for cls in {type(m) for m in model.modules()}:
        try:
            source = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if any(_FUNCTIONAL_SOURCE[k].search(source) for k in kinds):
            return True
    return False


def _mentions_functional_rectifier(model: nn.Module) -> bool:
    """Whether any ``forward`` in the model's source calls a rectifier function (static check)."""
    return _mentions_functional(model, ("rectifiers",))


class _FunctionalProxies(TorchFunctionMode):
    """Reroutes functional calls of the selected kinds to their proxies with the patch's settings."""

    def __init__(self, settings: _Settings, record: PatchRecord):
        super().__init__()
        self.s, self.record = settings, record
        self.handlers: dict = {}
        if "rectifiers" in settings.kinds:
            self.handlers.update({
                F.relu: self._relu, torch.relu: self._relu, torch.Tensor.relu: self._relu,
                F.relu_: self._relu_, torch.relu_: self._relu_, torch.Tensor.relu_: self._relu_,
                F.leaky_relu: self._leaky, F.leaky_relu_: self._leaky_,
                F.relu6: self._relu6,
            })
        if "smooth" in settings.kinds:
            self.handlers.update({F.gelu: self._gelu, F.silu: self._silu, F.mish: self._mish,
                                  F.hardswish: self._hardswish, F.elu: self._elu, F.elu_: self._elu_})
        if "pooling" in settings.kinds:
            self.handlers.update({F.max_pool2d: self._max_pool, torch.max_pool2d: self._max_pool,
                                  F.max_pool2d_with_indices: self._max_pool_with_indices})

    # ---- rectifiers --------------------------------------------------------------------------------------
    def _apply(self, x, own_forward, inplace, upper=None):
        self.record.count_call("rectifiers")
        fwd, bwd = _slopes(self.s.mode, self.s.slope, own_forward, self.s.forward_slope)
        if self.s.mode in gates.RULES:
            return gate_relu(x, self.s.mode, self.s.temperature, fwd, inplace=inplace, upper=upper)
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

    # ---- smooth activations ------------------------------------------------------------------------------
    def _smooth(self, x, function, param=None, inplace=False):
        self.record.count_call("smooth")
        return smooth_proxy(x, function, self.s.smooth_variant, self.s.smooth_slope, param, inplace)

    def _gelu(self, x, approximate="none"):
        return self._smooth(x, "gelu", approximate)

    def _silu(self, x, inplace=False):
        return self._smooth(x, "silu", inplace=inplace)

    def _mish(self, x, inplace=False):
        return self._smooth(x, "mish", inplace=inplace)

    def _hardswish(self, x, inplace=False):
        return self._smooth(x, "hardswish", inplace=inplace)

    def _elu(self, x, alpha=1.0, inplace=False):
        return self._smooth(x, "elu", float(alpha), inplace)

    def _elu_(self, x, alpha=1.0):
        return self._smooth(x, "elu", float(alpha), True)

    # ---- max pooling -------------------------------------------------------------------------------------
    def _max_pool(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                  return_indices=False):
        self.record.count_call("pooling")
        return proxy_max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, **self.s.pool)

    def _max_pool_with_indices(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                               return_indices=True):
        return self._max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, True)

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


def check_kinds(kinds) -> tuple[str, ...]:
    """``kinds`` ("all", one kind, or a sequence of KINDS) as a tuple without repeats; ValueError otherwise."""
    if isinstance(kinds, str):
        kinds = KINDS if kinds == "all" else (kinds,)
    try:
        kinds = tuple(dict.fromkeys(kinds))
    except TypeError:
        raise ValueError(f"kinds must be a sequence of {KINDS} (or 'all'), got {kinds!r}") from None
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty selection of {KINDS} (or 'all'), got {kinds!r}")
    return kinds


def check_settings(mode: str, slope: float, forward_slope: float | None = None, kinds=("rectifiers",),
                   smooth_variant: str = smooth.DEFAULT_VARIANT, smooth_slope: float = smooth.DEFAULT_SLOPE,
                   pool_variant: str = pooling.DEFAULT_VARIANT, pool_temperature: float = pooling.DEFAULT_TEMPERATURE,
                   pool_share: float = pooling.DEFAULT_SHARE, temperature: float = 1.0) -> _Settings:
    """The arguments of ``patched``/``convert`` (without the model), checked; ValueError for bad ones."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    slope = check_slope(slope, "slope")
    if forward_slope is not None:
        forward_slope = check_slope(forward_slope, "forward_slope")
    temperature = gates.check_temperature(temperature)
    kinds = check_kinds(kinds)
    if mode == "leaky" and set(kinds) - {"rectifiers"}:
        raise ValueError("mode 'leaky' changes the forward pass and is defined for rectifiers only; use "
                         "mode='proxygrad' for smooth activations and pooling, or kinds=('rectifiers',)")
    if mode in gates.RULES and set(kinds) - {"rectifiers"}:
        raise ValueError(f"mode {mode!r} is a backward rule for rectifiers only; use mode='proxygrad' for "
                         "smooth activations and pooling, or kinds=('rectifiers',)")
    if smooth_variant not in smooth.VARIANTS:
        raise ValueError(f"smooth_variant must be one of {smooth.VARIANTS}, got {smooth_variant!r}")
    smooth_slope = check_slope(smooth_slope, "smooth_slope")
    pool_temperature, pool_share = pooling.check_proxy(pool_variant, pool_temperature, pool_share)
    return _Settings(mode, slope, forward_slope, kinds, smooth_variant, smooth_slope, pool_variant,
                     pool_temperature, pool_share, temperature)


def proxy_settings(kinds=("rectifiers",), smooth_variant: str | None = None, smooth_slope: float | None = None,
                   pool_variant: str | None = None, pool_temperature: float | None = None,
                   pool_share: float | None = None) -> dict:
    """What ``patched`` uses for these kinds, defaults filled in (None: the default), for records:
    {"kinds": [in KINDS order], plus smooth_variant/smooth_slope and pool_variant with its temperature or
    share for the kinds selected}."""
    kinds = check_kinds(kinds)

    def pick(value, default):
        return default if value is None else value

    settings: dict = {"kinds": [k for k in KINDS if k in kinds]}
    if "smooth" in kinds:
        settings.update(smooth_variant=pick(smooth_variant, smooth.DEFAULT_VARIANT),
                        smooth_slope=float(pick(smooth_slope, smooth.DEFAULT_SLOPE)))
    if "pooling" in kinds:
        settings["pool_variant"] = pick(pool_variant, pooling.DEFAULT_VARIANT)
        if settings["pool_variant"] == "softmax":
            settings["pool_temperature"] = float(pick(pool_temperature, pooling.DEFAULT_TEMPERATURE))
        else:
            settings["pool_share"] = float(pick(pool_share, pooling.DEFAULT_SHARE))
    return settings


def _validate(model: nn.Module, mode: str, slope: float, *args, **kwargs) -> _Settings:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return check_settings(mode, slope, *args, **kwargs)


def _nothing_message(model: nn.Module, s: _Settings, what: str) -> str:
    names = "; ".join(_KIND_NAMES[k] for k in s.kinds)
    return f"{type(model).__name__} has no {names} {what}: there is nothing for mode {s.mode!r} to change"


@contextlib.contextmanager
def patched(model: nn.Module, mode: str = "proxygrad", slope: float = 0.2, *, forward_slope: float | None = None,
            functional: bool = True, kinds: Sequence[str] | str = ("rectifiers",),
            smooth_variant: str = smooth.DEFAULT_VARIANT, smooth_slope: float = smooth.DEFAULT_SLOPE,
            pool_variant: str = pooling.DEFAULT_VARIANT, pool_temperature: float = pooling.DEFAULT_TEMPERATURE,
            pool_share: float = pooling.DEFAULT_SHARE, temperature: float = 1.0) -> Iterator[PatchRecord]:
    """Context manager: inside it, ``model`` uses the given mode; on exit it is restored exactly.

    Yields a :class:`PatchRecord`. ``kinds`` selects what changes (module docstring); the per-kind settings
    are ``smooth_variant`` / ``smooth_slope`` and ``pool_variant`` / ``pool_temperature`` / ``pool_share``
    (defaults: the measured best, see docs/proxies.md). ``temperature`` (> 0, in units of the rectifiers'
    inputs) is mode ``softgate``'s; the gate modes ignore ``slope``. ``functional=False`` leaves functional
    calls alone (e.g. for ``torch.compile``, which traces modules more cheaply than a TorchFunctionMode).
    Raises ValueError for bad arguments, and when the model has nothing of the selected kinds to change.
    """
    s = _validate(model, mode, slope, forward_slope, kinds, smooth_variant, smooth_slope, pool_variant,
                  pool_temperature, pool_share, temperature)
    record = PatchRecord(mode=mode, slope=s.slope, kinds=s.kinds)
    if mode == "relu":
        yield record
        return
    swapped = _swap_modules(model, lambda m: _replacement(m, s), s.kinds)
    _count_modules(record, model, swapped)
    handles = []
    try:
        if functional:
            if not swapped and not _mentions_functional(model, s.kinds):
                raise ValueError(_nothing_message(model, s, "(neither modules nor functional calls in forward)"))
            handles = _attach_functional_mode(model, _FunctionalProxies(s, record))
        elif not swapped:
            raise ValueError(_nothing_message(model, s, "modules"))
        yield record
    finally:
        for handle in handles:
            handle.remove()
        _restore(swapped)


def convert(model: nn.Module, mode: str = "proxygrad", slope: float = 0.2, *, forward_slope: float | None = None,
            kinds: Sequence[str] | str = ("rectifiers",), smooth_variant: str = smooth.DEFAULT_VARIANT,
            smooth_slope: float = smooth.DEFAULT_SLOPE, pool_variant: str = pooling.DEFAULT_VARIANT,
            pool_temperature: float = pooling.DEFAULT_TEMPERATURE, pool_share: float = pooling.DEFAULT_SHARE,
            temperature: float = 1.0) -> PatchRecord:
    """Permanently replace the modules of the selected kinds in ``model`` (in place) and return the record.

    Functional calls inside ``forward`` cannot be converted permanently: use :func:`patched` for models that
    use them (a ValueError says so when a model has no module of the selected kinds at all).
    """
    s = _validate(model, mode, slope, forward_slope, kinds, smooth_variant, smooth_slope, pool_variant,
                  pool_temperature, pool_share, temperature)
    record = PatchRecord(mode=mode, slope=s.slope, kinds=s.kinds)
    if mode == "relu":
        return record
    swapped = _swap_modules(model, lambda m: _replacement(m, s), s.kinds)
    if not swapped:
        hint = " (its forward calls such functions: use proxygrad.patched)" if \
            _mentions_functional(model, s.kinds) else ""
        names = "; ".join(_KIND_NAMES[k] for k in s.kinds)
        raise ValueError(f"{type(model).__name__} has no {names} modules to convert{hint}")
    _count_modules(record, model, swapped)
    return record
