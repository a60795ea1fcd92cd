"""The paper's reference implementation (Appendix 11.4), kept verbatim for comparison only.

It keeps the whole input on ``ctx`` (a full-size copy's worth of memory when the next layer would not have
kept it anyway, and a stale value when used in place) and mutates the incoming gradient in place.
Use :class:`proxygrad.ProxyGradReLU` instead; benchmarks/ measure the difference.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class PaperProxyGradFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.x = x
        ctx.negative_slope = negative_slope
        return F.relu(x)

    @staticmethod
    def backward(ctx, grad_output):
        mask = ctx.x < 0.0
        grad_output[mask] *= ctx.negative_slope
        return grad_output, None


class PaperProxyGradReLU(nn.Module):
    """Appendix 11.4's module: ReLU forward, Leaky ReLU (``negative_slope``) backward."""

    def __init__(self, negative_slope: float):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return PaperProxyGradFunction.apply(x, self.negative_slope)
