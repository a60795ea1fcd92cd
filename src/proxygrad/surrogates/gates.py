"""The field's other backward surrogates for rectifiers (ReLU, Leaky ReLU, ReLU6), with an exact forward.

With z the rectifier's input, y its output, g the gradient of the objective being MAXIMISED w.r.t. y, a the
rectifier's own forward slope (0 for ReLU) and f'(z) its own derivative (1 in the linear part, a outside):

- ``redirected`` (Lucid): ordinary = g * f'(z). Every image (index along dim 0) whose ordinary gradient is 0
  everywhere gets instead g where the unit is in its linear part or where g would move z back into it
  (z < 0 and g > 0; for ReLU6 also z > 6 and g < 0), 0 elsewhere. Other images keep the ordinary gradient.
- ``redirected-captum`` (Captum optim): the same per-image test; fallback g * (1 inside, 0.1 outside).
- ``softgate`` (excitation pullbacks, Satkiewicz 2025): g * sigmoid(z / t), temperature t > 0. In general the
  derivative of the rectifier with each kink smoothed as t * softplus(. / t): Leaky ReLU a + (1 - a) sigmoid(z / t);
  ReLU6 = relu(z) - relu(z - 6) gives sigmoid(z / t) - sigmoid((z - 6) / t) (0.5 at z = 0 and z = 6, t -> 0:
  the hard gate 1[0 < z < 6]); its leaky form a + (1 - a) times that.
- ``guided`` (guided backpropagation): g * f'(z) * 1[g > 0]. Not an ascent direction (see ``NOT_ASCENT``).

Kinks count as outside (z = 0, and z = 6 for ReLU6), as in torch's own ReLU and ReLU6 backward and in
``ProxyGradReLU``; Lucid and Captum count them as inside (a set of measure zero). Captum tests the whole batch
at once, Lucid each image (as here); Lucid also switches the rule off after 16 steps, which is left to the caller.

Memory: the hard rules save only the output y, which fixes the region since a >= 0 (y <= 0 iff z <= 0; y >= 6
iff z >= 6); the sign of g then decides the fallback. ``softgate`` saves the input z (a copy when in place).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .rectifier import rectify, check_slope

RULES = ("redirected", "redirected-captum", "softgate", "guided")
NOT_ASCENT = ("guided",)
CAPTUM_SLOPE = 0.1
_RECTIFIERS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6)


def check_rule(rule: str) -> str:
    """Return ``rule``; ValueError listing :data:`RULES` if it is not one of them."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    return rule


def check_temperature(value: float) -> float:
    """Return the softgate temperature as a float; ValueError unless finite and > 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a finite number > 0, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {value!r}")
    return value


def _check_upper(upper: float | None) -> float | None:
    if upper is not None and not (math.isfinite(upper) and upper > 0):
        raise ValueError(f"upper must be a finite number > 0 or None, got {upper!r}")
    return None if upper is None else float(upper)


# ---- backward rules: g -> dz, all shapes like g; fused aten backward kernels where one fits -----------------
_aten = torch.ops.aten


def _ordinary(g: torch.Tensor, y: torch.Tensor, slope: float, upper: float | None) -> torch.Tensor:
    """g * f'(z) from the output y: g inside, g * slope outside (exact zeros for slope 0, as torch's own)."""
    if upper is None:
        return _aten.threshold_backward(g, y, 0.0) if slope == 0.0 else _aten.leaky_relu_backward(g, y, slope, True)
    if slope == 0.0:
        return _aten.hardtanh_backward(g, y, 0.0, upper)
    return torch.where((y > 0) & (y < upper), g, g * slope)


def _alive(ordinary: torch.Tensor) -> torch.Tensor:
    """Bool, broadcastable to ``ordinary``: whether each image (dim 0) has a nonzero ordinary gradient."""
    if ordinary.dim() <= 1:
        return ordinary != 0
    return (ordinary.flatten(1).abs().amax(1) > 0).view((-1,) + (1,) * (ordinary.dim() - 1))


def _redirected(g: torch.Tensor, y: torch.Tensor, upper: float | None) -> torch.Tensor:
    """Lucid's fallback: g inside; below only g > 0, above (ReLU6) only g < 0; 0 elsewhere."""
    if upper is None:  # g > 0 everywhere, g <= 0 only inside (y > 0)
        return g.clamp(min=0) + _aten.threshold_backward(g.clamp(max=0), y, 0.0)
    return torch.where(y <= 0, g.clamp(min=0), torch.where(y >= upper, g.clamp(max=0), g))


def _captum(g: torch.Tensor, y: torch.Tensor, upper: float | None) -> torch.Tensor:
    """Captum's fallback: g inside, g * 0.1 outside."""
    if upper is None:
        return _aten.leaky_relu_backward(g, y, CAPTUM_SLOPE, True)
    return torch.where((y > 0) & (y < upper), g, g * CAPTUM_SLOPE)


def _hard(rule: str, g: torch.Tensor, y: torch.Tensor, slope: float, upper: float | None) -> torch.Tensor:
    """``redirected``, ``redirected-captum`` and ``guided`` from the saved output y (y <= 0 iff z <= 0)."""
    ordinary = _ordinary(g, y, slope, upper)
    if rule == "guided":
        return _aten.threshold_backward(ordinary, g, 0.0)  # 0 where g <= 0
    fallback = _redirected(g, y, upper) if rule == "redirected" else _captum(g, y, upper)
    return torch.where(_alive(ordinary), ordinary, fallback)


def soft_gate(z: torch.Tensor, temperature: float, slope: float = 0.0, upper: float | None = None) -> torch.Tensor:
    """The softgate factor for input z (any shape, any floating dtype), values in [slope, 1] for slope <= 1."""
    gate = torch.sigmoid(z / temperature)
    if upper is not None:
        gate = gate - torch.sigmoid((z - upper) / temperature)
    return gate if slope == 0.0 else slope + (1.0 - slope) * gate


class _GateFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rule, forward_slope, upper, temperature, inplace):
        # The ops below must not be seen by the functional-interception mode of ``patched``.
        with torch._C.DisableTorchFunction():
            z = (x.clone() if inplace else x) if rule == "softgate" else None
            if inplace:
                ctx.mark_dirty(x)
            y = rectify(x, forward_slope, upper, inplace)
        ctx.save_for_backward(y if z is None else z)
        ctx.rule, ctx.slope, ctx.upper, ctx.temperature = rule, forward_slope, upper, temperature
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (saved,) = ctx.saved_tensors
        if ctx.rule == "softgate":
            grad = grad_output * soft_gate(saved, ctx.temperature, ctx.slope, ctx.upper)
        else:
            grad = _hard(ctx.rule, grad_output, saved, ctx.slope, ctx.upper)
        return grad, None, None, None, None, None


def gate_relu(x: torch.Tensor, rule: str, temperature: float = 1.0, forward_slope: float = 0.0,
              inplace: bool = False, upper: float | None = None) -> torch.Tensor:
    """Functional rectifier with backward ``rule``; any shape (dim 0 = images), floating dtype; returns like ``x``.

    The forward is exactly ReLU (``forward_slope`` 0) / Leaky ReLU; ``upper=6.0`` gives ReLU6.
    ``temperature`` is used by ``softgate`` only (in the units of z).
    """
    rule = check_rule(rule)
    temperature = check_temperature(temperature)
    forward_slope = check_slope(forward_slope, "forward_slope")
    return _GateFunction.apply(x, rule, forward_slope, _check_upper(upper), temperature, inplace)


class GateReLU(nn.Module):
    """Drop-in replacement for ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.ReLU6`` with backward ``rule`` (:data:`RULES`)."""

    def __init__(self, rule: str, temperature: float = 1.0, forward_slope: float = 0.0, inplace: bool = False,
                 upper: float | None = None):
        super().__init__()
        self.rule = check_rule(rule)
        self.temperature = check_temperature(temperature)
        self.forward_slope = check_slope(forward_slope, "forward_slope")
        self.inplace, self.upper = inplace, _check_upper(upper)

    @classmethod
    def like(cls, module: nn.Module, rule: str, temperature: float = 1.0,
             forward_slope: float | None = None) -> "GateReLU":
        """The replacement of a ReLU / LeakyReLU / ReLU6 module: its own slope (or ``forward_slope``), inplace, cap."""
        if not isinstance(module, _RECTIFIERS):
            raise ValueError(f"GateReLU.like needs an nn.ReLU, nn.LeakyReLU or nn.ReLU6, got {type(module).__name__}")
        own = float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
        upper = 6.0 if isinstance(module, nn.ReLU6) else None
        slope = own if forward_slope is None else forward_slope
        return cls(rule, temperature, slope, inplace=module.inplace, upper=upper)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GateFunction.apply(x, self.rule, self.forward_slope, self.upper, self.temperature, self.inplace)

    def extra_repr(self) -> str:
        text = f"rule={self.rule!r}, forward_slope={self.forward_slope}"
        text += f", temperature={self.temperature}" if self.rule == "softgate" else ""
        text += f", upper={self.upper}" if self.upper is not None else ""
        return text + (", inplace=True" if self.inplace else "")
