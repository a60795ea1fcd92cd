"""The execution environment of a rendering: the model frozen in eval mode, one CPU intra-op thread for small
batches, and batch-independent (bitwise reproducible) CPU convolution kernels. Each is a context manager
that restores what it changed on exit.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

SMALL_BATCH_VALUES = 2**18  # pixels x channels x images below which a CPU batch runs on one thread


@contextlib.contextmanager
def frozen_eval(model: nn.Module):
    """Eval mode and no weight gradients during rendering; both restored on exit."""
    training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        yield
    finally:
        model.train(training)
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def cpu_threads(device, values: int):
    """One intra-op thread for small CPU batches (``values`` = pixels x channels x images below
    ``SMALL_BATCH_VALUES``): their ops are too short to share, and on a busy machine OpenMP threads waiting
    for each other made a 32x32 render 70 times slower. Restored on exit."""
    before = torch.get_num_threads()
    if torch.device(device).type == "cpu" and values < SMALL_BATCH_VALUES:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def deterministic_cpu(on: bool):
    """When ``on``, turn the CPU's batch-dependent convolution kernels off: oneDNN (without touching its
    TF32 flag, as torch.backends.mkldnn.flags does) and NNPACK (which torch picks for batches of 16 or more;
    slower here, and its results differ from those of smaller batches). Both restored on exit."""
    before = torch._C._get_mkldnn_enabled(), torch._C._get_nnpack_enabled()
    torch._C._set_mkldnn_enabled(before[0] and not on)
    torch._C._set_nnpack_enabled(before[1] and not on)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(before[0])
        torch._C._set_nnpack_enabled(before[1])
