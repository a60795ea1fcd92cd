"""``proxygrad invert``: reconstruct a picture from what one layer of a model sees (seed 004's feature inversion)
with each regularization scheme, with and without ProxyGrad; ``--assess`` runs seed 004's cross-model Table 1."""
from __future__ import annotations

import argparse

from ._args import run_dir

SCHEMES_HELP = ("comma-separated regularizations: none, tv, fluid:KERNEL, elastic:KERNEL, "
                "fluid-elastic:FLUID_KERNEL:ELASTIC_KERNEL, or SCHEME+tv, where KERNEL is gaussian:SIZE[:SIGMA] or "
                "sobolev:SIZE[:GAMMA] (default: none, tv, and the fluid, elastic and fluid-elastic Sobolev schemes "
                "with seed 004's 11x11 kernels scaled to the image, 5x5 for 32x32)")


def register(sub) -> None:
    parser = sub.add_parser(
        "invert", help="reconstruct an image from a layer's features (seed 004), or --assess its Table 1",
        description="Minimize D(Phi(u), Phi0) = ||Phi(u) - Phi0||_p^p / Z over images u in [-1, 1], Phi a layer "
                    "of the model, Phi0 = Phi(IMAGE), with each regularization scheme and method. With --assess: "
                    "reconstruct digits with model A, classify them with model B, report top-1/top-5 agreement.")
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="picture file to reconstruct (any format Pillow "
                        "reads; resized to the model's size)")
    parser.add_argument("--digit-index", type=int, default=None, metavar="N",
                        help="reconstruct test image N (0..449) of the bundled digits instead of a file")
    parser.add_argument("--layer", action="append", default=None, metavar="NAME",
                        help="layer to invert from: a module name of the model, 'output' or 'input' (default for "
                        "the bundled models: the last residual block; repeatable with --assess)")
    parser.add_argument("--model", default=None, help="model (A with --assess): bundled digits (default), "
                        "digits-b, a torchvision/timm name or a checkpoint file")
    parser.add_argument("--weights", default=None, help="its torchvision weights name or a weights file")
    parser.add_argument("--schemes", default=None, help=SCHEMES_HELP)
    parser.add_argument("--methods", default="relu,proxygrad", help="comma-separated: relu, proxygrad")
    parser.add_argument("--slope", type=float, default=0.1, help="ProxyGrad's backward slope (default 0.1)")
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per reconstruction (default 200; with --assess the preset's)")
    parser.add_argument("--lr", type=float, default=None, help="step size (default: the render loop's, scaled "
                        "to the image size)")
    parser.add_argument("--step-rule", default="normalized", choices=("normalized", "plain", "adam"))
    parser.add_argument("--p", type=int, default=2, choices=(1, 2), help="exponent of D (default 2)")
    parser.add_argument("--normalize", default="target", choices=("target", "none"),
                        help="Z: ||Phi0||_p^p (target, default) or 1 (none)")
    parser.add_argument("--tv-weight", type=float, default=1.0, help="weight of the total variation per pixel "
                        "in the 'tv' schemes (default 1.0)")
    parser.add_argument("--init-sigma", type=float, default=0.1, help="std of the noise around gray at the start")
    parser.add_argument("--seed", type=int, default=0, help="seed of the starting noise (and of the images "
                        "drawn by --assess)")
    parser.add_argument("--convert", action="store_true", help="convert IMAGE to the model's channels (gray or "
                        "RGB, alpha dropped) instead of refusing a picture with another channel count")
    assess = parser.add_argument_group("assessment (seed 004's Table 1)")
    assess.add_argument("--assess", action="store_true", help="reconstruct with model A, classify with model B")
    assess.add_argument("--preset", default="quick", choices=("quick", "full"),
                        help="quick: 3 digits per class, 150 steps (minutes); full: all 450, 300 steps (about an "
                        "hour on 2 CPU cores)")
    assess.add_argument("--model-b", default="digits-b", help="the independently trained classifier (default "
                            "digits-b)")
    assess.add_argument("--weights-b", default=None, help="its weights name or file")
    assess.add_argument("--layer-b", action="append", default=None, metavar="NAME",
                        help="also reconstruct with B from this layer and classify with A (default for digits-b: "
                        "layers.3; 'none' for A -> B only)")
    assess.add_argument("--per-class", type=int, default=None, help="test digits per class (default: the preset's)")
    assess.add_argument("--all-images", action="store_true", help="every test digit (450)")
    assess.add_argument("--images", default=None, metavar="DIR", help="pictures in DIR/CLASS/ (CLASS: a class "
                        "name or index of model A) instead of the bundled digits")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/invert-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _list(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    """Reconstruct (or assess), write the run directory, print a summary."""
    from pathlib import Path

    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(run_dir(args.out, "invert"))
    if args.assess:
        return _assess(args, out, device)
    return _single(args, out, device)


def _target(args, loaded):
    """(image (C, H, W) in [-1, 1], label or None, description) from IMAGE or --digit-index."""
    import torch.nn.functional as F

    from ..am.invert import read_target
    from ..models import digits_data

    if (args.image is None) == (args.digit_index is None):
        raise ValueError("give exactly one target: a picture file IMAGE or --digit-index N (0..449, a test image "
                         "of the bundled digits)")
    if args.image is not None:
        return read_target(args.image, loaded.spec, convert=args.convert), None, args.image
    images, labels = digits_data("test")
    if not 0 <= args.digit_index < len(labels):
        raise ValueError(f"--digit-index must be in 0..{len(labels) - 1}, got {args.digit_index}")
    if loaded.spec.channels != 1:
        raise ValueError(f"the bundled digits are gray (1 channel) but {loaded.name} takes {loaded.spec.channels}-"
                         "channel images; give a picture file instead")
    image = images[args.digit_index]
    if tuple(image.shape[-2:]) != loaded.spec.size:
        image = F.interpolate(image[None], size=loaded.spec.size, mode="bilinear", align_corners=False)[0]
    return image, int(labels[args.digit_index]), f"digits test image {args.digit_index}"


def _single(args, out, device) -> int:
    import time

    from ..am.invert import default_schemes
    from ..experiments.inversion import InversionSettings, compare_schemes, default_layer, write_comparison
    from ..models import load

    start = time.perf_counter()
    for flag, value in (("--images", args.images), ("--layer-b", args.layer_b), ("--per-class", args.per_class),
                        ("--all-images", args.all_images or None)):
        if value is not None:
            raise ValueError(f"{flag} belongs to --assess")
    loaded = load(args.model, weights=args.weights, device=device)
    if args.layer is not None and len(args.layer) > 1:
        raise ValueError("one --layer per reconstruction (several layers only with --assess)")
    layer = args.layer[0] if args.layer else default_layer(loaded.name)
    image, label, source = _target(args, loaded)
    schemes = _list(args.schemes) or default_schemes(loaded.spec)
    methods = _list(args.methods)
    settings = InversionSettings(p=args.p, normalize=args.normalize, slope=args.slope, steps=args.steps or 200,
                                 lr=args.lr, step_rule=args.step_rule, tv_weight=args.tv_weight,
                                 init_sigma=args.init_sigma)
    inversions = compare_schemes(loaded, image, layer, schemes, methods, settings, args.seed, not args.quiet)
    record = {"model": loaded.name, "weights": args.weights, "device": str(device), "target": source,
              "layer": layer, "schemes": list(schemes), "methods": list(methods), "seed": args.seed,
              "convert": args.convert} | vars(settings)
    payload = write_comparison(out, loaded, image, label, inversions, record, time.perf_counter() - start)
    print(f"target: {source} (class {payload['original']['predicted']} for {loaded.name}"
          + ("" if label is None else f", label {payload['original']['label']}") + f"); layer {layer}")
    print(f"{'scheme':<36}{'method':<11}{'D':>10}{'class':>7}{'seconds':>9}")
    for row in payload["reconstructions"]:
        print(f"{row['scheme']:<36}{row['method']:<11}{row['distance']:>10.4g}{row['predicted']:>7}"
              f"{row['seconds']:>9.1f}")
    print(f"wrote {out}/ (original.png, reconstructions/, grid.png, loss.png, results.json)")
    return 0


def _assess(args, out, device) -> int:
    from ..experiments.inversion import assess, preset

    if args.image is not None or args.digit_index is not None:
        raise ValueError("--assess draws its own images (--per-class, --all-images or --images DIR); drop IMAGE "
                         "and --digit-index")
    if args.convert:
        raise ValueError("--convert applies to IMAGE, not to --assess")
    layers_b = args.layer_b
    if layers_b is not None and [x.lower() for x in layers_b] == ["none"]:
        layers_b = []
    config = preset(args.preset, model_a=args.model or "digits", model_b=args.model_b, weights_a=args.weights,
                    weights_b=args.weights_b, layers_a=tuple(args.layer) if args.layer else None,
                    layers_b=tuple(layers_b) if layers_b is not None else None, schemes=_list(args.schemes),
                    methods=_list(args.methods), images=args.images, per_class=args.per_class, seed=args.seed, p=args.p,
                    normalize=args.normalize, slope=args.slope, steps=args.steps, lr=args.lr,
                    step_rule=args.step_rule, tv_weight=args.tv_weight, init_sigma=args.init_sigma)
    if args.all_images:
        config.per_class = None
    payload = assess(config, out, device=device, progress=not args.quiet)
    print(f"{payload['n_images']} images; agreement of the classifier with the original labels")
    for direction, ref in payload["references"].items():
        print(f"\n{direction}: classifier on the originals {100 * ref['classifier_on_originals']['top1']:.1f}% "
              f"top-1, on the starting images {100 * ref['classifier_on_starts']['top1']:.1f}%")
        print(f"  {'scheme':<36}{'method':<11}{'top-1':>7}{'top-5':>7}{'own':>7}{'mean D':>9}")
        for row in (r for r in payload["rows"] if r["direction"] == direction):
            print(f"  {row['scheme']:<36}{row['method']:<11}{100 * row['top1']:>6.1f}%{100 * row['top5']:>6.1f}%"
                  f"{100 * row['reconstructor_top1']:>6.1f}%{row['distance_mean']:>9.4f}")
    print(f"\n{payload['summary']}")
    print(f"wrote {out}/ (results.json, table.csv, agreement.png, examples.png, rows.jsonl)")
    return 0
