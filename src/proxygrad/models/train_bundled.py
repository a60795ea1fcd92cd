"""Train the bundled default model (:class:`~proxygrad.models.digits.DigitsResNet`) on the bundled digits data.

Regenerate the shipped weights and their provenance records with::

    proxygrad train-bundled --seed 0 --out src/proxygrad/models/bundled                                    # digits
    proxygrad train-bundled --seed 1 --widths 12,24,48,96 --name digits-b --out src/proxygrad/models/bundled  # digits-b
    # or, without the CLI:  python -m proxygrad.models.train_bundled --seed 0 --out src/proxygrad/models/bundled

``--name NAME`` writes ``NAME.pt`` and ``NAME.json`` with ``-`` turned into ``_`` (``digits-b`` -> ``digits_b.pt``).

Deterministic on the CPU for a given seed and thread count (other thread counts give equivalent weights, equal
up to float rounding in the summation order). About a minute on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import math
import operator
import os
import platform
import re
import shlex
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .digits import SPLIT_SEED, TEST_FRACTION, DigitsResNet, digits_data, sha256_file

DATA_DESCRIPTION = (
    "scikit-learn load_digits (1797 gray 8x8 images, 17 levels 0..16, digits 0-9), scaled to [0,1], upsampled "
    "bilinearly (align_corners=False) to 32x32, mapped to [-1,1]"
)


@dataclass
class TrainConfig:
    """Hyper-parameters of ``train-bundled``. ``train_subset`` (first N training images) is for quick tests."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    shift: int = 3
    size: int = 32
    widths: tuple[int, ...] = (16, 32, 64)
    train_subset: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift must be an int >= 0 (pixels), got {self.shift!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.train_subset is not None and self.train_subset < 1:
            raise ValueError(f"train_subset must be None or a positive int, got {self.train_subset!r}")
        try:
            widths = tuple(operator.index(w) for w in self.widths)
        except TypeError:
            widths = ()
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be one or more positive ints (channels per block), got {self.widths!r}")
        self.widths = widths


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_CLI_FIELDS = ("seed", "epochs", "batch_size", "lr", "widths", "train_subset")  # what train-bundled's flags set


def file_stem(name: str) -> str:
    """File stem of the bundled model ``name``: ``-`` becomes ``_`` ("digits-b" -> "digits_b"); ValueError for
    names other than letters, digits, ``-`` and ``_``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '-' and '_' (starting with a letter or digit), got {name!r}")
    return name.replace("-", "_")


@dataclass
class TrainResult:
    """Outcome of :func:`train_digits`: the trained model (eval mode, CPU) and its numbers."""

    model: DigitsResNet
    config: TrainConfig
    test_accuracy: float
    train_accuracy: float
    seconds: float
    history: list[dict] = field(default_factory=list)


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator, fill: float = -1.0) -> Tensor:
    """Shift each image of (B, C, H, W) by integers in [-max_shift, max_shift] along H and W; ``fill`` enters."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b), generator=generator)
    rows = dy[:, None] + torch.arange(h)[None, :]
    cols = dx[:, None] + torch.arange(w)[None, :]
    out = padded.permute(0, 2, 3, 1)[torch.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def evaluate(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (put in eval mode) on ``images`` (N, C, H, W), ``labels`` (N,)."""
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        correct += (model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum().item()
    return correct / max(len(labels), 1)


def _epoch(model, opt, sched, images, labels, cfg: TrainConfig, gen: torch.Generator) -> float:
    """One pass over shuffled, shifted training data; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(labels), generator=gen)
    total, seen = 0.0, 0
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i:i + cfg.batch_size]
        if len(idx) < 2:  # BatchNorm needs two samples
            continue
        x = random_shift(images[idx], cfg.shift, gen)
        loss = F.cross_entropy(model(x), labels[idx], label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def train_digits(config: TrainConfig | None = None, *, progress: bool = True) -> TrainResult:
    """Train a :class:`DigitsResNet` from scratch on the bundled digits (CPU, deterministic for a seed).

    SGD with Nesterov momentum, a one-cycle learning rate, label smoothing and random shifts (fill -1). The
    global RNG state is saved and restored, so calling this leaves no trace on other code's randomness.
    """
    from tqdm.auto import tqdm

    cfg = config or TrainConfig()
    start = time.perf_counter()
    train_x, train_y = digits_data("train", cfg.size)
    test_x, test_y = digits_data("test", cfg.size)
    if cfg.train_subset is not None:
        train_x, train_y = train_x[:cfg.train_subset], train_y[:cfg.train_subset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = DigitsResNet(widths=cfg.widths, num_classes=10)
        gen = torch.Generator().manual_seed(cfg.seed)
        steps = cfg.epochs * sum(1 for i in range(0, len(train_y), cfg.batch_size) if len(train_y) - i >= 2)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                              weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.2)
        history = []
        bar = tqdm(range(cfg.epochs), desc="train-bundled", unit="epoch", disable=not progress)
        for epoch in bar:
            loss = _epoch(model, opt, sched, train_x, train_y, cfg, gen)
            history.append({"epoch": epoch + 1, "train_loss": loss})
            bar.set_postfix(loss=f"{loss:.3f}")
    test_acc = evaluate(model, test_x, test_y)
    train_acc = evaluate(model, train_x, train_y)
    history[-1].update(test_accuracy=test_acc)
    return TrainResult(model.eval(), cfg, test_acc, train_acc, time.perf_counter() - start, history)


def command(cfg: TrainConfig, out: Path, name: str = "digits") -> str:
    """The command that reproduces ``cfg`` into ``out`` under ``name``: ``proxygrad train-bundled ...`` when its
    flags can say every setting that differs from the defaults, else a ``python -c`` line."""
    default = TrainConfig()
    changed = [k for k, v in asdict(cfg).items() if v != getattr(default, k)]
    if any(k not in _CLI_FIELDS for k in changed):
        args = ", ".join(f"{k}={getattr(cfg, k)!r}" for k in ["seed"] + [k for k in changed if k != "seed"])
        return ("python -c \"from proxygrad.models.train_bundled import TrainConfig, train_digits, save_bundled; "
                f"save_bundled(train_digits(TrainConfig({args})), {out.as_posix()!r}, name={name!r})\"")
    parts = ["proxygrad train-bundled", f"--seed {cfg.seed}"]
    for key in changed:
        if key != "seed":
            value = ",".join(map(str, cfg.widths)) if key == "widths" else getattr(cfg, key)
            parts.append(f"--{key.replace('_', '-')} {value}")
    if name != "digits":
        parts.append(f"--name {name}")
    parts.append(f"--out {shlex.quote(out.as_posix())}")
    return " ".join(parts)


def provenance(result: TrainResult, weights: Path, out_arg: Path, name: str = "digits") -> dict:
    """The JSON provenance record of saved weights (command, seed, data, split, accuracy, versions, sha256)."""
    import numpy
    import sklearn

    cfg = result.config
    cmd = command(cfg, out_arg, name)
    train_n = len(digits_data("train")[1]) if cfg.train_subset is None else cfg.train_subset
    return {
        "model": "proxygrad.models.digits.DigitsResNet",
        "widths": list(cfg.widths),
        "num_params": sum(p.numel() for p in result.model.parameters()),
        "input": {"channels": 1, "size": [cfg.size, cfg.size], "range": [-1, 1], "mean": [0.5], "std": [0.5]},
        "classes": [str(d) for d in range(10)],
        "name": name,
        "command": cmd,
        "command_without_cli": cmd.replace("proxygrad train-bundled", "python -m proxygrad.models.train_bundled"),
        "seed": cfg.seed,
        "data": DATA_DESCRIPTION,
        "split": {"method": "sklearn train_test_split, stratified", "random_state": SPLIT_SEED,
                  "test_fraction": TEST_FRACTION, "train": train_n, "test": len(digits_data("test")[1])},
        "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
        | {"optimizer": "SGD nesterov, OneCycleLR (pct_start 0.2)", "augmentation": f"random shifts up to "
           f"{cfg.shift} px, fill -1", "loss": f"cross entropy, label smoothing {cfg.label_smoothing}"},
        "test_accuracy": round(result.test_accuracy, 6),
        "train_accuracy": round(result.train_accuracy, 6),
        "training_seconds": round(result.seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                     "scikit-learn": sklearn.__version__},
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "weights_file": weights.name,
        "sha256": sha256_file(weights),
        "bytes": weights.stat().st_size,
    }


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # mode from the umask
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_bundled(result: TrainResult, out: str | Path, name: str = "digits") -> tuple[Path, Path]:
    """Save ``result`` as ``out/<stem>.pt`` (state dict) and ``out/<stem>.json`` (provenance), with
    ``stem = file_stem(name)`` ("digits-b" -> digits_b.pt); returns both paths."""
    stem = file_stem(name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights, record = out / f"{stem}.pt", out / f"{stem}.json"
    state = {k: v.detach().clone().contiguous() for k, v in result.model.state_dict().items()}
    buffer = io.BytesIO()  # not torch.save(path): the zip's inner folder would carry the temporary file's name
    torch.save(state, buffer)
    _atomic_write(weights, lambda p: p.write_bytes(buffer.getvalue()))
    data = provenance(result, weights, out, name)
    _atomic_write(record, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))
    return weights, record


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``train-bundled`` (added to ``parser`` when given, e.g. a CLI subparser)."""
    p = parser or argparse.ArgumentParser(prog="proxygrad train-bundled", description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="batch size (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    p.add_argument("--widths", type=_widths_arg, default=d.widths, metavar="W1,W2,...",
                   help="channels of the stem and of each residual block, one block per width (default "
                        f"{','.join(map(str, d.widths))}; digits-b: 12,24,48,96)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N",
                   help="train on the first N training images only (quick checks; default: all 1347)")
    p.add_argument("--name", default="digits",
                   help="model name; the files are NAME.pt and NAME.json with '-' as '_' (default %(default)s; "
                        "digits-b writes digits_b.pt and digits_b.json)")
    p.add_argument("--out", type=Path, default=Path("runs/train-bundled"),
                   help="folder for the .pt and .json files (default %(default)s; the shipped ones live in "
                        "src/proxygrad/models/bundled)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _widths_arg(text: str) -> tuple[int, ...]:
    """``--widths`` "12,24,48,96" -> (12, 24, 48, 96); positivity is checked by :class:`TrainConfig`."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 12,24,48,96, got {text!r}") \
            from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` that parsed ``train-bundled`` arguments ask for (ValueError if invalid)."""
    return TrainConfig(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       widths=args.widths, train_subset=args.train_subset)


def run_from_args(args: argparse.Namespace) -> int:
    """Train and save from parsed ``train-bundled`` arguments; prints accuracy, time and the files written."""
    cfg = config_from_args(args)
    file_stem(args.name)  # a bad name fails before training
    result = train_digits(cfg, progress=not args.quiet)
    weights, record = save_bundled(result, args.out, name=args.name)
    print(f"test accuracy {result.test_accuracy:.4f} (train {result.train_accuracy:.4f}) in {result.seconds:.1f} s")
    print(f"wrote {weights} ({weights.stat().st_size / 1e3:.0f} kB) and {record}")
    return 0


def main_train_bundled(argv: list[str] | None = None) -> int:
    """Entry point of ``proxygrad train-bundled``: parse ``argv`` (sys.argv[1:] when None), train, save."""
    try:
        return run_from_args(build_parser().parse_args(argv))
    except ValueError as err:
        print(f"train-bundled: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main_train_bundled())
