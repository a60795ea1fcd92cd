"""``proxygrad sweep``: the paper's Section 5 study (Figure 2, Table 3, Figure 3) on any model, resumable."""
from __future__ import annotations

import argparse

from ._args import add_compile_option, add_proxy_options, compile_option, floats, ints, names, proxy_options, run_dir


def register(sub) -> None:
    parser = sub.add_parser("sweep", help="methods x slopes x steps x regularization: the paper's Figure 2, "
                            "Table 3 and Figure 3, with an HTML report")
    parser.add_argument("--preset", default="quick", help="quick (bundled model, a few minutes on 2 CPU cores) "
                        "or paper (ResNet18 with ImageNet weights, for a GPU)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--classes", type=names, default=None, help="comma-separated class names or indices")
    parser.add_argument("--seeds", type=ints, default=None)
    parser.add_argument("--methods", type=names, default=None,
                        help="among relu, leaky, proxygrad (default: these three), redirected, redirected-captum, "
                        "softgate, guided")
    parser.add_argument("--slopes", type=floats, default=None, help="e.g. 0,0.01,0.025,0.05,0.075,0.1,0.15,0.2,0.3")
    parser.add_argument("--steps", type=ints, default=None, help="step counts, e.g. 10,500")
    parser.add_argument("--regularizations", type=names, default=None,
                        help="among none, paper (default: these two), lucent, maco")
    parser.add_argument("--param", default=None,
                        help="pixel (default), fourier or maco; the last two take regularizations none, lucent, maco")
    parser.add_argument("--step-rule", default=None, help="normalized (default), plain, adam or nadam")
    parser.add_argument("--temperature", type=float, default=None, help="softgate's temperature t > 0 (default 1)")
    add_proxy_options(parser)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--gallery-classes", type=names, default=None)
    parser.add_argument("--gallery-slopes", type=floats, default=None)
    parser.add_argument("--gallery-steps", type=int, default=None)
    parser.add_argument("--gallery-regularization", default=None,
                        help="default: the parametrization's recipe's (pixel: paper, fourier: lucent, maco: maco)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--precision", default=None, choices=("fp32", "bf16"))
    parser.add_argument("--channels-last", action="store_true", default=None)
    add_compile_option(parser)
    parser.add_argument("--out", default=None, help="run directory; an existing one is resumed "
                        "(default: runs/sweep-PRESET-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..am.distributed import finish
    from dataclasses import replace

    from ..experiments.sweep import preset, run_sweep, validate
    from ..report.html import write_report

    config = preset(args.preset, model=args.model, weights=args.weights, classes=args.classes, seeds=args.seeds,
                    methods=args.methods, slopes=args.slopes, steps=args.steps,
                    regularizations=args.regularizations, lr=args.lr, batch_size=args.batch_size,
                    gallery_classes=args.gallery_classes, gallery_slopes=args.gallery_slopes,
                    gallery_steps=args.gallery_steps, gallery_regularization=args.gallery_regularization,
                    device=args.device, precision=args.precision, channels_last=args.channels_last,
                    parametrization=args.param, step_rule=args.step_rule, temperature=args.temperature,
                    compile=compile_option(args.compile))
    config = replace(config, **proxy_options(args, list(config.methods)))  # errors named by the flags
    validate(config)
    out = Path(run_dir(args.out, "sweep", args.preset))
    payload = run_sweep(config, out, progress=not args.quiet)
    if payload is None:  # a torchrun rank other than 0
        finish()
        return 0
    report = write_report(out)
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ (summary.csv, figure2.png, gallery PNGs, results.json) and {report}")
    finish()
    return 0
