"""``proxygrad demo``: a one-second demonstration of ProxyGrad on f(x) = sum ReLU(x)."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser("demo", help="a 1-second demonstration of ProxyGrad on sum ReLU(x)")
    parser.add_argument("--pixels", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=10.0)
    parser.add_argument("--slope", type=float, default=0.2)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Gradient ascent on f(x) = sum ReLU(x) from a random start: ReLU gets stuck, ProxyGrad does not."""
    import torch

    import proxygrad

    model = torch.nn.Sequential(torch.nn.ReLU())
    optimum = float(args.pixels)  # all pixels at +1
    print(f"maximize sum ReLU(x) over x in [-1, 1]^{args.pixels}; optimum {optimum:.0f}, "
          f"{args.steps} normalized ascent steps from Gaussian noise")
    for mode, slope in (("relu", 0.0), ("proxygrad", args.slope)):
        x = torch.randn(args.pixels, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
        with proxygrad.patched(model, mode=mode, slope=slope):
            for _ in range(args.steps):
                x.requires_grad_(True)
                (grad,) = torch.autograd.grad(model(x).sum(), x)
                step = grad / grad.norm() if grad.norm() > 0 else grad
                x = (x.detach() + args.lr * step).clamp(-1, 1)
        value = torch.relu(x).sum().item()
        print(f"  {mode:<10} slope {slope:<5} -> {value:8.2f} ({100 * value / optimum:5.1f}% of the optimum)")
    return 0
