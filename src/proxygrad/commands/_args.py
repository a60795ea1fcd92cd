"""Argument types and options shared by the subcommands (comma-separated lists, proxies, compilation)."""
from __future__ import annotations

import argparse
from datetime import datetime


def floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def run_dir(out: str | None, *parts: str) -> str:
    """``out``, or the default run directory ``runs/PART-...-DATE-TIME`` (local time, to the second)."""
    return out or f"runs/{'-'.join(parts)}-{datetime.now():%Y%m%d-%H%M%S}"


def add_proxy_options(parser: argparse.ArgumentParser) -> None:
    """--kinds and the per-kind settings of the proxies beyond rectifiers (visualize, sweep)."""
    parser.add_argument("--kinds", type=names, default=("rectifiers",), metavar="KIND,...",
                        help="what method proxygrad changes: rectifiers (default), smooth (GELU, SiLU, Mish, ELU, "
                        "Hardswish), pooling (max pooling) or all; beyond rectifiers, --methods may hold only relu "
                        "and proxygrad")
    parser.add_argument("--smooth-variant", default=None,
                        help="smooth proxy: floor, add or leaky (default: add; see docs/proxies.md)")
    parser.add_argument("--smooth-slope", type=float, default=None, help="smooth proxy's slope (default: 0.05)")
    parser.add_argument("--pool-variant", default=None, help="max pooling proxy: softmax or share (default: softmax)")
    parser.add_argument("--pool-temperature", type=float, default=None,
                        help="softmax pooling proxy's temperature t > 0 (default: 0.5)")
    parser.add_argument("--pool-share", type=float, default=None,
                        help="share pooling proxy's share s >= 0 (default: 0.2)")


PROXY_FLAGS = {"smooth_variant": "--smooth-variant", "smooth_slope": "--smooth-slope",
               "pool_variant": "--pool-variant", "pool_temperature": "--pool-temperature",
               "pool_share": "--pool-share"}


def proxy_options(args: argparse.Namespace, methods: list[str]) -> dict:
    """--kinds and the per-kind options as RenderConfig fields, for method proxygrad. ValueError when they
    would be ignored or another method cannot use them."""
    from ..surrogates.patch import check_kinds

    options = {name: getattr(args, name) for name in PROXY_FLAGS if getattr(args, name) is not None}
    kinds = check_kinds("all" if args.kinds == ("all",) else args.kinds)
    if not options and kinds == ("rectifiers",):
        return {}
    given = (["--kinds"] if kinds != ("rectifiers",) else []) + [PROXY_FLAGS[name] for name in options]
    if "proxygrad" not in methods:
        raise ValueError(f"{' and '.join(given)} apply to method proxygrad only, which --methods does not include")
    others = [m for m in methods if m not in ("relu", "proxygrad")]
    if set(kinds) != {"rectifiers"} and others:
        raise ValueError(f"--kinds {','.join(args.kinds)}: only method proxygrad has proxies beyond rectifiers; "
                         f"drop {', '.join(others)} from --methods or use --kinds rectifiers")
    return {"kinds": kinds, **options}


def add_compile_option(parser: argparse.ArgumentParser) -> None:
    """``--compile [MODE]``: absent False, alone True (torch.compile's default mode), or a mode name."""
    parser.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                        help="run the proxy's forward through torch.compile; MODE: default (when given alone), "
                        "reduce-overhead (CUDA graphs), max-autotune or max-autotune-no-cudagraphs")


def compile_option(value) -> bool | str:
    """``--compile``'s value checked: False, True or one of torch.compile's modes; ValueError otherwise."""
    from ..am.config import COMPILE_MODES

    if value is True or value is False or value in COMPILE_MODES:
        return value
    raise ValueError(f"--compile takes no value (torch.compile's default mode) or one of "
                     f"{', '.join(COMPILE_MODES)}; got {value!r}")
