"""Draw the figures of docs/proxies.md into docs/img/ from the library's own proxy functions.

    python docs/make_proxy_plots.py            # writes docs/img/smooth_proxies.png and docs/img/pooling_proxies.png
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure

from proxygrad.report.files import write_figure
from proxygrad.surrogates import smooth
from proxygrad.surrogates.pooling import proxy_max_pool2d

OUT = Path(__file__).resolve().parent / "img"
SLOPE = 0.1
CASES = [("gelu", "none", "GELU"), ("silu", None, "SiLU"), ("mish", None, "Mish"), ("elu", 1.0, "ELU"),
         ("hardswish", None, "Hardswish")]


def smooth_figure() -> Figure:
    """Top row: f(x) with ReLU for reference; bottom row: f'(x) and the three proxy derivatives at s = 0.1."""
    x = torch.linspace(-5, 4, 901, dtype=torch.float64)
    figure = Figure(figsize=(15, 5.6))
    axes = figure.subplots(2, len(CASES), sharex=True)
    for j, (function, param, title) in enumerate(CASES):
        top, bottom = axes[0, j], axes[1, j]
        top.plot(x, torch.relu(x), color="lightgray", lw=2, label="ReLU")
        top.plot(x, smooth.original(x, function, param), color="black", label=title)
        top.set_title(f"{title}: forward (unchanged)", fontsize=9)
        bottom.plot(x, smooth.derivative(x, function, param), color="black", lw=2.2, label="f'(x) (original)")
        for variant, style in zip(smooth.VARIANTS, ("-", "--", ":")):
            bottom.plot(x, smooth.proxy_derivative(x, function, variant, SLOPE, param), ls=style, lw=1.4,
                        label=f"{variant}, s = {SLOPE:g}")
        bottom.axhline(0, color="gray", lw=0.6)
        bottom.set_title(f"{title}: backward", fontsize=9)
        bottom.set_xlabel("x")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        if j == 0:
            top.legend(fontsize=7)
            bottom.legend(fontsize=7)
    figure.tight_layout()
    return figure


def pooling_figure() -> Figure:
    """The gradient each input of one 2x2 window receives (dy = 1) under max pooling and the proxies."""
    window = torch.tensor([[[[1.0, 0.7], [-0.4, 0.2]]]], dtype=torch.float64)
    methods = [("max pooling", {"variant": "share", "share": 0.0}),
               ("softmax t = 0.1", {"variant": "softmax", "temperature": 0.1}),
               ("softmax t = 0.5", {"variant": "softmax", "temperature": 0.5}),
               ("softmax t = 2", {"variant": "softmax", "temperature": 2.0}),
               ("share s = 0.1", {"variant": "share", "share": 0.1}),
               ("share s = 0.3", {"variant": "share", "share": 0.3})]
    figure = Figure(figsize=(9, 3.2))
    ax = figure.subplots()
    labels = [f"x = {v:g}" for v in window.flatten().tolist()]
    width = 0.8 / len(methods)
    for i, (name, kwargs) in enumerate(methods):
        x = window.clone().requires_grad_(True)
        proxy_max_pool2d(x, 2, **kwargs).sum().backward()
        ax.bar([k + i * width for k in range(4)], x.grad.flatten().tolist(), width, label=name)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(4)], labels)
    ax.set_ylabel("gradient received (dy = 1)")
    ax.set_title("One 2x2 max-pooling window with values 1, 0.7, -0.4, 0.2: forward max = 1 in every case",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, axis="y")
    figure.tight_layout()
    return figure


def main(out: Path = OUT) -> int:
    for name, figure in (("smooth_proxies.png", smooth_figure()), ("pooling_proxies.png", pooling_figure())):
        print(write_figure(out / name, figure))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
