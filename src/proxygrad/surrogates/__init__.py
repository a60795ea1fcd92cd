"""Backward rules with an exact forward, and the machinery to put them into any model."""
from .patch import MODES, PatchRecord, convert, patched
from .rectifier import ProxyGradReLU, proxygrad_relu

__all__ = ["MODES", "PatchRecord", "ProxyGradReLU", "convert", "patched", "proxygrad_relu"]
