"""proxygrad: activation maximization with ProxyGrad (Linse, Barth, Martinetz, IJCNN 2024).

``ProxyGradReLU`` / ``patched`` / ``convert`` change how gradients flow through a model's rectifiers;
``visualize`` renders what its units respond to; ``load`` gets a model with its input spec.
"""
from .surrogates import MODES, PatchRecord, ProxyGradReLU, convert, patched, proxygrad_relu

__version__ = "0.1.0"


def __getattr__(name: str):
    """``visualize`` and ``load`` are imported on first use (they pull in torchvision and the engine)."""
    if name == "visualize":
        from .am.api import visualize

        return visualize
    if name == "load":
        from .models import load

        return load
    raise AttributeError(f"module 'proxygrad' has no attribute {name!r}")


__all__ = ["MODES", "PatchRecord", "ProxyGradReLU", "convert", "load", "patched", "proxygrad_relu", "visualize",
           "__version__"]
