"""ProxyGrad for smooth activations: the exact forward of GELU, SiLU, Mish, ELU or Hardswish, a proxy backward.

Each of these functions f has a derivative f'(x) that vanishes (or turns negative) for negative x: GELU's is
negative below x ~ -0.75 and tends to 0, SiLU's below x ~ -1.28, Mish's below x ~ -1.19, Hardswish's on
[-3, -1.5) and 0 below -3, ELU's is alpha * exp(x) > 0 but tends to 0: strongly negative inputs pass little
gradient, or gradient of the wrong sign. The proxy derivative g(x) replaces f'(x) in the backward pass
(``dx = dy * g(x)``); the forward stays bit-identical to torch's own function. (Measured on nine tiny digits
networks, no variant beat the plain gradient on average: see docs/proxies.md.) Variants, for slope s >= 0:

- ``floor``: g(x) = max(f'(x), s) for x < 0, f'(x) for x >= 0. At least s wherever the input is negative.
- ``add``:   g(x) = f'(x) + s for x < 0, f'(x) for x >= 0. The derivative of f(x) + s * min(x, 0) (a "leaky"
  f, as Leaky ReLU is ReLU + s * min(x, 0)); may still be negative where f'(x) < -s.
- ``leaky``: g(x) = 1 for x > 0, s for x <= 0. The ProxyGrad derivative of the ReLU that f approximates,
  ignoring f's own derivative.

f'(x) is torch's own backward kernel (``aten.*_backward`` with an upstream gradient of ones), so where the
proxy keeps f'(x) the gradient is torch's up to the rounding of one multiplication. At Hardswish's kinks torch
uses 0 at x = -3 and 1 at x = 3. The input is saved for backward, as torch's own GELU, SiLU, Mish and
Hardswish do (an in-place call saves a copy of the input, as torch's autograd does for in-place SiLU).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .rectifier import check_slope

FUNCTIONS = ("gelu", "silu", "mish", "elu", "hardswish")
VARIANTS = ("floor", "add", "leaky")
# Picked by ``proxygrad beyond`` (docs/proxies.md): the least harmful setting on nine tiny digits networks; no
# variant or slope beat the plain gradient on average there.
DEFAULT_VARIANT = "add"
DEFAULT_SLOPE = 0.05
GELU_APPROXIMATIONS = ("none", "tanh")
MODULE_FUNCTIONS = {nn.GELU: "gelu", nn.SiLU: "silu", nn.Mish: "mish", nn.ELU: "elu", nn.Hardswish: "hardswish"}
# timm's own GELU modules call F.gelu; matched by qualified name so that this module needs only torch.
TIMM_GELU = {"timm.layers.activations.GELU": "none", "timm.layers.activations.GELUTanh": "tanh"}


def _check(function: str, variant: str, param) -> None:
    if function not in FUNCTIONS:
        raise ValueError(f"unknown smooth activation {function!r}; valid: {', '.join(FUNCTIONS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown smooth proxy variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if function == "gelu" and param not in GELU_APPROXIMATIONS:
        raise ValueError(f"GELU approximate must be one of {GELU_APPROXIMATIONS}, got {param!r}")
    if function == "elu" and not (isinstance(param, (int, float)) and math.isfinite(param)):
        raise ValueError(f"ELU alpha must be a finite number, got {param!r}")


def default_param(function: str):
    """The function's own parameter when none is given: GELU's ``approximate="none"``, ELU's ``alpha=1.0``."""
    return {"gelu": "none", "elu": 1.0}.get(function)


def original(x: Tensor, function: str, param=None, inplace: bool = False) -> Tensor:
    """torch's own function: ``F.gelu(x, approximate=param)``, ``F.elu(x, alpha=param)``, ``F.silu``, ..."""
    param = default_param(function) if param is None else param
    if function == "gelu":
        return F.gelu(x, approximate=param)
    if function == "elu":
        return F.elu(x, param, inplace=inplace)
    return {"silu": F.silu, "mish": F.mish, "hardswish": F.hardswish}[function](x, inplace=inplace)


def derivative(x: Tensor, function: str, param=None) -> Tensor:
    """f'(x) as torch's backward computes it (same shape and dtype as ``x``)."""
    param = default_param(function) if param is None else param
    ones, aten = torch.ones_like(x), torch.ops.aten
    if function == "gelu":
        return aten.gelu_backward(ones, x, approximate=param)
    if function == "elu":
        return aten.elu_backward(ones, float(param), 1.0, 1.0, False, x)
    return {"silu": aten.silu_backward, "mish": aten.mish_backward,
            "hardswish": aten.hardswish_backward}[function](ones, x)


def proxy_derivative(x: Tensor, function: str, variant: str = DEFAULT_VARIANT, slope: float = DEFAULT_SLOPE,
                     param=None) -> Tensor:
    """g(x), the proxy derivative of the module docstring; same shape and dtype as ``x``."""
    param = default_param(function) if param is None else param
    _check(function, variant, param)
    if variant == "leaky":
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))
    d = derivative(x, function, param)
    negative = x < 0
    if variant == "floor":
        return torch.where(negative, d.clamp(min=slope), d)
    return torch.where(negative, d + slope, d)


class _SmoothProxyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, function, param, variant, slope, inplace):
        # The ops below must not be seen by the functional-interception mode of ``patched``.
        with torch._C.DisableTorchFunction():
            saved = x.clone() if inplace else x
            if inplace:
                ctx.mark_dirty(x)
            y = original(x, function, param, inplace)
        ctx.save_for_backward(saved)
        ctx.settings = (function, variant, slope, param)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        function, variant, slope, param = ctx.settings
        return grad_output * proxy_derivative(x, function, variant, slope, param), None, None, None, None, None


def smooth_proxy(x: Tensor, function: str, variant: str = DEFAULT_VARIANT, slope: float = DEFAULT_SLOPE, param=None,
                 inplace: bool = False) -> Tensor:
    """Functional smooth proxy: forward ``original(x, function, param)``, backward ``dy * g(x)``.

    ``function``: one of FUNCTIONS; ``param``: GELU's ``approximate`` ("none" | "tanh") or ELU's ``alpha``
    (None: the function's default). Any shape and floating dtype; returns a tensor like ``x``.
    """
    param = default_param(function) if param is None else param
    _check(function, variant, param)
    slope = check_slope(slope, "slope")
    return _SmoothProxyFunction.apply(x, function, param, variant, slope, inplace and function != "gelu")


class SmoothProxy(nn.Module):
    """Drop-in replacement for ``nn.GELU`` / ``nn.SiLU`` / ``nn.Mish`` / ``nn.ELU`` / ``nn.Hardswish``."""

    def __init__(self, function: str, variant: str = DEFAULT_VARIANT, slope: float = DEFAULT_SLOPE, param=None,
                 inplace: bool = False):
        super().__init__()
        self.param = default_param(function) if param is None else param
        _check(function, variant, self.param)
        self.function, self.variant, self.inplace = function, variant, inplace
        self.slope = check_slope(slope, "slope")

    @classmethod
    def like(cls, module: nn.Module, variant: str = DEFAULT_VARIANT, slope: float = DEFAULT_SLOPE) -> "SmoothProxy":
        """The proxy of one activation module (torch's, or timm's GELU / GELUTanh), keeping its parameters."""
        qualified = f"{type(module).__module__}.{type(module).__qualname__}"
        if qualified in TIMM_GELU:
            return cls("gelu", variant, slope, TIMM_GELU[qualified])
        function = MODULE_FUNCTIONS.get(type(module))
        if function is None:
            raise ValueError(f"{type(module).__name__} is not a smooth activation module; valid: "
                             f"{', '.join(t.__name__ for t in MODULE_FUNCTIONS)}")
        param = {"gelu": getattr(module, "approximate", None), "elu": getattr(module, "alpha", None)}.get(function)
        return cls(function, variant, slope, param, inplace=getattr(module, "inplace", False))

    def forward(self, x: Tensor) -> Tensor:
        return _SmoothProxyFunction.apply(x, self.function, self.param, self.variant, self.slope,
                                          self.inplace and self.function != "gelu")

    def extra_repr(self) -> str:
        text = f"{self.function}, variant={self.variant}, slope={self.slope}"
        text += f", param={self.param!r}" if self.param is not None else ""
        return text + (", inplace=True" if self.inplace else "")
