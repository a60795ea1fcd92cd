"""The ProxyGrad rectifier: an exact ReLU / Leaky ReLU forward with a Leaky ReLU backward.

Forward:  y = leaky_relu(x, forward_slope)                      (plain ReLU when forward_slope == 0)
          optionally capped at ``upper`` (ReLU6-style: y = min(y, upper) for forward_slope == 0)
Backward: dx = dy * 1               where the input was inside the rectifier's linear part (0 < x [< upper])
          dx = dy * backward_slope  elsewhere, INCLUDING x == 0 exactly (as torch's own Leaky ReLU does,
                                    and as the paper's Table 2 writes it: max((f > 0), s) * R).

Only the output is saved for backward (what ``torch.relu`` itself saves): since both slopes are >= 0,
``y > 0`` exactly when ``x > 0``, so the input is never kept. The incoming gradient is never mutated.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

_warned_steep = False


def check_slope(value: float, name: str) -> float:
    """Return ``value`` as a float; ValueError if NaN, infinite or negative; one warning if above 1."""
    global _warned_steep
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number >= 0, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if value > 1 and not _warned_steep:
        _warned_steep = True
        warnings.warn(f"{name}={value} is above 1: negative inputs then pass more gradient than positive ones",
                      stacklevel=3)
    return value


def rectify(x: torch.Tensor, forward_slope: float, upper: float | None, inplace: bool) -> torch.Tensor:
    """The exact forward of the rectifier being replaced (ReLU, Leaky ReLU, ReLU6 or its leaky form)."""
    if upper is None:
        if forward_slope == 0.0:
            return torch.relu_(x) if inplace else torch.relu(x)
        return F.leaky_relu(x, forward_slope, inplace=inplace)
    if forward_slope == 0.0:
        return F.hardtanh(x, 0.0, upper, inplace=inplace)
    # Leaky ReLU6: slope forward_slope below 0 and above ``upper``, identity in between.
    y = torch.where(x < 0, x * forward_slope, torch.where(x > upper, upper + (x - upper) * forward_slope, x))
    return x.copy_(y) if inplace else y


class _ProxyGradFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, forward_slope, backward_slope, upper, inplace):
        # The ops below must not be seen by the functional-interception mode of ``patched``.
        with torch._C.DisableTorchFunction():
            if inplace:
                ctx.mark_dirty(x)
            y = rectify(x, forward_slope, upper, inplace)
        ctx.save_for_backward(y)
        ctx.backward_slope, ctx.upper = backward_slope, upper
        return y

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        if ctx.upper is None:
            # One fused kernel: y > 0 ? grad : grad * slope (``y > 0`` iff ``x > 0`` since slopes are >= 0).
            grad = torch.ops.aten.leaky_relu_backward(grad_output, y, ctx.backward_slope, True)
        else:
            linear = (y > 0) & (y < ctx.upper)
            grad = torch.where(linear, grad_output, grad_output * ctx.backward_slope)
        return grad, None, None, None, None


def proxygrad_relu(x: torch.Tensor, backward_slope: float, forward_slope: float = 0.0, inplace: bool = False,
                   upper: float | None = None) -> torch.Tensor:
    """Functional ProxyGrad rectifier; any shape and floating dtype; returns a tensor like ``x``.

    ``upper`` caps the output (6.0 for ReLU6); the backward slope then also applies above the cap.
    """
    check_slope(backward_slope, "backward_slope")
    check_slope(forward_slope, "forward_slope")
    return _ProxyGradFunction.apply(x, float(forward_slope), float(backward_slope), upper, inplace)


class ProxyGradReLU(nn.Module):
    """Drop-in replacement for ``nn.ReLU`` / ``nn.LeakyReLU`` / ``nn.ReLU6`` with a separate backward slope.

    With ``forward_slope == backward_slope`` it is exactly a Leaky ReLU (forward and backward).
    """

    def __init__(self, backward_slope: float, forward_slope: float = 0.0, inplace: bool = False,
                 upper: float | None = None):
        super().__init__()
        self.backward_slope = check_slope(backward_slope, "backward_slope")
        self.forward_slope = check_slope(forward_slope, "forward_slope")
        if upper is not None and not (math.isfinite(upper) and upper > 0):
            raise ValueError(f"upper must be a finite number > 0 or None, got {upper!r}")
        self.inplace, self.upper = inplace, upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ProxyGradFunction.apply(x, self.forward_slope, self.backward_slope, self.upper, self.inplace)

    def extra_repr(self) -> str:
        text = f"backward_slope={self.backward_slope}, forward_slope={self.forward_slope}"
        text += f", upper={self.upper}" if self.upper is not None else ""
        return text + (", inplace=True" if self.inplace else "")
