"""``proxygrad toy``: the white-image problems of the paper's Table 1 and Figure 1, with their exact optima."""
from __future__ import annotations

import argparse

from ._args import floats, ints, names, run_dir


def register(sub) -> None:
    parser = sub.add_parser("toy", help="white-image problems (Table 1, Figure 1): how close does each method "
                            "get to the known optimum, and how fast")
    parser.add_argument("--problems", type=names, default=("f1", "f2", "f3", "conv"),
                        help="comma-separated: f1, f2, f3, conv")
    parser.add_argument("--methods", type=names, default=("plain", "leaky", "proxygrad"),
                        help="comma-separated: plain, leaky, proxygrad")
    parser.add_argument("--slopes", type=floats, default=(0.05, 0.1, 0.3, 0.5),
                        help="slopes of leaky and proxygrad (comma-separated)")
    parser.add_argument("--size", type=int, default=16, help="image height and width, pixels")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=ints, default=(0, 1, 2), help="comma-separated seeds (one start each)")
    parser.add_argument("--init-sigma", type=float, default=0.5, help="std of the Gaussian noise of the starts")
    parser.add_argument("--lr", type=float, default=None, help="step size (default: the paper's, scaled to the size)")
    parser.add_argument("--step-rule", default="normalized", choices=("normalized", "plain", "adam"))
    parser.add_argument("--s", type=float, default=0.1, help="negative slope s inside f2, f3 and conv")
    parser.add_argument("--p", type=float, default=0.2, help="the weight p of f3 and conv (s < p < 1)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/toy-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every problem x method x seed, write the run directory, print the summary table."""
    from pathlib import Path

    from ..experiments.toy import ToyConfig, run_toy, write_toy

    config = ToyConfig(size=args.size, steps=args.steps, seeds=tuple(args.seeds), problems=tuple(args.problems),
                       methods=tuple(args.methods), slopes=tuple(args.slopes), init_sigma=args.init_sigma,
                       lr=args.lr, step_rule=args.step_rule, s=args.s, p=args.p)
    config.validate()
    out = Path(run_dir(args.out, "toy"))
    payload = write_toy(out, run_toy(config, progress=not args.quiet))
    print(f"{'problem':<8}{'method':<18}{'optimum':>9}{'mean reached':>14}{'worst':>8}{'seeds at 99%':>14}"
          f"{'median steps to 99%':>21}")
    for row in payload["summary"]:
        steps = "never" if row["median_steps_to_99"] is None else f"{row['median_steps_to_99']:g}"
        print(f"{row['problem']:<8}{row['method']:<18}{row['optimum']:>9.4g}{row['mean_fraction']:>14.1%}"
              f"{row['worst_fraction']:>8.1%}{row['seeds_at_99']:>14}{steps:>21}")
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ (table1.png, figure1.png, race.png, summary.csv, runs.csv, results.json, report.html)")
    return 0
