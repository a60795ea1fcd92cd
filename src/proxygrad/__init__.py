"""proxygrad: activation maximization with ProxyGrad (Linse, Barth, Martinetz, IJCNN 2024)."""
from .surrogates import MODES, PatchRecord, ProxyGradReLU, convert, patched, proxygrad_relu

__version__ = "0.1.0"
__all__ = ["MODES", "PatchRecord", "ProxyGradReLU", "convert", "patched", "proxygrad_relu", "__version__"]
