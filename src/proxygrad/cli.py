"""The ``proxygrad`` command: one entry point, thin subcommands that parse, call the library, write outputs."""
from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proxygrad", description="Activation maximization with ProxyGrad.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="a 1-second demonstration of ProxyGrad on sum ReLU(x)")
    demo.add_argument("--pixels", type=int, default=1000)
    demo.add_argument("--steps", type=int, default=50)
    demo.add_argument("--lr", type=float, default=10.0)
    demo.add_argument("--slope", type=float, default=0.2)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"proxygrad {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
