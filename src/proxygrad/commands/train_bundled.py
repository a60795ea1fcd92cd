"""``proxygrad train-bundled``: retrain the bundled default model (digits) from scratch."""
from __future__ import annotations

from ..models import train_bundled


def register(sub) -> None:
    parser = sub.add_parser("train-bundled", help="retrain the bundled default model (digits) from scratch")
    train_bundled.build_parser(parser)
    parser.set_defaults(func=train_bundled.run_from_args)
