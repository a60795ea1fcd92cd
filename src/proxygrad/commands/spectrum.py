"""``proxygrad spectrum``: the average amplitude spectrum of a folder of images (MACO's magnitude template),
or a regenerated copy of a shipped one (``--bundled digits|natural``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._args import ints

BUNDLED_NAMES = ("digits", "natural")


def register(sub) -> None:
    parser = sub.add_parser("spectrum", help="average amplitude spectrum of a folder of images (MACO's "
                            "magnitude template), with its provenance")
    parser.add_argument("folder", nargs="?", default=None, metavar="DIR",
                        help="folder of images (png/jpg/jpeg/bmp/gif/tif/webp, searched recursively)")
    parser.add_argument("--size", type=ints, default=None, help="H or H,W in pixels (default 224)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None, help="3 = RGB (default), 1 = gray")
    parser.add_argument("--max-images", type=int, default=None, help="use only the first N files (sorted paths)")
    parser.add_argument("--bundled", choices=BUNDLED_NAMES, default=None,
                        help="regenerate a shipped spectrum from its bundled data instead of reading DIR")
    parser.add_argument("--out", default=None,
                        help="output .pt file (default: spectrum.pt, or NAME.pt with --bundled)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[int, int]:
    """Validate the arguments before any work; returns (H, W)."""
    if (args.folder is None) == (args.bundled is None):
        raise ValueError("give either DIR or --bundled NAME (exactly one)")
    if args.bundled and (args.size or args.channels or args.max_images):
        raise ValueError("--bundled fixes size, channels and images; drop --size/--channels/--max-images")
    size = tuple(args.size or (224,))
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"--size must be H or H,W with positive integers, got {args.size}")
    if args.max_images is not None and args.max_images < 1:
        raise ValueError(f"--max-images must be at least 1, got {args.max_images}")
    if args.folder is not None and not Path(args.folder).is_dir():
        raise ValueError(f"image folder {args.folder} does not exist or is not a folder")
    if args.out is not None and (Path(args.out).suffix != ".pt" or Path(args.out).is_dir()):
        raise ValueError(f"--out must be a .pt file name (its provenance goes next to it as .json), got {args.out}")
    return size


def run(args: argparse.Namespace) -> int:
    """Compute (or regenerate) the spectrum, write it atomically with a JSON copy of its source, summarize."""
    size = _check(args)
    import json

    from ..am.spectrum import compute_spectrum, make_bundled, save_spectrum
    from ..report.files import write_json

    if args.bundled:
        spectrum = make_bundled(args.bundled, progress=not args.quiet)
    else:
        spectrum = compute_spectrum(args.folder, size=size, channels=args.channels or 3,
                                    max_images=args.max_images, progress=not args.quiet)
    out = Path(args.out or (f"{args.bundled}.pt" if args.bundled else "spectrum.pt"))
    save_spectrum(out, spectrum)
    provenance = write_json(out.with_suffix(".json"), spectrum.source)
    magnitude = spectrum.magnitude
    print(f"wrote {out} (magnitude {tuple(magnitude.shape)}, mean amplitude {magnitude.mean().item():.4g}) "
          f"and {provenance}")
    print(json.dumps({key: spectrum.source[key] for key in ("images", "size", "channels", "sha256", "command")}))
    return 0
