"""``proxygrad beyond``: ProxyGrad for smooth activations and max pooling, measured (tables, plots, report)."""
from __future__ import annotations

import argparse

from ._args import floats, ints, names, run_dir


def register(sub) -> None:
    parser = sub.add_parser("beyond", help="proxies for GELU/SiLU/Mish/ELU/Hardswish and max pooling vs the plain "
                            "gradient, on tiny digits networks (and optionally ResNet18 with ImageNet weights)")
    parser.add_argument("--preset", default="full", help="full (every tiny network, 20-40 minutes on 2 CPU "
                        "cores), quick (about a minute) or paper (ResNet18 with ImageNet weights, for a GPU)")
    parser.add_argument("--networks", type=names, default=None, help="smooth networks, e.g. convnext-gelu,vit-silu")
    parser.add_argument("--variants", type=names, default=None, help="subset of floor,add,leaky")
    parser.add_argument("--slopes", type=floats, default=None, help="smooth proxy slopes, e.g. 0.05,0.1,0.2")
    parser.add_argument("--steps", type=ints, default=None, help="step counts, e.g. 10,100,500")
    parser.add_argument("--classes", type=ints, default=None, help="digit classes, e.g. 0,3,5")
    parser.add_argument("--seeds", type=ints, default=None)
    parser.add_argument("--regularization", default=None, help="none or paper (default: none)")
    parser.add_argument("--pool-networks", type=names, default=None, help="e.g. poolcnn-a,poolcnn-b ('' for none)")
    parser.add_argument("--temperatures", type=floats, default=None, help="softmax pooling proxy temperatures")
    parser.add_argument("--shares", type=floats, default=None, help="share pooling proxy shares")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact maxima (MILP)")
    parser.add_argument("--exact-time-limit", type=float, default=None, help="seconds per MILP (default 60)")
    parser.add_argument("--model", default=None, help="also run the paper's recipe on this model, e.g. resnet18")
    parser.add_argument("--weights", default=None, help="its weights, e.g. IMAGENET1K_V1 or a file")
    parser.add_argument("--model-classes", type=names, default=None, help="class names or indices of --model")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None, help="run directory; an existing one is resumed "
                        "(default: runs/beyond-PRESET-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments.beyond import preset, run_beyond, validate
    from ..report.html import write_report

    config = preset(args.preset, networks=args.networks, variants=args.variants, slopes=args.slopes,
                    steps=args.steps, classes=args.classes, seeds=args.seeds, regularization=args.regularization,
                    pool_networks=args.pool_networks, temperatures=args.temperatures, shares=args.shares,
                    exact=False if args.no_exact else None, exact_time_limit=args.exact_time_limit,
                    model=args.model, weights=args.weights, model_classes=args.model_classes, device=args.device)
    validate(config)
    out = Path(run_dir(args.out, "beyond", args.preset))
    payload = run_beyond(config, out, progress=not args.quiet)
    report = write_report(out)
    for line in payload["findings"]:
        print(line)
    print(f"wrote {out}/ ({', '.join(t['csv'] for t in payload['tables'])}, "
          f"{', '.join(payload['files'].values())}, results.json) and {report}")
    return 0
