"""The ``proxygrad`` command: one entry point; the subcommands live in ``proxygrad.commands``."""
from __future__ import annotations

import argparse
import sys

from .commands import register_all


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="proxygrad", description="Activation maximization with ProxyGrad.")
    parser.add_argument("--version", action="version", version=f"proxygrad {__version__}")
    register_all(parser.add_subparsers(dest="command", metavar="COMMAND"))
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
