"""``proxygrad regions``: exact linear regions and dead units of 2-D MLPs trained with ReLU, Leaky ReLU and
ProxyGrad (seed 003), with pictures and a grid-sampling comparison."""
from __future__ import annotations

import argparse

from ._args import ints, names, run_dir


def register(sub) -> None:
    parser = sub.add_parser("regions", help="exact linear regions (regioncam) and dead units of 2-D MLPs over "
                            "training: relu vs leaky vs proxygrad (seed 003)")
    parser.add_argument("--preset", default="paper", help="paper (the seed's epochs, about 30 minutes on 2 CPU "
                        "cores) or quick (about a minute)")
    parser.add_argument("--datasets", type=names, default=None, help="subset of random,moons,quantiles")
    parser.add_argument("--widths", type=ints, default=None, help="units per hidden layer, e.g. 16,32,64")
    parser.add_argument("--methods", type=names, default=None,
                        help="e.g. relu,leaky:0.01,proxygrad:0.01,proxygrad:0.1")
    parser.add_argument("--epochs", type=ints, default=None,
                        help="epochs at which regions are counted, for every data set (default: the seed's lists)")
    parser.add_argument("--seeds", type=ints, default=None, help="initialization + data seeds (pictures: the first)")
    parser.add_argument("--grid", type=int, default=None, help="grid points per side of the sampling estimate")
    parser.add_argument("--no-pictures", action="store_true", help="skip the region pictures")
    parser.add_argument("--out", default=None, help="run directory; an existing one is resumed "
                        "(default: runs/regions-PRESET-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, count, draw; print the findings."""
    from pathlib import Path

    from ..experiments.regions import preset, run_regions, validate
    from ..report.html import write_report

    config = preset(args.preset, datasets=args.datasets, widths=args.widths, methods=args.methods,
                    epochs=args.epochs, seeds=args.seeds, grid=args.grid)
    validate(config)
    out = Path(run_dir(args.out, "regions", args.preset))
    payload = run_regions(config, out, progress=not args.quiet, pictures=not args.no_pictures)
    report = write_report(out)
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ (regions.csv, regions_vs_epoch.png, dead_units.png, sampling.png, region pictures, "
          f"results.json) and {report}")
    return 0
