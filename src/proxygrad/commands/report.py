"""``proxygrad report RUN_DIR``: (re)write the self-contained HTML report of a run directory."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    parser = sub.add_parser("report", help="write RUN_DIR/report.html: settings, tables, plots and images, "
                            "self-contained (opens from disk)")
    parser.add_argument("run_dir")
    parser.add_argument("--max-images", type=int, default=200, help="most images shown per method")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..report.html import write_report

    print(f"wrote {write_report(args.run_dir, args.max_images)}")
    return 0
