"""``proxygrad train``: train ResNet18 / PFNet18 (or any architecture) with ReLU, Leaky ReLU or ProxyGrad."""
from __future__ import annotations

import argparse

from ._args import run_dir


def register(sub) -> None:
    parser = sub.add_parser("train", help="train a network with relu / leaky / proxygrad (the paper's Section 6; "
                            "defaults: Appendix 11.2); resumable, data-parallel under torchrun")
    add_train_options(parser)
    parser.add_argument("--mode", default=None, choices=("relu", "leaky", "proxygrad"),
                        help="rectifier: relu, leaky (slope s in both passes) or proxygrad (slope s backward)")
    parser.add_argument("--slope", type=float, default=None, help="negative slope s (leaky, proxygrad)")
    parser.add_argument("--arch", default=None, help="resnet18 (default), pfnet18, or a torchvision / timm:NAME "
                        "architecture")
    parser.add_argument("--seed", type=int, default=None, help="initialization, data order, augmentation and "
                        "(caltech101) split (default 0)")
    parser.add_argument("--out", default=None, help="run directory; an existing one with the same settings is "
                        "resumed (default: runs/train-DATE-TIME)")
    parser.set_defaults(func=run)


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``table``: data, hyper-parameters, devices."""
    from ..train.datasets import DATASETS

    parser.add_argument("--preset", default="paper", help="paper (Appendix 11.2: 300 epochs, ...) or digits "
                        "(the bundled data, about a minute on 2 CPU cores)")
    parser.add_argument("--dataset", default=None, help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--root", default=None, help="folder holding the dataset")
    parser.add_argument("--download", action="store_true", default=None,
                        help="fetch caltech101 / flowers102 through torchvision when missing")
    parser.add_argument("--skip-corrupt", action="store_true", default=None,
                        help="skip unreadable images (counted in results.json) instead of stopping")
    parser.add_argument("--epochs", type=int, default=None, help="default 300")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size (default 64)")
    parser.add_argument("--lr", type=float, default=None, help="initial learning rate (default 0.003)")
    parser.add_argument("--final-lr", type=float, default=None, help="last step of the schedule (default 3e-6)")
    parser.add_argument("--weight-decay", type=float, default=None, help="LAMB's coupled weight decay (default 1)")
    parser.add_argument("--grad-clip", type=float, default=None, help="clip the global gradient norm (default off)")
    parser.add_argument("--image-size", type=int, default=None, help="crop side in pixels (default 224)")
    parser.add_argument("--resize", type=int, default=None, help="shorter side before cropping (default 256; 0 keeps the size)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="random horizontal flips (default on; off for digits)")
    parser.add_argument("--train-per-class", type=int, default=None, help="caltech101 (default 20)")
    parser.add_argument("--test-per-class", type=int, default=None, help="caltech101 (default 10)")
    parser.add_argument("--test-fraction", type=float, default=None,
                        help="imagefolder tree without train/test folders: held-out share per class (default 0.2)")
    parser.add_argument("--eval-every", type=int, default=None, help="test every N epochs and at the end "
                        "(default 10)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available; under "
                        "torchrun each process's own GPU)")
    parser.add_argument("--workers", type=int, default=None, help="data loading processes (default: 0 for digits, "
                        "else up to 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def config_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig / DataConfig fields given on the command line (None: keep the preset's)."""
    names = ("dataset", "root", "download", "skip_corrupt", "epochs", "batch_size", "lr", "final_lr", "weight_decay",
             "grad_clip", "image_size", "resize", "flip", "train_per_class", "test_per_class", "test_fraction",
             "eval_every", "arch", "mode", "slope", "seed")
    return {name: getattr(args, name, None) for name in names}


def base_config(args: argparse.Namespace):
    """The TrainConfig of the parsed options; a clear error when the paper preset has no dataset."""
    from ..train import make_config

    if args.preset == "paper" and args.dataset is None:
        raise ValueError("choose --dataset (caltech101, cub200, flowers102 or imagefolder) with --root, or "
                         "--preset digits to train on the bundled data")
    return make_config(args.preset, **config_overrides(args))


def default_workers(args: argparse.Namespace, config, world: int = 1) -> int:
    import os

    if args.workers is not None:
        if args.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {args.workers}")
        return args.workers
    return 0 if config.data.dataset == "digits" else min(8, max(1, (os.cpu_count() or 1) // world))


def run(args: argparse.Namespace) -> int:
    """Train (or resume) one run; print its test accuracy and the files written (rank 0)."""

    from ..train import dist, train

    config = base_config(args)
    env = dist.init(args.device)
    try:
        out = dist.broadcast(run_dir(args.out, "train"), env)
        if env.is_main:
            print(f"{config.arch} {config.label} on {config.data.dataset}, seed {config.seed}, {config.epochs} "
                  f"epochs, {env.world} process(es) on {env.device}; run directory {out} (rerun with --out {out} "
                  f"to resume)")
        results = train(config, out, env=env, workers=default_workers(args, config, env.world),
                        progress=not args.quiet)
    finally:
        dist.close(env)
    if env.is_main:
        skipped = results["data"]["skipped"]
        print(f"test accuracy {100 * results['test_accuracy']:.2f}% (train {100 * results['train_accuracy']:.2f}%) "
              f"after {results['epochs']} epochs, {results['seconds']:.0f} s"
              + (f"; {skipped} unreadable images skipped" if skipped else ""))
        print(f"wrote {out}/ (model.pt, checkpoint.pt, metrics.csv, metrics.png, results.json)")
    return 0
