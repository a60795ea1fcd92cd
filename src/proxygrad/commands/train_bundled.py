"""``proxygrad train-bundled``: retrain a bundled digits model (digits, or digits-b with --name) from scratch."""
from __future__ import annotations

from ..models import train_bundled


def register(sub) -> None:
    parser = sub.add_parser("train-bundled",
                            help="retrain a bundled digits model (digits; digits-b with --name) from scratch")
    train_bundled.build_parser(parser)
    parser.set_defaults(func=train_bundled.run_from_args)
