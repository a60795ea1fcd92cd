"""Plots of rendering results (matplotlib's object API: no global state, no display needed)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .files import to_uint8


def image_grid(columns: Mapping[str, torch.Tensor], row_labels: Sequence[str],
               notes: Mapping[str, Sequence[str]] | None = None, cell_inches: float = 1.6) -> Figure:
    """Rows: objectives; columns: methods. ``columns[method]`` is (N, C, H, W) in [-1, 1]; ``notes[method][i]``
    is printed under image i (e.g. its activation)."""
    names = list(columns)
    rows = len(row_labels)
    figure = Figure(figsize=(cell_inches * len(names) + 1.2, cell_inches * rows + 0.4))
    axes = np.asarray(figure.subplots(rows, len(names), squeeze=False))
    for col, method in enumerate(names):
        for row in range(rows):
            ax = axes[row, col]
            pixels = to_uint8(columns[method][row])
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(method, fontsize=9)
            if col == 0:
                ax.set_ylabel(row_labels[row], fontsize=8)
            if notes is not None:
                ax.set_xlabel(notes[method][row], fontsize=7)
    figure.tight_layout()
    return figure


def trace_plot(traces: Mapping[str, tuple[Sequence[int], torch.Tensor]], ylabel: str) -> Figure:
    """Activation vs step: per method, the mean over images (line) and the 10-90% range (band).

    ``traces[method] = (steps (T,), values (N, T))``.
    """
    figure = Figure(figsize=(6, 3.6))
    ax = figure.subplots()
    for method, (steps, values) in traces.items():
        values = values.float().numpy()
        mean = values.mean(0)
        low, high = np.percentile(values, [10, 90], axis=0)
        (line,) = ax.plot(steps, mean, label=method)
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
