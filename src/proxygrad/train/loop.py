"""Training with ReLU, Leaky ReLU or ProxyGrad (the paper's Section 6, hyper-parameters of Appendix 11.2).

Defaults (:class:`TrainConfig`): Kaiming-initialized ResNet18 (torchvision) or PFNet18, cross-entropy, LAMB
(``timm.optim.Lamb``) with lr 0.003, batch size 64, weight decay 1, 300 epochs, inputs normalized by the
training split's RGB mean and std, random crops and horizontal flips.

Choices the paper leaves open, made here:

- Weight decay is COUPLED (LAMB's own form, as in the authors' public LAMB code): ``weight_decay * w`` is added
  to the Adam direction before the layer-wise trust ratio ``||w|| / ||update||`` rescales it (timm's
  ``decoupled_decay=False``), for every parameter including BatchNorm and biases. With weight decay 1 the
  trust ratio keeps each step relative to the weight norm. No gradient clipping (timm's default clips the
  global norm at 1; ``grad_clip`` turns it on). Bias correction on, as in the LAMB paper (the authors' code
  leaves it out and caps ||w|| at 10 in the trust ratio; timm does neither).
- Step-wise learning rate (:func:`step_lr`), derived from the authors' public schedule: constant until 60 % of
  the epochs, then six steps at 60, 80, 84, 88, 92 and 96 % of the epochs, each dividing the rate by
  ``(lr / final_lr) ** (1/6)`` (sqrt(10) for 0.003 -> 3e-6): for 300 epochs 3e-3 until epoch 180, then
  9.5e-4, 3e-4 (240), 9.5e-5 (252), 3e-5 (264), 9.5e-6 (276), 3e-6 (288-299). The authors round the odd steps
  to 0.3x; the geometric form keeps ``final_lr`` a parameter.
- Images (sizes are not in the paper): the shorter side resized to 256, random 224 x 224 crops and flips for
  training, the central crop for testing; the mean and std are measured on the training split's central crops.
  A last global batch too small to give every process two images is dropped (BatchNorm needs two).
- The reported test accuracy is the last epoch's: nothing is selected on the test set.
- A run directory holds ``checkpoint.pt`` (written atomically after every epoch), ``metrics.csv`` and
  ``metrics.png`` (per epoch), and at the end ``model.pt`` and ``results.json``. Starting again on the same
  directory with the same settings resumes after the last finished epoch; on the CPU the final weights are
  bitwise those of an uninterrupted run (same thread count), since every random number of an epoch is drawn
  from (seed, epoch).
"""
from __future__ import annotations

import copy
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from ..surrogates import MODES, convert
from . import dist
from .datasets import CenterCrop, DataConfig, Prepared, RandomCropFlip, batches, data_config, prepare

LR_MILESTONES = (0.6, 0.8, 0.84, 0.88, 0.92, 0.96)
CHECKPOINT, METRICS, MODEL, RESULTS = "checkpoint.pt", "metrics.csv", "model.pt", "results.json"
CHECKPOINT_FORMAT = 1
PRESETS = {
    "paper": {},
    # The bundled digits: about a minute on 2 CPU cores for ResNet18 (6.5 CPU-seconds per epoch on one thread).
    "digits": {"dataset": "digits", "epochs": 6, "eval_every": 1},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights.

    Attributes:
        arch: "resnet18", "pfnet18", or any architecture name :func:`proxygrad.load` builds (torchvision,
            "timm:NAME"), randomly initialized with ``num_classes`` outputs.
        mode, slope: "relu" (slope 0), "leaky" (Leaky ReLU with ``slope`` > 0 in both passes) or "proxygrad"
            (ReLU forward, ``slope`` > 0 backward), applied with :func:`proxygrad.convert`.
        data: :class:`~proxygrad.train.data.DataConfig`.
        seed: initialization, data order, augmentation and (Caltech101) split.
        epochs, batch_size: the global batch (split over processes under torchrun).
        lr, final_lr: start and end of the step-wise schedule (:func:`step_lr`).
        weight_decay, betas, eps, bias_correction, grad_clip: LAMB's (coupled decay; ``grad_clip`` None = off).
        eval_every: test every this many epochs (and always after the last).
    """

    arch: str = "resnet18"
    mode: str = "relu"
    slope: float = 0.0
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    epochs: int = 300
    batch_size: int = 64
    lr: float = 0.003
    final_lr: float = 3e-6
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    bias_correction: bool = True
    grad_clip: float | None = None
    eval_every: int = 10

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (isinstance(self.slope, (int, float)) and math.isfinite(self.slope) and self.slope >= 0):
            raise ValueError(f"slope must be a finite number >= 0, got {self.slope!r}")
        if self.mode == "relu" and self.slope != 0:
            raise ValueError(f"mode relu takes no slope (got {self.slope}); choose mode leaky or proxygrad")
        if self.mode != "relu" and self.slope == 0:
            raise ValueError(f"mode {self.mode} needs a slope > 0 (e.g. 0.1); with slope 0 it is relu")
        for name in ("epochs", "batch_size", "eval_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("lr", "final_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.final_lr > self.lr:
            raise ValueError(f"final_lr ({self.final_lr}) must not exceed lr ({self.lr})")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be None (off) or > 0, got {self.grad_clip!r}")
        if not _is_architecture(self.arch):
            raise ValueError(f"arch must be an architecture name (resnet18, pfnet18, a torchvision name or "
                             f"timm:NAME), not a trained model or file; got {self.arch!r}")
        object.__setattr__(self, "betas", tuple(self.betas))

    def to_dict(self) -> dict:
        """JSON-friendly settings (the data settings nested under "data")."""
        return json.loads(json.dumps(asdict(self)))

    @property
    def label(self) -> str:
        """e.g. "relu", "leaky s=0.1", "proxygrad s=0.2"."""
        return "relu" if self.mode == "relu" else f"{self.mode} s={self.slope:g}"


def _is_architecture(name) -> bool:
    """Whether ``name`` can be an architecture to train from scratch (not a bundled model or a file)."""
    from ..models.registry import BUNDLED_NAMES, CHECKPOINT_SUFFIXES

    return isinstance(name, str) and bool(name) and "=" not in name and "/" not in name and \
        name.lower() not in BUNDLED_NAMES and not name.lower().endswith(CHECKPOINT_SUFFIXES)


def make_config(preset: str = "paper", **overrides) -> TrainConfig:
    """A :class:`TrainConfig` from a preset ("paper": Appendix 11.2; "digits": the bundled data, about a
    minute) and overrides of any TrainConfig or DataConfig field (None values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    given = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    data_fields = {f.name for f in fields(DataConfig)}
    train_fields = {f.name for f in fields(TrainConfig)} - {"data"}
    unknown = set(given) - data_fields - train_fields
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {sorted(data_fields | train_fields)}")
    data = data_config(given.pop("dataset", "caltech101"), **{k: given.pop(k) for k in list(given)
                                                              if k in data_fields})
    return TrainConfig(data=data, **given)


def step_lr(epoch: int, epochs: int, lr: float, final_lr: float) -> float:
    """Learning rate of 0-based ``epoch``: ``lr * (final_lr / lr) ** (k / 6)`` where ``k`` counts the milestones
    ``floor(f * epochs)``, f in ``LR_MILESTONES``, that ``epoch`` has reached (the last epochs run at
    ``final_lr``)."""
    k = sum(epoch >= math.floor(f * epochs + 1e-9) for f in LR_MILESTONES)
    return lr * (final_lr / lr) ** (k / len(LR_MILESTONES))


def build_model(arch: str, num_classes: int, seed: int) -> nn.Module:
    """A randomly initialized ``arch`` (its builder's Kaiming initialization) drawn from ``seed``; the global
    RNG is left as it was."""
    from ..models import load

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return load(arch, num_classes=num_classes).model.train()


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """LAMB with coupled weight decay on every parameter and no clipping unless ``cfg.grad_clip``."""
    from timm.optim import Lamb

    return Lamb(model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                bias_correction=cfg.bias_correction, max_grad_norm=cfg.grad_clip, decoupled_decay=False)


def forward_model(trained: nn.Module, template: nn.Module, mode: str, slope: float) -> nn.Module:
    """The deployable network: ``template`` (an unconverted copy of the architecture) with the trained weights,
    on the CPU, in eval mode, with the rectifiers of its FORWARD pass as plain modules: ``nn.ReLU`` for relu and
    proxygrad (ProxyGrad changes only gradients), ``nn.LeakyReLU(slope)`` for leaky."""
    model = copy.deepcopy(template).cpu()
    model.load_state_dict({k: v.detach().cpu() for k, v in dist.unwrap(trained).state_dict().items()})
    if mode == "leaky":
        leaky: dict[int, nn.Module] = {}
        for parent in list(model.modules()):
            for name, child in list(parent._modules.items()):
                if type(child) is nn.ReLU:
                    parent._modules[name] = leaky.setdefault(id(child), nn.LeakyReLU(slope, inplace=child.inplace))
    return model.eval()


# ---- one epoch -----------------------------------------------------------------------------------------------
def train_epoch(model: nn.Module, optimizer, view: RandomCropFlip, cfg: TrainConfig, epoch: int, env: dist.DistEnv,
                *, workers: int = 0, progress: bool = False) -> tuple[float, float]:
    """One pass over the training split; returns (mean loss, accuracy) over all processes' samples.

    Each step's loss is the SUM over this process's shard times ``world / global batch size``, so that the
    gradient DistributedDataParallel averages is the mean over the whole global batch.
    """
    from tqdm.auto import tqdm

    model.train()
    plan = batches(len(view), cfg.batch_size, cfg.seed, epoch, rank=env.rank, world=env.world)
    sizes = [len(b) for b in batches(len(view), cfg.batch_size, cfg.seed, epoch)]  # global batch sizes
    loader = DataLoader(view, batch_sampler=plan, num_workers=workers, pin_memory=env.device.type == "cuda")
    total = correct = seen = 0.0
    bar = tqdm(loader, total=len(plan), desc=f"epoch {epoch + 1}", unit="batch", leave=False,
               disable=not progress)
    for (x, y), global_size in zip(bar, sizes):
        x, y = x.to(env.device, non_blocking=True), y.to(env.device, non_blocking=True)
        logits = model(x)
        loss_sum = F.cross_entropy(logits, y, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        (loss_sum * (env.world / global_size)).backward()
        optimizer.step()
        total += loss_sum.item()
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    total, correct, seen = dist.all_sum([total, correct, seen], env)
    return total / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, view: CenterCrop, env: dist.DistEnv, *, batch_size: int = 128,
             workers: int = 0) -> tuple[float, float]:
    """(mean cross-entropy, top-1 accuracy in [0, 1]) of ``model`` in eval mode on ``view``; under torchrun each
    process tests every ``world``-th image and the sums are combined."""
    net = dist.unwrap(model)
    net.eval()
    share = Subset(view, range(env.rank, len(view), env.world))
    total = correct = 0.0
    for x, y in DataLoader(share, batch_size=batch_size, num_workers=workers):
        x, y = x.to(env.device), y.to(env.device)
        logits = net(x)
        total += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
    total, correct, seen = dist.all_sum([total, correct, len(share)], env)
    return total / max(seen, 1), correct / max(seen, 1)


# ---- run directory -------------------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save(state)`` to ``path`` atomically (a kill never leaves a half-written checkpoint)."""
    from ..report.files import write_bytes

    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path, cfg: TrainConfig) -> dict | None:
    """The checkpoint at ``path`` (None when there is none); ValueError when it is unreadable or was written
    with other settings (the differing ones are named)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path} ({type(err).__name__}: {err}); delete it to start "
                         f"over") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a proxygrad training checkpoint (format {CHECKPOINT_FORMAT})")
    _check_settings(state["config"], cfg, path.parent)
    return state


def _check_settings(saved: dict, cfg: TrainConfig, where: Path) -> None:
    """ValueError naming the differing settings when ``saved`` (a ``cfg.to_dict()``) is not ``cfg``'s."""
    old, new = _flat(saved), _flat(cfg.to_dict())
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        diff = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:6])
        raise ValueError(f"run directory {where} holds a run with other settings ({diff}); use another --out or "
                         f"the same settings")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def write_metrics(out: Path, history: list[dict]) -> None:
    """``metrics.csv`` (one row per epoch; test columns empty where not tested) and ``metrics.png``."""
    from ..report.files import write_csv, write_figure

    columns = ["epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"]
    write_csv(out / METRICS, history, columns)
    write_figure(out / "metrics.png", metrics_figure(history))


def metrics_figure(history: list[dict]):
    """Loss and accuracy vs epoch (training: every epoch; test: where measured)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(9, 3.4))
    loss_ax, acc_ax = figure.subplots(1, 2)
    for split in ("train", "test"):
        rows = [r for r in history if r.get(f"{split}_loss") is not None]
        epochs = [r["epoch"] for r in rows]
        loss_ax.plot(epochs, [r[f"{split}_loss"] for r in rows], marker="." if split == "test" else None,
                     label=split)
        acc_ax.plot(epochs, [100 * r[f"{split}_accuracy"] for r in rows], marker="." if split == "test" else None,
                    label=split)
    for ax, label in ((loss_ax, "cross-entropy"), (acc_ax, "accuracy (%)")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _tensorboard(out: Path, start_epoch: int):
    """A TensorBoard ``SummaryWriter`` in ``out/tensorboard`` when tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out / "tensorboard"), purge_step=start_epoch + 1 if start_epoch else None)


# ---- the run -------------------------------------------------------------------------------------------------
def _data(cfg: TrainConfig, env: dist.DistEnv, known: dict | None, workers: int, progress: bool) -> Prepared:
    """The prepared splits; the first time, rank 0 scans the images and shares mean, std and skipped files."""
    if known is None:
        found = None
        if env.is_main:
            p = prepare(cfg.data, cfg.seed, workers=workers, progress=progress)
            found = {"mean": list(p.mean), "std": list(p.std), "skipped": p.skipped}
        known = dist.broadcast(found, env)
        if env.is_main:
            return p
    return prepare(cfg.data, cfg.seed, known=known)


def _run_epoch(model, optimizer, cfg: TrainConfig, epoch: int, views: tuple[RandomCropFlip, CenterCrop],
               env: dist.DistEnv, workers: int, progress: bool) -> dict:
    """Train one epoch at its scheduled learning rate, test when due; returns the epoch's metrics row."""
    start = time.perf_counter()
    lr = step_lr(epoch, cfg.epochs, cfg.lr, cfg.final_lr)
    for group in optimizer.param_groups:
        group["lr"] = lr
    train_loss, train_acc = train_epoch(model, optimizer, views[0], cfg, epoch, env, workers=workers,
                                        progress=progress)
    dist.sync_buffers(model, env)
    row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
           "test_loss": None, "test_accuracy": None}
    if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
        row["test_loss"], row["test_accuracy"] = evaluate(model, views[1], env, workers=workers)
    row["seconds"] = time.perf_counter() - start
    return row


def _results(cfg: TrainConfig, data: Prepared, env: dist.DistEnv, model: nn.Module, history: list[dict],
             workers: int, seconds: float) -> dict:
    from ..report.files import versions

    final = history[-1]
    return {
        "settings": cfg.to_dict(), "label": cfg.label, "arch": cfg.arch, "mode": cfg.mode, "slope": cfg.slope,
        "seed": cfg.seed, "dataset": cfg.data.dataset, "epochs": cfg.epochs,
        "test_accuracy": final["test_accuracy"], "test_loss": final["test_loss"],
        "train_accuracy": final["train_accuracy"], "train_loss": final["train_loss"],
        "data": {"classes": len(data.classes), "train_images": len(data.train), "test_images": len(data.test),
                 "mean": list(data.mean), "std": list(data.std), "skipped": len(data.skipped),
                 "skipped_files": data.skipped},
        "processes": env.world, "device": str(env.device), "workers": workers,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad), "seconds": seconds,
        "versions": versions(), "files": [CHECKPOINT, METRICS, "metrics.png", MODEL, RESULTS],
    }


def save_model(path: Path, model: nn.Module, template: nn.Module, cfg: TrainConfig, data: Prepared,
               test_accuracy: float | None) -> None:
    """``model.pt``: the forward network (:func:`forward_model`) with its arch, InputSpec (the training
    normalization) and class names; ``proxygrad.load(path)`` and ``proxygrad visualize --model path`` read it."""
    from ..models.spec import InputSpec

    spec = InputSpec(3, cfg.data.image_size, data.mean, data.std, data.classes)
    save_checkpoint(path, {"model": forward_model(model, template, cfg.mode, cfg.slope), "arch": cfg.arch,
                           "spec": spec.to_dict(), "class_names": list(data.classes),
                           "activation": {"mode": cfg.mode, "slope": cfg.slope}, "test_accuracy": test_accuracy})


def train(cfg: TrainConfig, out: str | Path, *, device: str | None = None, env: dist.DistEnv | None = None,
          workers: int = 0, progress: bool = True, model: nn.Module | None = None,
          on_epoch_end: Callable[[int, dict], None] | None = None, sync_bn: bool = True) -> dict:
    """Train (or resume) one run into the directory ``out``; returns the contents of its ``results.json``.

    Args:
        cfg: the settings (:func:`make_config`).
        out: run directory; a checkpoint there with the same settings is resumed.
        device: "cpu", "cuda", "cuda:1", ... (default: cuda when available) for a single process.
        env: for data-parallel training, the :class:`~proxygrad.train.dist.DistEnv` of
            :func:`proxygrad.train.dist.init` (which joins torchrun's process group); overrides ``device``.
        workers: DataLoader worker processes.
        progress: tqdm bars (on rank 0).
        model: train this module instead of building ``cfg.arch`` (it is converted in place).
        on_epoch_end: called on rank 0 as ``on_epoch_end(epoch, row)`` after each epoch's checkpoint is saved.
        sync_bn: SyncBatchNorm across GPUs under torchrun.
    """
    from tqdm.auto import tqdm

    from ..report.files import write_json

    start, out = time.perf_counter(), Path(out)
    env = env or dist.DistEnv(device=dist.pick_device(device))
    state = read_checkpoint(out / CHECKPOINT, cfg) or {}
    data = _data(cfg, env, state.get("data"), workers, progress and env.is_main)
    model = model if model is not None else build_model(cfg.arch, len(data.classes), cfg.seed)
    template = copy.deepcopy(model)
    if cfg.mode != "relu":
        convert(model, cfg.mode, cfg.slope)
    if state:
        model.load_state_dict(state["model"])
    model = dist.wrap(model.to(env.device), env, sync_bn)
    optimizer = make_optimizer(model, cfg)
    if state:
        optimizer.load_state_dict(state["optimizer"])
    history, first, before = state.get("history", []), state.get("epoch", 0), state.get("seconds", 0.0)
    views = (RandomCropFlip(data.train, cfg.data.image_size, data.mean, data.std, padding=cfg.data.crop_padding,
                            flip=cfg.data.flip, seed=cfg.seed),
             CenterCrop(data.test, cfg.data.image_size, data.mean, data.std))
    known = {"mean": list(data.mean), "std": list(data.std), "skipped": data.skipped}
    writer = _tensorboard(out, first) if env.is_main else None
    bar = tqdm(range(first, cfg.epochs), initial=first, total=cfg.epochs, desc=f"{cfg.arch} {cfg.label}",
               unit="epoch", disable=not (progress and env.is_main))
    for epoch in bar:
        row = _run_epoch(model, optimizer, cfg, epoch, views, env, workers, progress and env.is_main)
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", train=f"{100 * row['train_accuracy']:.1f}%")
        if env.is_main:
            save_checkpoint(out / CHECKPOINT, {
                "format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "epoch": epoch + 1,
                "model": dist.unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                "data": known, "seconds": before + time.perf_counter() - start})
            write_metrics(out, history)
            for key, value in row.items():
                if writer is not None and value is not None and key not in ("epoch", "seconds"):
                    writer.add_scalar(key, value, epoch + 1)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    if writer is not None:
        writer.close()
    results = _results(cfg, data, env, model, history, workers, before + time.perf_counter() - start)
    if env.is_main:
        save_model(out / MODEL, model, template, cfg, data, results["test_accuracy"])
        write_json(out / RESULTS, results)
    dist.barrier(env)
    return results


def read_results(out: str | Path, cfg: TrainConfig | None = None) -> dict | None:
    """The ``results.json`` of a finished run directory, or None when the run has not finished; with ``cfg``, a
    ValueError when the run had other settings."""
    path = Path(out) / RESULTS
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    if cfg is not None:
        _check_settings(results.get("settings", {}), cfg, Path(out))
    return results


__all__ = ["TrainConfig", "PRESETS", "make_config", "step_lr", "build_model", "make_optimizer", "train",
           "train_epoch", "evaluate", "read_results", "save_model"]
