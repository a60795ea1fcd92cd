"""Tiny networks on the bundled digits for the measurements beyond ReLU (``proxygrad beyond``).

Every network takes gray digits in [-1, 1] (the model's input is the image itself: mean = std = 0.5 in its
spec) and returns 10 logits. Names are ``ARCH-ACTIVATION``:

- ``convnext-*``: ConvNeXt-style, 1x32x32: a 2x2 patchify stem + LayerNorm, three stages of one timm
  ``ConvNeXtBlock`` each (depthwise conv, LayerNorm, 4x MLP with the activation, layer scale, residual) at
  16x16, 8x8 and 4x4 with widths 16, 32, 64, LayerNorm + 2x2 stride-2 convs between them, average pooling,
  LayerNorm and a linear head (about 57k parameters).
- ``vit-*``: ViT-style, 1x32x32: timm's ``VisionTransformer`` with 4x4 patches (64 tokens), width 64, depth 3,
  4 heads, MLP ratio 2, no class token, average pooling (about 106k parameters).
- ``resnet-*``: the bundled :class:`~proxygrad.models.digits.DigitsResNet` (1x32x32) with every ``nn.ReLU``
  swapped for the activation, retrained from scratch (78k parameters).
- ``poolcnn-a`` / ``poolcnn-b``: small ReLU CNNs with max pooling on the original 1x8x8 digits, small enough
  for the exact maximum (MILP, about 5-30 s per class): a conv3x3 with 4 channels at stride 2 (4x4), ReLU,
  a max pooling to 2x2, a linear head. a: 2x2 windows; b: 3x3 windows, stride 2, padding 1 (overlapping, as
  in ResNet's stem). Wider or deeper ones (6 channels, or a 3x3 stride-1 conv) left the MILP unsolved after
  60 s, so these are as large as the exact gap allows.

Weights ship in ``bundled/tiny-NAME.pt`` with the provenance record ``bundled/tiny.json`` (recipe, seed,
accuracy, sha256); regenerate them with ``python -m proxygrad.models.tiny --out src/proxygrad/models/bundled``
(about 10 minutes on 2 CPU cores; each network alone takes 3 s to 2 minutes).
"""
from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .digits import BUNDLED_DIR, DigitsResNet, digits_data, digits_spec, load_state_dict_file, sha256_file
from .registry import LoadedModel
from .train_bundled import evaluate, random_shift

TINY_DIR = BUNDLED_DIR
PROVENANCE = TINY_DIR / "tiny.json"
REGENERATE = "python -m proxygrad.models.tiny --out src/proxygrad/models/bundled"
ACTIVATIONS = {"gelu": nn.GELU, "silu": nn.SiLU, "mish": nn.Mish, "elu": nn.ELU, "hardswish": nn.Hardswish}


@dataclass(frozen=True)
class Recipe:
    """How one tiny network is built and trained (AdamW, one-cycle schedule, label smoothing, random shifts)."""

    arch: str
    activation: str
    size: int = 32
    epochs: int = 30
    lr: float = 3e-3
    weight_decay: float = 0.05
    batch_size: int = 64
    shift: int = 3
    label_smoothing: float = 0.05


RECIPES = {
    **{f"convnext-{a}": Recipe("convnext", a) for a in ("gelu", "silu")},
    **{f"vit-{a}": Recipe("vit", a, epochs=40) for a in ("gelu", "silu")},
    **{f"resnet-{a}": Recipe("resnet", a, lr=0.1, weight_decay=5e-4) for a in ACTIVATIONS},
    **{f"poolcnn-{v}": Recipe(f"poolcnn-{v}", "relu", size=8, epochs=60, lr=1e-2, weight_decay=1e-4, shift=0)
       for v in ("a", "b")},
}
SMOOTH_NETWORKS = tuple(n for n, r in RECIPES.items() if r.activation != "relu")
POOLING_NETWORKS = tuple(n for n, r in RECIPES.items() if r.activation == "relu")


class TinyConvNeXt(nn.Module):
    """ConvNeXt-style digits classifier (module docstring); input (B, 1, 32, 32) -> logits (B, 10)."""

    def __init__(self, activation: str = "gelu", widths: tuple[int, ...] = (16, 32, 64),
                 kernels: tuple[int, ...] = (5, 5, 3), num_classes: int = 10):
        super().__init__()
        from timm.layers import LayerNorm2d
        from timm.models.convnext import ConvNeXtBlock

        act = ACTIVATIONS[activation]
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 2, 2), LayerNorm2d(widths[0]))
        stages, cin = [], widths[0]
        for i, (w, k) in enumerate(zip(widths, kernels)):
            down = [] if i == 0 else [LayerNorm2d(cin), nn.Conv2d(cin, w, 2, 2)]
            stages.append(nn.Sequential(*down, ConvNeXtBlock(w, kernel_size=k, act_layer=act)))
            cin = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LayerNorm(cin), nn.Linear(cin, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


def tiny_vit(activation: str = "gelu", num_classes: int = 10) -> nn.Module:
    """ViT-style digits classifier (timm ``VisionTransformer``); input (B, 1, 32, 32) -> logits (B, 10)."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=32, patch_size=4, in_chans=1, num_classes=num_classes, embed_dim=64, depth=3,
                             num_heads=4, mlp_ratio=2.0, act_layer=ACTIVATIONS[activation], class_token=False,
                             global_pool="avg")


def resnet_with(activation: str) -> DigitsResNet:
    """The bundled ResNet architecture with every ``nn.ReLU`` replaced by a fresh activation module."""
    model = DigitsResNet()
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if type(child) is nn.ReLU:
                parent._modules[name] = ACTIVATIONS[activation]()
    return model


def pool_cnn(variant: str) -> nn.Sequential:
    """Small ReLU CNNs with max pooling for (B, 1, 8, 8) digits (module docstring); logits (B, 10)."""
    pool = nn.MaxPool2d(2) if variant == "poolcnn-a" else nn.MaxPool2d(3, 2, padding=1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), pool, nn.Flatten(), nn.Linear(16, 10))


def build(name: str) -> nn.Module:
    """A freshly initialized network ``name`` (one of RECIPES) in train mode."""
    recipe = _recipe(name)
    if recipe.arch == "convnext":
        return TinyConvNeXt(recipe.activation)
    if recipe.arch == "vit":
        return tiny_vit(recipe.activation)
    if recipe.arch == "resnet":
        return resnet_with(recipe.activation)
    return pool_cnn(recipe.arch)


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown tiny network {name!r}; valid: {', '.join(RECIPES)}")
    return RECIPES[name]


# ---- training ------------------------------------------------------------------------------------------------
def train(name: str, seed: int = 0, epochs: int | None = None, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train network ``name`` from scratch on the bundled digits (CPU, deterministic for a seed and thread count).

    Returns the model (eval mode) and a record: recipe, seed, test/train accuracy in [0, 1], seconds.
    The global RNG state is restored afterwards.
    """
    from tqdm.auto import tqdm

    recipe = _recipe(name)
    epochs = recipe.epochs if epochs is None else int(epochs)
    train_x, train_y = digits_data("train", recipe.size)
    test_x, test_y = digits_data("test", recipe.size)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(name)
        gen = torch.Generator().manual_seed(seed)
        batches = -(-len(train_y) // recipe.batch_size)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay) \
            if recipe.arch != "resnet" else torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9,
                                                            nesterov=True, weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=max(1, epochs * batches),
                                                    pct_start=0.2)
        for _ in tqdm(range(epochs), desc=f"train {name}", unit="epoch", disable=not progress):
            _epoch(model, opt, sched, train_x, train_y, recipe, gen)
    record = {"name": name, "recipe": asdict(recipe), "seed": seed, "epochs": epochs,
              "test_accuracy": round(evaluate(model, test_x, test_y), 6),
              "train_accuracy": round(evaluate(model, train_x, train_y), 6),
              "num_params": sum(p.numel() for p in model.parameters()),
              "training_seconds": round(time.perf_counter() - start, 1)}
    return model.eval(), record


def _epoch(model: nn.Module, opt, sched, images: Tensor, labels: Tensor, recipe: Recipe,
           gen: torch.Generator) -> None:
    model.train()
    order = torch.randperm(len(labels), generator=gen)
    for i in range(0, len(order), recipe.batch_size):
        idx = order[i:i + recipe.batch_size]
        x = random_shift(images[idx], recipe.shift, gen)
        loss = F.cross_entropy(model(x), labels[idx], label_smoothing=recipe.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()


# ---- bundled weights -----------------------------------------------------------------------------------------
def read_provenance(path: str | Path = PROVENANCE) -> dict:
    """{name: record} of the bundled tiny networks; FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"provenance record {path} is missing; regenerate with `{REGENERATE}`")
    try:
        records = json.loads(path.read_text())["networks"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"provenance record {path} is not a valid tiny.json ({err}); "
                         f"regenerate with `{REGENERATE}`") from None
    return records


def load_tiny(name: str, *, folder: str | Path = TINY_DIR, verify: bool = True) -> LoadedModel:
    """The bundled network ``name`` (eval mode, CPU) with its input spec, checked against its sha256."""
    _recipe(name)
    folder = Path(folder)
    records = read_provenance(folder / "tiny.json")
    weights = folder / f"tiny-{name}.pt"
    if name not in records or not weights.is_file():
        raise FileNotFoundError(f"no bundled weights for {name!r} in {folder}; regenerate with `{REGENERATE}`")
    if verify and sha256_file(weights) != records[name]["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in {folder / 'tiny.json'}; "
                         f"regenerate with `{REGENERATE}`")
    model = build(name)
    model.load_state_dict(load_state_dict_file(weights))
    return LoadedModel(model.eval(), digits_spec(RECIPES[name].size), f"tiny:{name}", "bundled")


def save_bundled(names, out: str | Path, seed: int = 0, progress: bool = True) -> dict:
    """Train ``names`` and write ``out/tiny-NAME.pt`` plus ``out/tiny.json`` (merged with records already there)."""
    from ..report.files import versions, write_bytes, write_json

    out = Path(out)
    existing = read_provenance(out / "tiny.json") if (out / "tiny.json").is_file() else {}
    for name in names:
        model, record = train(name, seed=seed, progress=progress)
        buffer = io.BytesIO()
        torch.save({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, buffer)
        weights = write_bytes(out / f"tiny-{name}.pt", buffer.getvalue())
        existing[name] = {**record, "sha256": sha256_file(weights), "bytes": weights.stat().st_size,
                          "command": f"{REGENERATE} --names {name} --seed {seed}"}
        print(f"{name}: test accuracy {record['test_accuracy']:.4f} in {record['training_seconds']} s")
    payload = {"data": "bundled digits (proxygrad.models.digits_data): scikit-learn load_digits, fixed stratified "
               "split (1347 train / 450 test), upsampled bilinearly to SIZE x SIZE, in [-1, 1]",
               "torch_threads": torch.get_num_threads(), "versions": versions(), "networks": existing}
    write_json(out / "tiny.json", payload)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxygrad.models.tiny", description="Train the tiny networks.")
    parser.add_argument("--names", default=",".join(RECIPES), help="comma-separated subset of the networks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=TINY_DIR)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    save_bundled([n.strip() for n in args.names.split(",") if n.strip()], args.out, args.seed, not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
