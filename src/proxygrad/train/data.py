"""Kept for existing imports (``from proxygrad.train.data import X``): everything lives in
:mod:`proxygrad.train.datasets`, one module per dataset layout plus the shared parts."""
from . import datasets as _datasets
from .datasets import *  # noqa: F403  (the old import path keeps working)

__all__ = list(_datasets.__all__)
