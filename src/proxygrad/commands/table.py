"""``proxygrad table``: the paper's Table 4 (seeds x settings x architectures), trained or collected."""
from __future__ import annotations

import argparse

from ._args import ints, run_dir


def register(sub) -> None:
    from .train import add_train_options

    parser = sub.add_parser("table", help="the paper's Table 4: test accuracy of resnet18 / pfnet18 with proxygrad, "
                            "leaky and relu over seeds (resumable; data parallel or a sweep under torchrun)")
    add_train_options(parser)
    parser.add_argument("--archs", default=None, help="comma-separated architectures (default resnet18,pfnet18)")
    parser.add_argument("--settings", default="paper", help="paper (proxygrad and leaky at 0.01, 0.1, 0.2, and "
                        "relu) or e.g. relu,leaky:0.1,proxygrad:0.2")
    parser.add_argument("--seeds", type=ints, default=None, help="comma-separated seeds (default 0,1,2,3,4; "
                        "digits preset 0,1)")
    parser.add_argument("--collect", action="store_true", help="train nothing: tabulate the finished cells")
    parser.add_argument("--sweep", action="store_true", help="under torchrun: spread the cells over the processes "
                        "(one cell per process at a time) instead of training each data parallel")
    parser.add_argument("--out", default=None, help="table directory; cells already there are reused or resumed "
                        "(default: runs/table-DATASET-DATE-TIME)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train (or collect) the cells, print the table and the findings, write table.csv/png/txt, results.json."""
    from pathlib import Path

    from ..experiments.table import TableConfig, parse_settings, run_table
    from ..train import dist
    from .train import base_config, default_workers

    base = base_config(args)
    digits = base.data.dataset == "digits"
    archs = tuple(a.strip() for a in (args.archs or "resnet18,pfnet18").split(",") if a.strip())
    config = TableConfig(base, archs=archs, settings=parse_settings(args.settings),
                         seeds=args.seeds or ((0, 1) if digits else (0, 1, 2, 3, 4)))
    env = None if args.sweep or args.collect else dist.init(args.device)
    try:
        stamp = run_dir(args.out, "table", base.data.dataset)
        out = Path(dist.broadcast(stamp, env) if env is not None else stamp)
        if args.sweep and not args.out and dist.launch_env()[1] > 1:
            raise ValueError("--sweep over several processes needs --out (one directory they all share)")
        results = run_table(config, out, collect_only=args.collect, sweep=args.sweep, env=env, device=args.device,
                            workers=default_workers(args, base, env.world if env else 1), progress=not args.quiet)
    finally:
        if env is not None:
            dist.close(env)
    if results is None:
        if args.sweep:
            print(f"this process's cells are done; others are still running. `proxygrad table --collect --out {out}` "
                  f"(same options) writes the table once all are finished (the last process writes it itself)")
        return 0
    print(results["text"])
    if results["missing"]:
        print(f"{len(results['missing'])} of {len(config.cells())} cells are not finished yet (n < seeds above)")
    for line in results["findings"]:
        print(line)
    print(f"wrote {out}/ (table.csv, table.txt, table.png, results.json, runs/)")
    return 0
