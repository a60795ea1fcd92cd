"""``proxygrad visualize``: render what units of a model respond to, with each method, into a run directory."""
from __future__ import annotations

import argparse

from ._args import floats, ints


def register(sub) -> None:
    parser = sub.add_parser("visualize", help="render what units of a model respond to (default: every class of "
                            "the bundled model, ReLU vs ProxyGrad)")
    add_render_options(parser)
    parser.set_defaults(func=run)


def _octaves(text: str):
    from ..am import Octave

    octaves = []
    for part in text.split(","):
        fields = part.split(":")
        if len(fields) not in (2, 3):
            raise argparse.ArgumentTypeError(f"an octave is SCALE:STEPS[:LR], got {part!r}")
        try:
            octaves.append(Octave(float(fields[0]), int(fields[1]), float(fields[2]) if len(fields) == 3 else None))
        except ValueError:
            raise argparse.ArgumentTypeError(f"an octave is SCALE:STEPS[:LR], got {part!r}") from None
    return tuple(octaves)


def add_render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="bundled default (digits), a torchvision/timm name, or a "
                        "checkpoint file (default: the bundled digits model)")
    parser.add_argument("--weights", default=None, help="torchvision weights name (e.g. IMAGENET1K_V1) or a file")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("-o", "--objective", action="append", dest="objectives", default=None,
                        help="what to maximize (repeatable): 3, class:NAME, logsoftmax:3, LAYER:CH, "
                        "LAYER:CH@ROW,COL, LAYER (default: every class)")
    parser.add_argument("--methods", default="relu,proxygrad", help="comma-separated: relu, leaky, proxygrad")
    parser.add_argument("--slope", type=float, default=0.075, help="backward (proxygrad) or Leaky ReLU slope")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=None,
                        help="step size (default: the paper's 25 for 3x224x224, scaled to the image size)")
    parser.add_argument("--step-rule", default="normalized", choices=("normalized", "plain", "adam"))
    parser.add_argument("--seeds", type=ints, default=(0,), help="comma-separated seeds (one image per seed)")
    parser.add_argument("--init-sigma", type=float, default=0.1, help="std of the initial Gaussian noise")
    parser.add_argument("--init", default=None, metavar="IMAGE", help="start from this picture instead of gray")
    parser.add_argument("--regularize", default="paper", help="preset: none or paper (weak blur + small rotation)")
    parser.add_argument("--jitter", type=int, default=0, help="random input translation, pixels")
    parser.add_argument("--scale", type=floats, default=None, metavar="LOW,HIGH", help="random input zoom")
    parser.add_argument("--rotate", type=float, default=0.0, help="random input rotation, degrees")
    parser.add_argument("--blur", type=float, default=0.0, help="Gaussian blur of the image after each step, px")
    parser.add_argument("--scheme", default="none",
                        help="fluid/elastic scheme, e.g. fluid:gaussian:9, elastic:sobolev:5, "
                        "fluid-elastic:sobolev:9:gaussian:5")
    parser.add_argument("--tv", type=float, default=0.0, help="total variation weight")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 penalty weight (seed 002)")
    parser.add_argument("--octaves", type=_octaves, default=(), metavar="SCALE:STEPS[:LR],...")
    parser.add_argument("--size", type=ints, default=None, metavar="H[,W]",
                        help="render at this size instead of the model's own")
    parser.add_argument("--batch-size", type=int, default=64, help="most images rendered at once")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                        help="bf16: the proxy's forward/backward under bfloat16 autocast (scores stay float32)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last inputs (faster on GPUs)")
    parser.add_argument("--memory-mb", type=float, default=None,
                        help="memory budget per batch: lowers the batch size to fit (estimated)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/visualize-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Render the objectives with each method, write the run directory, print a summary."""
    import time
    from datetime import datetime
    from pathlib import Path

    import torch

    from ..am import RenderConfig
    from ..am.distributed import finish, local_device, render_sharded, world
    from ..am.api import resolve_objectives
    from ..am.init import load_image
    from ..am.objectives import target_class
    from ..am.presets import build
    from ..models import load
    from ..report.visualization import write_visualization

    start = time.perf_counter()
    rank, processes = world()
    device = torch.device(args.device) if args.device else local_device()
    loaded = load(args.model, weights=args.weights, device=device)
    size = (args.size if len(args.size) == 2 else args.size[0]) if args.size else None
    try:
        loaded.check_size(size)
    except ValueError as error:
        raise ValueError(f"{error} (choose the size with --size H,W)") from None
    if size is not None:
        loaded.spec = loaded.spec.replace(size=size)
    objectives = resolve_objectives(args.objectives, loaded.spec)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    regularization = build(args.regularize, jitter=args.jitter, scale=args.scale, rotate=args.rotate,
                           blur=args.blur, scheme=args.scheme, tv=args.tv, l2=args.l2)
    init_image = load_image(args.init, loaded.spec) if args.init else None
    jobs = [(o, s) for o in objectives for s in args.seeds]
    configs = {m: RenderConfig(method=m, slope=0.0 if m == "relu" else args.slope, steps=args.steps, lr=args.lr,
                               step_rule=args.step_rule, init_sigma=args.init_sigma, init_image=init_image,
                               regularization=regularization, octaves=args.octaves, batch_size=args.batch_size,
                               memory_mb=args.memory_mb, precision=args.precision,
                               channels_last=args.channels_last, progress=not args.quiet) for m in methods}
    out = Path(args.out or f"runs/visualize-{datetime.now():%Y%m%d-%H%M%S}")
    results = {}
    for method, config in configs.items():
        label = method if method == "relu" else f"{method} s={args.slope:g}"
        results[label] = render_sharded(loaded.model, loaded.spec, [o for o, _ in jobs], [s for _, s in jobs],
                                        config, device=device)
    if rank != 0:
        finish()
        return 0
    settings = {"model": loaded.name, "model_source": loaded.source, "weights": args.weights,
                "device": str(device), "methods": methods, "slope": args.slope, "steps": args.steps,
                "lr": args.lr, "step_rule": args.step_rule, "seeds": list(args.seeds),
                "init_sigma": args.init_sigma, "init": args.init, "regularize": args.regularize,
                "regularization": repr(regularization), "octaves": [vars(o) for o in args.octaves],
                "size": list(loaded.spec.size), "processes": processes,
                "batch_size": args.batch_size, "memory_mb": args.memory_mb, "precision": args.precision,
                "channels_last": args.channels_last,
                "objectives": [o.name for o, _ in jobs]}
    payload = write_visualization(out, results, loaded.spec, [target_class(o) for o, _ in jobs], settings,
                                  time.perf_counter() - start)
    print(f"{'method':<20}{'mean activation':>16}{'classified as target':>22}{'seconds':>9}")
    for method, summary in payload["methods"].items():
        share = "-" if summary["target_share"] is None else f"{100 * summary['target_share']:.0f}%"
        print(f"{method:<20}{summary['mean_activation']:>16.3f}{share:>22}{summary['seconds']:>9.1f}")
    print(f"wrote {out}/ (grid.png, activation.png, results.json, report.html, images/)")
    finish()
    return 0
