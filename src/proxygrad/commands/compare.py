"""``proxygrad compare``: the field's AM methods (surrogate x recipe) on one model, scored by the same metrics."""
from __future__ import annotations

import argparse

from ._args import ints, names, run_dir


def _steps(text: str) -> dict:
    steps = {}
    for part in text.split(","):
        recipe, _, count = part.partition(":")
        try:
            steps[recipe.strip()] = int(count)
        except ValueError:
            raise argparse.ArgumentTypeError(f"steps are RECIPE:N,..., e.g. paper:200,lucent:256; got {part!r}") \
                from None
    return steps


def register(sub) -> None:
    parser = sub.add_parser("compare", help="surrogates x recipes (paper, lucent, maco) x metrics, with verdicts "
                            "and an HTML report")
    parser.add_argument("--preset", default="quick", help="quick (bundled digits models, a few minutes on 2 CPU "
                        "cores) or full (10 seeds, full step counts, more slopes; for a GPU)")
    parser.add_argument("--model", default=None, help="the visualized network (default: bundled digits)")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--second", default=None, help="independently trained network for transferability "
                        "(default: digits-b; 'none' to skip)")
    parser.add_argument("--second-weights", default=None, help="weights of --second (torchvision name or file)")
    parser.add_argument("--evaluator", default=None, help="network for plausibility and FID (default: --second)")
    parser.add_argument("--evaluator-weights", default=None)
    parser.add_argument("--real", default=None, metavar="FOLDER", help="real images, one subfolder per class "
                        "(default: the bundled digits test images for the digits models)")
    parser.add_argument("--classes", type=names, default=None, help="comma-separated class names or indices")
    parser.add_argument("--seeds", type=ints, default=None)
    parser.add_argument("--methods", type=names, default=None,
                        help="comma-separated SURROGATE[:SLOPE_OR_TEMPERATURE]@RECIPE, e.g. "
                        "relu@paper,proxygrad:0.075@lucent,softgate:0.5@maco")
    parser.add_argument("--steps", type=_steps, default=None, metavar="RECIPE:N,...")
    parser.add_argument("--kinds", type=names, default=None, metavar="KIND,...",
                        help="what the proxygrad methods change: rectifiers (default), smooth, pooling, all")
    parser.add_argument("--spectrum", default=None, help="maco magnitude: digits, natural or a file from "
                        "`proxygrad spectrum`")
    parser.add_argument("--exact-network", default=None, help="where the optimality gap is measured: a network of "
                        "`proxygrad gap` (default cnn-relu), 'model' (the compared model itself, when the MILP can "
                        "take it) or 'none'")
    parser.add_argument("--exact-time-limit", type=float, default=None, help="seconds per MILP (default 60); a "
                        "solve cut short gives an upper bound")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="run directory; an existing one is resumed "
                        "(default: runs/compare-PRESET-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments.compare import preset, prepare, run_compare
    from ..report.html import write_report

    exact = args.exact_network
    second = "" if args.second == "none" else args.second  # "" (not None, which keeps the default): no second network
    config = preset(args.preset, model=args.model, weights=args.weights, second=second,
                    second_weights=args.second_weights, evaluator=args.evaluator,
                    evaluator_weights=args.evaluator_weights, real=args.real, classes=args.classes, seeds=args.seeds,
                    methods=args.methods, steps=args.steps, spectrum=args.spectrum, batch_size=args.batch_size,
                    kinds=None if args.kinds is None else ("all" if args.kinds == ("all",) else args.kinds),
                    device=args.device, exact_time_limit=args.exact_time_limit)
    if exact is not None:
        from dataclasses import replace
        config = replace(config, exact_network=None if exact == "none" else exact)
    prepare(config)  # every error before any work or folder
    out = Path(run_dir(args.out, "compare", args.preset))
    payload = run_compare(config, out, progress=not args.quiet)
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ (summary.csv, metrics.png, gallery.png, results.json) and {write_report(out)}")
    return 0
