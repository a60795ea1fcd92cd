"""``proxygrad visualize``: render what units of a model respond to, with each method, into a run directory."""
from __future__ import annotations

import argparse

from ._args import add_compile_option, add_proxy_options, compile_option, floats, ints, proxy_options, run_dir

DEFAULT_STEPS = 200  # without --recipe (the recipes' own counts are larger)


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
    parser.add_argument("--recipe", default=None,
                        help="the field's complete settings: paper (default; pixels, normalized steps), lucent "
                        "(decorrelated Fourier image, Adam, Lucent's transforms) or maco (phase over a fixed "
                        "spectrum, NAdam, random crops); the options below override its parts")
    parser.add_argument("--param", default=None,
                        help="what the optimizer changes: pixel, fourier or maco (default: the recipe's)")
    parser.add_argument("--spectrum", default=None, metavar="NAME|FILE",
                        help="maco's magnitude: digits, natural or a file from `proxygrad spectrum` "
                        "(default: the shipped one with the model's channels)")
    parser.add_argument("--methods", default="relu,proxygrad",
                        help="comma-separated backward rules: relu, leaky, proxygrad, redirected, "
                        "redirected-captum, softgate, guided")
    parser.add_argument("--slope", type=float, default=0.075, help="backward (proxygrad) or Leaky ReLU slope")
    parser.add_argument("--temperature", type=float, default=1.0, help="softgate's temperature t > 0")
    add_proxy_options(parser)
    parser.add_argument("--steps", type=int, default=None,
                        help=f"default: {DEFAULT_STEPS}, or the recipe's own when --recipe is given")
    parser.add_argument("--lr", type=float, default=None,
                        help="step size (default: the recipe's; paper: 25 for 3x224x224, scaled to the image size)")
    parser.add_argument("--step-rule", default=None, choices=("normalized", "plain", "adam", "nadam"),
                        help="default: the recipe's (paper: normalized)")
    parser.add_argument("--seeds", type=ints, default=(0,), help="comma-separated seeds (one image per seed)")
    parser.add_argument("--init-sigma", type=float, default=0.1, help="std of the initial Gaussian noise")
    parser.add_argument("--init", default=None, metavar="IMAGE", help="start from this picture instead of gray")
    parser.add_argument("--regularize", default=None,
                        help="preset: none, paper (weak blur + small rotation), lucent or maco (default: the recipe's)")
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
    add_compile_option(parser)
    parser.add_argument("--transparency", action="store_true",
                        help="also write MACO's transparency map of each image (sum over steps of |d objective / "
                        "d image|) as NNN_..._transparency.png and the image with it as alpha (NNN_..._alpha.png)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/visualize-DATE-TIME)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _parametrization(args: argparse.Namespace, chosen, channels: int):
    """--param (or the recipe's), with maco's spectrum loaded and checked against the model's channels."""
    from ..am.parametrizations import parametrization

    name = args.param or chosen.parametrization
    if args.spectrum is not None and name != "maco":
        raise ValueError(f"--spectrum goes with the maco parametrization (--recipe maco or --param maco), "
                         f"not {name!r}")
    param = parametrization(name, **({"spectrum": args.spectrum} if name == "maco" else {}))
    if name == "maco":
        param.load(channels)
    return param


def _check_combination(param, regularize: str) -> None:
    """A spectrum parametrization with a preset that acts on pixels: an error naming the ones that fit."""
    from ..am.presets import PRESETS, preset

    if param.pixel_space or not preset(regularize).acts_on_pixels:
        return
    fits = [name for name in PRESETS if not preset(name).acts_on_pixels]
    raise ValueError(f"--param {param.name} cannot use --regularize {regularize} (it acts on pixels after each "
                     f"step); choose --regularize {' or '.join(fits)}")


def proxy_settings(config) -> dict:
    """The kinds a RenderConfig changes and the settings they use (defaults filled in), for results.json."""
    from ..surrogates.patch import proxy_settings as settings_of

    return settings_of(config.kinds, **config.proxy_options)


def build_configs(args: argparse.Namespace, spec, methods: list[str], init_image) -> tuple[dict, dict]:
    """{label: RenderConfig} for every method (label: see ``method_label``), and the settings they share
    (recipe, parametrization, steps, step rule, lr, regularization, compile, transparency). Raises ValueError
    before any work."""
    from ..am.presets import build
    from ..am.recipes import recipe, recipe_config
    from ..report.visualization import RECTIFIERS_ONLY, SLOPED, method_label

    if not methods:
        raise ValueError("--methods is empty: name at least one method (e.g. relu,proxygrad)")
    chosen = recipe(args.recipe or "paper")
    param = _parametrization(args, chosen, spec.channels)
    regularize = args.regularize or chosen.regularization
    _check_combination(param, regularize)
    regularization = build(regularize, model_size=tuple(spec.size), jitter=args.jitter, scale=args.scale,
                           rotate=args.rotate, blur=args.blur, scheme=args.scheme, tv=args.tv, l2=args.l2)
    shared = dict(parametrization=param, regularization=regularization, temperature=args.temperature,
                  steps=args.steps if args.steps is not None else chosen.steps if args.recipe else DEFAULT_STEPS,
                  step_rule=args.step_rule or chosen.step_rule, lr=args.lr if args.lr is not None else chosen.lr)
    proxies = proxy_options(args, methods)
    configs = {}
    for method in methods:
        slope = args.slope if method in SLOPED else 0.0
        kinds = proxies.get("kinds", RECTIFIERS_ONLY) if method == "proxygrad" else RECTIFIERS_ONLY
        configs[method_label(method, args.slope, args.temperature, kinds)] = recipe_config(
            chosen.name, spec, method=method, slope=slope, init_sigma=args.init_sigma, init_image=init_image,
            octaves=args.octaves, batch_size=args.batch_size, memory_mb=args.memory_mb, precision=args.precision,
            channels_last=args.channels_last, progress=not args.quiet, compile=compile_option(args.compile),
            transparency=args.transparency, **shared,
            **(proxies if method == "proxygrad" else {}))
    image_size = next(iter(configs.values())).image_size
    proxygrad = next((c for c in configs.values() if c.method == "proxygrad"), None)
    settings = {"recipe": chosen.name, "parametrization": param.describe(), "regularize": regularize,
                "regularization": repr(regularization), "temperature": args.temperature, "steps": shared["steps"],
                "step_rule": shared["step_rule"], "lr": shared["lr"],
                "image_size": list(image_size) if image_size else None,
                "proxies": proxy_settings(proxygrad) if proxygrad is not None else None,
                "compile": args.compile, "transparency": args.transparency}
    return configs, settings


def run(args: argparse.Namespace) -> int:
    """Render the objectives with each method, write the run directory, print a summary."""
    import time
    from pathlib import Path

    import torch

    from ..am.distributed import finish, local_device, render_sharded, world
    from ..am.api import resolve_objectives
    from ..am.init import load_image
    from ..am.objectives import target_class
    from ..models import load
    from ..report.visualization import NOT_ASCENT_NOTE, write_visualization

    start = time.perf_counter()
    rank, processes = world()
    compile_option(args.compile)
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
    init_image = load_image(args.init, loaded.spec) if args.init else None
    configs, shared = build_configs(args, loaded.spec, methods, init_image)
    jobs = [(o, s) for o in objectives for s in args.seeds]
    out = Path(run_dir(args.out, "visualize"))
    results = {}
    for label, config in configs.items():
        if config.compile:  # each method is a new graph per shape: keep under dynamo's recompile limit (8)
            torch._dynamo.reset()
        results[label] = render_sharded(loaded.model, loaded.spec, [o for o, _ in jobs], [s for _, s in jobs],
                                        config, device=device)
    if rank != 0:
        finish()
        return 0
    settings = {"model": loaded.name, "model_source": loaded.source, "weights": args.weights,
                "device": str(device), "methods": methods, "slope": args.slope, **shared,
                "seeds": list(args.seeds), "init_sigma": args.init_sigma, "init": args.init,
                "octaves": [vars(o) for o in args.octaves],
                "size": list(loaded.spec.size), "processes": processes,
                "batch_size": args.batch_size, "memory_mb": args.memory_mb, "precision": args.precision,
                "channels_last": args.channels_last,
                "objectives": [o.name for o, _ in jobs]}
    payload = write_visualization(out, results, loaded.spec, [target_class(o) for o, _ in jobs], settings,
                                  time.perf_counter() - start)
    width = max(20, *(len(method) + 3 for method in payload["methods"]))  # labels with kinds: "... [all]"
    print(f"{'method':<{width}}{'mean activation':>16}{'classified as target':>22}{'seconds':>9}")
    for method, summary in payload["methods"].items():
        share = "-" if summary["target_share"] is None else f"{100 * summary['target_share']:.0f}%"
        name = method if summary["ascent"] else f"{method} *"
        print(f"{name:<{width}}{summary['mean_activation']:>16.3f}{share:>22}{summary['seconds']:>9.1f}")
    if not all(summary["ascent"] for summary in payload["methods"].values()):
        print(f"* {NOT_ASCENT_NOTE}")
    print(f"wrote {out}/ (grid.png, activation.png, results.json, report.html, images/)")
    finish()
    return 0
