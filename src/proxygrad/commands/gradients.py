"""``proxygrad gradients``: gradient magnitudes in randomly initialized ResNet18s vs the negative slope
(paper Section 7, Table 5), BatchNorm input statistics (Figure 4) and Appendix 11.3's closed forms."""
from __future__ import annotations

import argparse

from ._args import floats, names, run_dir


def _architectures(text: str) -> tuple[bool, ...]:
    choices = {"bn": True, "nobn": False}
    chosen = names(text)
    if not chosen or any(n not in choices for n in chosen):
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of bn,nobn, got {text!r}")
    return tuple(choices[n] for n in chosen)


def register(sub) -> None:
    parser = sub.add_parser("gradients", help="mean |dL/d output| in random ResNet18s with and without BatchNorm "
                            "for relu / leaky / proxygrad vs slope (Table 5, Figure 4)")
    parser.add_argument("--preset", default="paper", help="paper (50 networks per architecture, about 15 "
                        "minutes on 2 CPU cores) or quick (3 networks, seconds)")
    parser.add_argument("--slopes", type=floats, default=None, help="negative slopes, e.g. 0.01,0.05,0.1,0.2,0.3 "
                        "(s = 0, ReLU, is always included)")
    parser.add_argument("--repeats", type=int, default=None, help="networks (initialization + input batch) per "
                        "architecture")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="input side length in pixels")
    parser.add_argument("--positions", type=names, default=None,
                        help="module names whose output gradient is measured (default: conv1, layerN.0.conv1, "
                        "layer4.1.conv2; Table 5 is layer1.0.conv1)")
    parser.add_argument("--architectures", type=_architectures, default=None, help="bn, nobn or bn,nobn")
    parser.add_argument("--data", default=None, help="an ImageFolder root (one sub-folder per class) instead of "
                        "the bundled digits")
    parser.add_argument("--seed", type=int, default=None, help="network r uses seed + r (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--out", default=None, help="run directory; an existing one is resumed "
                        "(default: runs/gradients-PRESET-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Measure, write the run directory, print Table 5 and the findings."""
    from pathlib import Path

    from ..experiments.gradients import preset, run_gradients, validate
    from ..report.html import write_report

    config = preset(args.preset, slopes=args.slopes, repeats=args.repeats, batch_size=args.batch_size,
                    size=args.size, positions=args.positions, batchnorm=args.architectures, data=args.data,
                    seed=args.seed, device=args.device)
    validate(config)
    out = Path(run_dir(args.out, "gradients", args.preset))
    payload = run_gradients(config, out, progress=not args.quiet)
    report = write_report(out)
    print(f"mean |dL/d output| of {payload['table5_position']} (mean +- std over {config.repeats} networks):")
    print(payload["table5"])
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ (table5.csv, bn_std.csv, gradients.png, figure4.png, results.json) and {report}")
    return 0
