"""ProxyGrad for 2-D max pooling: the exact forward of ``max_pool2d``, a backward that shares each window's
gradient over all of its inputs.

Max pooling passes each window's gradient dy to one input, the window's maximum: the others get nothing and
gradient ascent never learns that raising them would raise the output. The proxies, for a window W with
inputs x_j (padding excluded) and incoming gradient dy_W; an input's gradient sums over the windows that
contain it (windows overlap when stride < kernel):

- ``softmax`` (temperature t > 0, in the units of the pooled activations):
  dx_j = sum_W dy_W * softmax_W(x / t)_j -- the gradient of the smooth maximum t * logsumexp(x_W / t), which
  tends to max pooling's gradient as t -> 0 and to average pooling's as t -> infinity.
- ``share`` (share s >= 0): dx_j = sum_W dy_W * (1 if j is W's maximum, else s) -- the maximum keeps the whole
  gradient as in max pooling (the same input torch picks among ties), every other input gets the share s,
  as a Leaky ReLU's negative slope; s = 0 is max pooling's own gradient.

The forward is torch's own ``max_pool2d`` (or ``max_pool2d_with_indices``), so outputs are bit-identical. The
softmax variant saves the input for backward; the share variant the input's shape and the argmax indices
(torch's own max pooling saves the input and the indices). Backward runs in float32 for half-precision inputs.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .rectifier import check_slope

VARIANTS = ("softmax", "share")
# Picked by ``proxygrad beyond`` (docs/proxies.md): softmax at t = 0.5 closed the most of the optimality gap
# on two small max-pooling CNNs, alone and on top of ProxyGrad.
DEFAULT_VARIANT = "softmax"
DEFAULT_TEMPERATURE = 0.5
DEFAULT_SHARE = 0.2


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) == 1:
        pair = pair * 2
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def pool_geometry(kernel_size, stride=None, padding=0, dilation=1) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, padding, dilation) as pairs; an empty or None stride means ``kernel_size``."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride, "stride")
    return kernel, stride, _pair(padding, "padding"), _pair(dilation, "dilation")


def check_proxy(variant: str, temperature: float, share: float) -> tuple[float, float]:
    """Validated (temperature, share): ValueError for an unknown variant, t <= 0 or not finite, or a bad share."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown pooling proxy variant {variant!r}; valid: {', '.join(VARIANTS)}")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}") from None
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return temperature, check_slope(share, "share")


def _padded_extent(size: int, out: int, kernel: int, stride: int, padding: int, dilation: int) -> tuple[int, int]:
    """(extra padding after the input, padded length) so that ``out`` windows tile the padded input exactly."""
    needed = (out - 1) * stride + dilation * (kernel - 1) + 1
    return max(0, needed - size - 2 * padding), needed


def _fold_geometry(x_shape, out_hw, geometry):
    """Padding of (H, W) for F.pad (left, right, top, bottom) and the padded (H, W) the windows cover."""
    kernel, stride, padding, dilation = geometry
    (extra_h, need_h), (extra_w, need_w) = (
        _padded_extent(x_shape[-2 + i], out_hw[i], kernel[i], stride[i], padding[i], dilation[i]) for i in range(2))
    pad = (padding[1], padding[1] + extra_w, padding[0], padding[0] + extra_h)
    return pad, (need_h, need_w)


def _spread(weights: Tensor, grad: Tensor, x_shape, pad, padded_hw, geometry) -> Tensor:
    """Sum of ``weights * dy`` over windows back onto the input: weights (N, C, K, L), grad (N, C, L)."""
    kernel, stride, _, dilation = geometry
    n, c, k, length = weights.shape
    cols = (weights * grad[:, :, None, :]).reshape(n, c * k, length)
    full = F.fold(cols, padded_hw, kernel, dilation=dilation, padding=0, stride=stride)
    top, left = pad[2], pad[0]
    # Rows and columns that no window reaches (floor mode) get no gradient.
    short = (max(0, left + x_shape[-1] - padded_hw[1]), max(0, top + x_shape[-2] - padded_hw[0]))
    full = F.pad(full, (0, short[0], 0, short[1]))
    return full[..., top:top + x_shape[-2], left:left + x_shape[-1]]


def _windows(x: Tensor, pad, padded_hw, geometry) -> Tensor:
    """Every window's inputs, (N, C, K, L), padding as -inf."""
    kernel, stride, _, dilation = geometry
    xp = F.pad(x, pad, value=-math.inf)[..., :padded_hw[0], :padded_hw[1]]
    n, c = xp.shape[:2]
    cols = F.unfold(xp.reshape(n * c, 1, *padded_hw), kernel, dilation=dilation, padding=0, stride=stride)
    return cols.reshape(n, c, cols.shape[1], cols.shape[2])


def _forward(x: Tensor, geometry, ceil_mode: bool, indices: bool):
    kernel, stride, padding, dilation = geometry
    if indices:
        return torch._C._nn.max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode)
    return torch.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)


class _ProxyMaxPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, geometry, ceil_mode, return_indices, variant, temperature, share):
        with torch._C.DisableTorchFunction():
            need_indices = return_indices or variant == "share"
            result = _forward(x, geometry, ceil_mode, need_indices)
        y, idx = result if need_indices else (result, None)
        ctx.geometry, ctx.ceil_mode, ctx.variant = geometry, ceil_mode, variant
        ctx.temperature, ctx.share, ctx.x_shape = temperature, share, x.shape
        ctx.channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous()
        if variant == "softmax":
            ctx.save_for_backward(x)
        else:
            ctx.save_for_backward(idx)
        if return_indices:
            ctx.mark_non_differentiable(idx)
            return y, idx
        return y

    @staticmethod
    def backward(ctx, grad_output, *_):
        (saved,) = ctx.saved_tensors
        batched = len(ctx.x_shape) == 4
        grad = grad_output if batched else grad_output.unsqueeze(0)
        x_shape = ctx.x_shape if batched else (1, *ctx.x_shape)
        pad, padded_hw = _fold_geometry(x_shape, grad.shape[-2:], ctx.geometry)
        n, c = grad.shape[:2]
        work = torch.promote_types(grad.dtype, torch.float32)  # float32 for half precision
        dy = grad.to(work).reshape(n, c, -1)
        if ctx.variant == "softmax":
            x = saved if batched else saved.unsqueeze(0)
            weights = torch.softmax(_windows(x.to(work), pad, padded_hw, ctx.geometry) / ctx.temperature, dim=2)
            dx = _spread(weights, dy, x_shape, pad, padded_hw, ctx.geometry)
        else:
            indices = saved if batched else saved.unsqueeze(0)
            k = ctx.geometry[0][0] * ctx.geometry[0][1]
            ones = dy.new_ones(n, c, k, dy.shape[-1])
            dx = ctx.share * _spread(ones, dy, x_shape, pad, padded_hw, ctx.geometry)
            winner = torch.zeros(n, c, x_shape[-2] * x_shape[-1], dtype=dy.dtype, device=dy.device)
            winner.scatter_add_(2, indices.reshape(n, c, -1), dy)
            dx = dx + (1 - ctx.share) * winner.view(n, c, *x_shape[-2:])
        dx = dx.to(grad_output.dtype)
        if ctx.channels_last:
            dx = dx.contiguous(memory_format=torch.channels_last)
        return (dx if batched else dx.squeeze(0)), None, None, None, None, None, None


def proxy_max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
                     return_indices: bool = False, *, variant: str = DEFAULT_VARIANT,
                     temperature: float = DEFAULT_TEMPERATURE, share: float = DEFAULT_SHARE):
    """``F.max_pool2d`` with a proxy backward (module docstring). ``x``: (N, C, H, W) or (C, H, W), floating.

    Returns the pooled tensor, and the argmax indices (flat in H * W, as torch's) when ``return_indices``.
    ``temperature`` is used by the softmax variant, ``share`` by the share variant.
    """
    temperature, share = check_proxy(variant, temperature, share)
    if x.dim() not in (3, 4):
        raise ValueError(f"max pooling needs a (N, C, H, W) or (C, H, W) input, got shape {tuple(x.shape)}")
    geometry = pool_geometry(kernel_size, stride, padding, dilation)
    return _ProxyMaxPoolFunction.apply(x, geometry, bool(ceil_mode), bool(return_indices), variant, temperature,
                                       share)


class ProxyMaxPool2d(nn.Module):
    """Drop-in replacement for ``nn.MaxPool2d`` with a proxy backward; same arguments plus the proxy's."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False, *, variant: str = DEFAULT_VARIANT,
                 temperature: float = DEFAULT_TEMPERATURE, share: float = DEFAULT_SHARE):
        super().__init__()
        self.temperature, self.share = check_proxy(variant, temperature, share)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode, self.variant = return_indices, ceil_mode, variant

    @classmethod
    def like(cls, module: nn.MaxPool2d, **proxy) -> "ProxyMaxPool2d":
        """The proxy of an ``nn.MaxPool2d`` with its geometry; ``proxy``: variant, temperature, share."""
        return cls(module.kernel_size, module.stride, module.padding, module.dilation, module.return_indices,
                   module.ceil_mode, **proxy)

    def forward(self, x: Tensor):
        return proxy_max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                                self.return_indices, variant=self.variant, temperature=self.temperature,
                                share=self.share)

    def extra_repr(self) -> str:
        proxy = f"temperature={self.temperature}" if self.variant == "softmax" else f"share={self.share}"
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}, variant={self.variant}, {proxy}")
