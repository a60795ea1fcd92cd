"""Backward rules with an exact forward, and the machinery to put them into any model."""
from .gates import RULES, GateReLU, gate_relu
from .patch import MODES, NOT_ASCENT, PatchRecord, convert, is_ascent, patched
from .pooling import ProxyMaxPool2d, proxy_max_pool2d
from .rectifier import ProxyGradReLU, proxygrad_relu
from .smooth import SmoothProxy, smooth_proxy

__all__ = ["MODES", "NOT_ASCENT", "RULES", "GateReLU", "PatchRecord", "ProxyGradReLU", "ProxyMaxPool2d", "SmoothProxy",
           "convert", "gate_relu", "is_ascent", "patched", "proxy_max_pool2d", "proxygrad_relu", "smooth_proxy"]
