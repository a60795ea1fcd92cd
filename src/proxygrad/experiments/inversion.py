"""Feature inversion experiments of seed 004 (Baust et al.), with and without ProxyGrad in the backward pass.

- :func:`compare_schemes` (its Fig. 4): one image reconstructed from one layer with every regularization
  scheme and method; :func:`write_comparison` writes its run directory.
- :func:`assess` (its Table 1): reconstruct images with model A from a layer, classify the reconstructions with
  an independently trained model B, and report B's top-1 / top-5 agreement with the original labels, per
  scheme and method; by default in both directions (A -> B and B -> A). References in the same table: B on the
  original images (the ceiling), B on the starting images (gray plus noise: the floor) and A's own agreement on
  its reconstructions. ProxyGrad vs ReLU is compared image by image with an exact McNemar test.

The bundled pair is "digits" (A) and "digits-b" (B): same data, other seed, widths and depth.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from ..am.init import initial_images
from ..am.invert import Inversion, check_layer, default_schemes, inversion_config, invert, read_target
from ..models import LoadedModel, digits_data, load
from ..report.figures import image_grid, trace_plot
from ..report.files import versions, write_csv, write_figure, write_json, write_png
from ..report.rows import ResultRows, cell_key

DEFAULT_LAYERS = {"digits": "layers.2", "digits-b": "layers.3"}  # the last residual block of each
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class InversionSettings:
    """How every reconstruction is made: D's exponent ``p`` and normalization, the backward ``slope`` of
    ProxyGrad, ``steps`` of the render loop's ``step_rule`` with step size ``lr`` (None: its default),
    the per-pixel total variation weight of the "tv" scheme, the initial noise std and images per batch."""

    p: int = 2
    normalize: str = "target"
    slope: float = 0.1
    steps: int = 200
    lr: float | None = None
    step_rule: str = "normalized"
    tv_weight: float = 1.0
    init_sigma: float = 0.1
    batch_size: int = 64

    def config(self, scheme: str, method: str, spec, progress: bool):
        return inversion_config(scheme, spec, tv_weight=self.tv_weight, method=method,
                                slope=self.slope if method == "proxygrad" else 0.0, steps=self.steps, lr=self.lr,
                                step_rule=self.step_rule, init_sigma=self.init_sigma, batch_size=self.batch_size,
                                progress=progress)


def default_layer(model_name: str) -> str:
    """The last residual block of a bundled model; ValueError asking for a layer for any other model."""
    if model_name not in DEFAULT_LAYERS:
        raise ValueError(f"choose the layer to invert for model {model_name!r} (--layer NAME, a module name such "
                         f"as layer4.1.conv2, or 'output')")
    return DEFAULT_LAYERS[model_name]


def cell_label(scheme: str, method: str, slope: float) -> str:
    return scheme if method == "relu" else f"{scheme} / proxygrad s={slope:g}"


# ---- one image, every scheme (Fig. 4) ------------------------------------------------------------------------
def compare_schemes(loaded: LoadedModel, image: Tensor, layer: str, schemes: Sequence[str],
                    methods: Sequence[str] = ("relu", "proxygrad"), settings: InversionSettings | None = None,
                    seed: int = 0, progress: bool = True) -> dict[tuple[str, str], Inversion]:
    """Reconstruct ``image`` (C, H, W) in [-1, 1] from ``layer`` with each (scheme, method), from the same start."""
    settings = settings or InversionSettings()
    check_layer(loaded.model, layer)
    out = {}
    for scheme in schemes:
        for method in methods:
            config = settings.config(scheme, method, loaded.spec, progress)
            out[(scheme, method)] = invert(loaded.model, loaded.spec, image[None], layer, p=settings.p,
                                           normalize=settings.normalize, config=config, seeds=[seed],
                                           device=loaded.device)
    return out


def write_comparison(run_dir: str | Path, loaded: LoadedModel, image: Tensor, label: int | None,
                     inversions: dict[tuple[str, str], Inversion], settings: dict, seconds: float) -> dict:
    """original.png, reconstructions/METHOD/SCHEME.png, grid.png (rows: methods), loss.png, results.json."""
    run_dir, spec = Path(run_dir), loaded.spec
    write_png(run_dir / "original.png", image)
    schemes = list(dict.fromkeys(s for s, _ in inversions))
    methods = list(dict.fromkeys(m for _, m in inversions))
    with torch.no_grad():
        original_class = int(loaded.model(spec.to_model_input(image[None].to(loaded.device))).argmax(1))
    rows = []
    for (scheme, method), inv in inversions.items():
        file = Path("reconstructions") / method / f"{_slug(scheme)}.png"
        write_png(run_dir / file, inv.images[0])
        rows.append({"scheme": scheme, "method": method, "distance": inv.distance.item(), "z": inv.z.item(),
                     "predicted": spec.class_name(int(inv.predicted)), "file": str(file),
                     "seconds": round(inv.render.seconds, 3),
                     "zero_gradient_steps": int(inv.render.zero_gradient_steps[0]),
                     "loss_steps": inv.loss_steps, "loss": inv.loss[0].tolist()})
    columns = {"original": torch.stack([image.cpu()] * len(methods))}
    columns |= {s: torch.cat([inversions[(s, m)].images for m in methods]) for s in schemes}
    notes = {"original": [f"class {spec.class_name(original_class)}"] * len(methods)}
    notes |= {s: [f"D={inversions[(s, m)].distance.item():.3g} -> {spec.class_name(int(inversions[(s, m)].predicted))}"
                  for m in methods] for s in schemes}
    write_figure(run_dir / "grid.png", image_grid(columns, methods, notes))
    first = next(iter(inversions.values()))
    traces = {cell_label(s, m, settings.get("slope", 0.0)): (inv.loss_steps, inv.loss)
              for (s, m), inv in inversions.items()}
    figure = trace_plot(traces, f"D(Phi(u), Phi0) at {first.layer} (original network)")
    figure.axes[0].set_yscale("log")
    write_figure(run_dir / "loss.png", figure)
    payload = {"command": "invert", "settings": settings, "versions": versions(), "seconds": round(seconds, 3),
               "original": {"file": "original.png", "label": None if label is None else spec.class_name(label),
                            "predicted": spec.class_name(original_class)},
               "reconstructions": rows, "files": {"grid": "grid.png", "loss_plot": "loss.png"}}
    write_json(run_dir / "results.json", payload)
    return payload


# ---- the cross-model assessment (Table 1) ---------------------------------------------------------------------
@dataclass
class AssessConfig:
    """Settings of :func:`assess`. ``layers_a`` are inverted with model A and classified by B; ``layers_b``
    the other way round (empty: A -> B only; None: the bundled models' defaults). Images: ``per_class``
    random images per class of the bundled digits test split (None: all 450), or ``images``, a folder with one
    subfolder per class named by the class name or index of model A. ``schemes`` None: the defaults of
    :func:`proxygrad.am.invert.default_schemes`."""

    model_a: str = "digits"
    model_b: str = "digits-b"
    weights_a: str | None = None
    weights_b: str | None = None
    layers_a: tuple[str, ...] | None = None
    layers_b: tuple[str, ...] | None = None
    schemes: tuple[str, ...] | None = None
    methods: tuple[str, ...] = ("relu", "proxygrad")
    per_class: int | None = 3
    images: str | None = None
    seed: int = 0
    inversion: InversionSettings = field(default_factory=lambda: InversionSettings(steps=150))


PRESETS = {
    "quick": {"per_class": 3, "steps": 150},  # 30 digits: about 1.5 CPU-minutes (a few minutes on 2 busy cores)
    "full": {"per_class": None, "steps": 300},  # all 450 test digits at the seed's 300 steps: about 45 CPU-minutes
}


def preset(name: str, **changes) -> AssessConfig:
    """AssessConfig of the preset ``name`` ("quick" or "full") with ``changes`` (AssessConfig fields or
    InversionSettings fields) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    values = PRESETS[name] | {k: v for k, v in changes.items() if v is not None}
    inv_fields = set(InversionSettings.__dataclass_fields__)
    inversion = InversionSettings(**{k: v for k, v in values.items() if k in inv_fields})
    return AssessConfig(inversion=inversion, **{k: v for k, v in values.items() if k not in inv_fields})


def digit_images(per_class: int | None, seed: int) -> tuple[Tensor, Tensor, list[int]]:
    """(images (N, 1, 32, 32) in [-1, 1], labels (N,), test-split indices): ``per_class`` random test digits
    of each class (seeded), or the whole test split when None."""
    images, labels = digits_data("test")
    if per_class is None:
        return images, labels, list(range(len(labels)))
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1 (or None for every test image), got {per_class}")
    generator = torch.Generator().manual_seed(seed)
    index = []
    for c in range(10):
        members = torch.nonzero(labels == c).flatten()
        index += members[torch.randperm(len(members), generator=generator)[:per_class]].tolist()
    return images[index], labels[index], index


def folder_labels(names: Sequence[str], loaded: LoadedModel) -> dict[str, int]:
    """Class index per subfolder name: the model's class name or index; failing that, when there is one folder
    per class, their sorted order (torchvision's ImageFolder rule, which is ImageNet's order for its wnid
    folders). ValueError naming the first folder that fits neither."""
    labels = {}
    for name in names:
        try:
            labels[name] = loaded.spec.class_index(name)
        except ValueError as error:
            if len(names) == loaded.spec.num_classes:
                return {n: i for i, n in enumerate(sorted(names))}
            raise ValueError(f"subfolder {name!r} is not a class of {loaded.name} ({error}); name the subfolders by "
                             f"class name or index, or give one subfolder per class ({loaded.spec.num_classes}), "
                             "taken in sorted order") from None
    return labels


def folder_images(folder: str | Path, loaded: LoadedModel) -> tuple[Tensor, Tensor, list[str]]:
    """Pictures in ``folder/CLASS/*`` at the model's size, labelled by :func:`folder_labels`;
    (images (N, C, H, W) in [-1, 1], labels (N,), file names). ValueError for an empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no image folder at {folder}")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    labels_of = folder_labels([p.name for p in subfolders], loaded)
    images, labels, files = [], [], []
    for sub in subfolders:
        for file in sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            images.append(read_target(file, loaded.spec))
            labels.append(labels_of[sub.name])
            files.append(str(file.relative_to(folder)))
    if not images:
        raise ValueError(f"no pictures ({', '.join(IMAGE_SUFFIXES)}) in class subfolders of {folder}")
    return torch.stack(images), torch.tensor(labels), files


@torch.no_grad()
def classify(loaded: LoadedModel, images: Tensor, batch_size: int = 256) -> Tensor:
    """Logits (N, classes) of ``loaded`` for ``images`` (N, C, H, W) in [-1, 1], resized to its size."""
    if images.shape[1] != loaded.spec.channels:
        raise ValueError(f"{loaded.name} takes {loaded.spec.channels}-channel images, got {images.shape[1]}")
    loaded.model.eval()
    out = []
    for chunk in images.split(batch_size):
        chunk = chunk.to(loaded.device)
        if tuple(chunk.shape[-2:]) != loaded.spec.size:
            chunk = F.interpolate(chunk, size=loaded.spec.size, mode="bilinear", align_corners=False)
        out.append(loaded.model(loaded.spec.to_model_input(chunk)).flatten(1).float().cpu())
    return torch.cat(out)


def agreement(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(top-1 hit, top-5 hit) per image, bool (N,) each; top-5 is top-k with k = min(5, classes)."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return top[:, 0] == labels, (top == labels[:, None]).any(1)


def mcnemar(hits_a: Sequence[bool], hits_b: Sequence[bool]) -> dict:
    """Exact McNemar test of paired hits: images only A gets, only B gets, two-sided binomial p-value."""
    from scipy.stats import binomtest

    only_a = sum(1 for a, b in zip(hits_a, hits_b, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(hits_a, hits_b, strict=True) if b and not a)
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_first": only_a, "only_second": only_b, "p_value": float(p)}


@dataclass
class Direction:
    """Reconstruct with ``reconstruct`` from ``layer``; classify with ``classify``."""

    reconstruct: LoadedModel
    layer: str
    classify: LoadedModel

    @property
    def name(self) -> str:
        return f"{self.reconstruct.name} [{self.layer}] -> {self.classify.name}"


def _directions(config: AssessConfig, a: LoadedModel, b: LoadedModel) -> list[Direction]:
    layers_a = config.layers_a if config.layers_a is not None else (default_layer(config.model_a),)
    if config.layers_b is not None:
        layers_b = config.layers_b
    else:
        layers_b = (DEFAULT_LAYERS[config.model_b],) if config.model_b in DEFAULT_LAYERS else ()
    directions = [Direction(a, layer, b) for layer in layers_a] + [Direction(b, layer, a) for layer in layers_b]
    for d in directions:
        check_layer(d.reconstruct.model, d.layer)
    return directions


def _load_pair(config: AssessConfig, device) -> tuple[LoadedModel, LoadedModel]:
    a = load(config.model_a, weights=config.weights_a, device=device)
    b = load(config.model_b, weights=config.weights_b, device=device)
    if config.model_a == config.model_b and config.weights_a == config.weights_b:
        raise ValueError("models A and B are the same: the assessment needs an independently trained model B")
    if a.spec.channels != b.spec.channels:
        raise ValueError(f"models A ({a.spec.channels} channels) and B ({b.spec.channels}) must take images with "
                         "the same number of channels")
    for m in (a, b):
        if a.spec.class_names and m.spec.class_names and m.spec.class_names != a.spec.class_names:
            raise ValueError("models A and B must have the same classes in the same order")
    return a, b


def _reference(direction: Direction, images: Tensor, labels: Tensor, seeds: list[int], sigma: float) -> dict:
    spec = direction.reconstruct.spec
    starts = initial_images(spec, seeds, sigma, "cpu")
    out = {}
    for name, model, x in (("classifier_on_originals", direction.classify, images),
                           ("classifier_on_starts", direction.classify, starts),
                           ("reconstructor_on_originals", direction.reconstruct, images)):
        top1, top5 = agreement(classify(model, x), labels)
        out[name] = {"top1": top1.float().mean().item(), "top5": top5.float().mean().item()}
    return out


def _cell(direction: Direction, scheme: str, method: str, images: Tensor, labels: Tensor, seeds: list[int],
          settings: InversionSettings, progress: bool) -> tuple[dict, Tensor]:
    config = settings.config(scheme, method, direction.reconstruct.spec, progress)
    inv = invert(direction.reconstruct.model, direction.reconstruct.spec, images, direction.layer, p=settings.p,
                 normalize=settings.normalize, config=config, seeds=seeds, device=direction.reconstruct.device)
    top1, top5 = agreement(classify(direction.classify, inv.images), labels)
    own = inv.predicted == labels
    row = {"direction": direction.name, "reconstructed_by": direction.reconstruct.name, "layer": direction.layer,
           "classified_by": direction.classify.name, "scheme": scheme, "method": method, "n": len(labels),
           "top1": top1.float().mean().item(), "top5": top5.float().mean().item(),
           "reconstructor_top1": own.float().mean().item(), "distance_mean": inv.distance.mean().item(),
           "distance_median": inv.distance.median().item(), "seconds": round(inv.render.seconds, 2),
           "hits": top1.int().tolist()}
    return row, inv.images


def assess(config: AssessConfig, run_dir: str | Path, *, device=None, progress: bool = True) -> dict:
    """Run (or resume: finished cells in ``run_dir/rows.jsonl`` are skipped) the assessment and write
    ``results.json``, ``table.csv``, ``agreement.png``, ``examples.png``; returns the results.json payload."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    a, b = _load_pair(config, device)
    directions = _directions(config, a, b)
    if config.images is not None:
        images, labels, index = folder_images(config.images, a)
    else:
        images, labels, index = digit_images(config.per_class, config.seed)
    schemes = tuple(config.schemes or default_schemes(a.spec))
    seeds = [config.seed * 1_000_003 + i for i in range(len(labels))]
    examples = _example_rows(labels)
    rows = ResultRows(run_dir / "rows.jsonl")
    settings = asdict(config) | {"schemes": list(schemes), "images_used": index}
    cells = [(d, s, m) for d in directions for s in schemes for m in config.methods]
    write_png(run_dir / "examples" / "originals.png", _strip(images[examples]))
    for d, scheme, method in tqdm(cells, desc="invert --assess", unit="cell", disable=not progress):
        if rows.done(_key(config, index, d, scheme, method)):
            continue
        row, recon = _cell(d, scheme, method, images, labels, seeds, config.inversion, progress)
        write_png(run_dir / "examples" / f"{_slug(d.name)}__{_slug(scheme)}__{method}.png", _strip(recon[examples]))
        rows.append(_key(config, index, d, scheme, method), **row)
    done = [rows.get(_key(config, index, d, scheme, method)) for d, scheme, method in cells]
    references = {d.name: _reference(d, images, labels, seeds, config.inversion.init_sigma) for d in directions}
    comparisons = _proxygrad_vs_relu(done, config.inversion.slope)
    payload = {"command": "invert --assess", "settings": settings, "versions": versions(),
               "seconds": round(time.perf_counter() - start, 2), "n_images": len(labels),
               "references": references, "rows": [{k: v for k, v in r.items() if k not in ("key", "hits")}
                                                   for r in done],
               "proxygrad_vs_relu": comparisons, "summary": _summary(comparisons),
               "files": {"table": "table.csv", "plot": "agreement.png", "examples": "examples.png",
                         "rows": "rows.jsonl"}}
    _write_table(run_dir / "table.csv", payload["rows"])
    write_figure(run_dir / "agreement.png", agreement_plot(payload["rows"], references, config.inversion.slope))
    write_figure(run_dir / "examples.png", _examples_figure(run_dir, done, labels[examples], a,
                                                            config.inversion.slope))
    write_json(run_dir / "results.json", payload)
    return payload


def _key(config: AssessConfig, index: list, d: Direction, scheme: str, method: str) -> str:
    """The resumable-rows key of one cell: everything that changes its numbers."""
    return cell_key({"direction": d.name, "scheme": scheme, "method": method, "inversion": asdict(config.inversion),
                     "images": index, "seed": config.seed, "weights": [config.weights_a, config.weights_b]})


def _example_rows(labels: Tensor) -> list[int]:
    """Index of the first image of each class present (at most 10), for the example strips."""
    first: dict[int, int] = {}
    for i, label in enumerate(labels.tolist()):
        first.setdefault(label, i)
    return [first[c] for c in sorted(first)][:10]


def _proxygrad_vs_relu(rows: list[dict], slope: float) -> list[dict]:
    by = {(r["direction"], r["scheme"], r["method"]): r for r in rows}
    out = []
    for (direction, scheme, method), relu in by.items():
        proxy = by.get((direction, scheme, "proxygrad"))
        if method != "relu" or proxy is None:
            continue
        test = mcnemar(proxy["hits"], relu["hits"])
        diff = proxy["top1"] - relu["top1"]
        verdict = ("no significant difference" if test["p_value"] >= 0.05
                   else "ProxyGrad better" if diff > 0 else "ProxyGrad worse")
        out.append({"direction": direction, "scheme": scheme, "slope": slope, "top1_relu": relu["top1"],
                    "top1_proxygrad": proxy["top1"], "top1_difference": diff,
                    "distance_relu": relu["distance_mean"], "distance_proxygrad": proxy["distance_mean"],
                    "images_only_proxygrad": test["only_first"], "images_only_relu": test["only_second"],
                    "p_value": test["p_value"], "verdict": verdict})
    return out


def _summary(comparisons: list[dict]) -> str:
    if not comparisons:
        return "no ProxyGrad / ReLU pairs were run"
    up = sum(c["top1_difference"] > 0 for c in comparisons)
    down = sum(c["top1_difference"] < 0 for c in comparisons)
    significant = [c for c in comparisons if c["p_value"] < 0.05]
    return (f"ProxyGrad raised the classifier's top-1 agreement in {up} of {len(comparisons)} settings and lowered "
            f"it in {down}; {len(significant)} of the differences are significant (exact McNemar test per setting, "
            f"p < 0.05, not corrected for multiple comparisons)"
            + (": " + "; ".join(f"{c['direction']}, {c['scheme']}: {c['verdict']}" for c in significant)
               if significant else ""))


def _write_table(path: Path, rows: list[dict]) -> None:
    columns = ["reconstructed_by", "layer", "classified_by", "scheme", "method", "n", "top1", "top5",
               "reconstructor_top1", "distance_mean", "distance_median", "seconds"]
    write_csv(path, rows, columns)


def agreement_plot(rows: list[dict], references: dict, slope: float) -> Figure:
    """Per direction (rows of panels): top-1 and top-5 agreement of the classifier per scheme (bars: methods),
    with the classifier on the originals (dashed) and on the starting images (dotted)."""
    directions = list(dict.fromkeys(r["direction"] for r in rows))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    figure = Figure(figsize=(2.2 + 1.1 * len(schemes) * 2, 2.8 * len(directions) + 0.4))
    axes = np.asarray(figure.subplots(len(directions), 2, squeeze=False))
    width = 0.8 / len(methods)
    for i, direction in enumerate(directions):
        for j, metric in enumerate(("top1", "top5")):
            ax = axes[i, j]
            for k, method in enumerate(methods):
                values = [next((r[metric] for r in rows if (r["direction"], r["scheme"], r["method"])
                                == (direction, s, method)), np.nan) for s in schemes]
                label = method if method == "relu" else f"{method} s={slope:g}"
                ax.bar(np.arange(len(schemes)) + (k - (len(methods) - 1) / 2) * width, values, width, label=label)
            ref = references[direction]
            ax.axhline(ref["classifier_on_originals"][metric], ls="--", c="k", lw=1, label="on originals")
            ax.axhline(ref["classifier_on_starts"][metric], ls=":", c="k", lw=1, label="on starting images")
            ax.set_xticks(np.arange(len(schemes)), [s.replace(":", "\n", 1) for s in schemes], fontsize=7)
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{direction}: {metric}", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def _examples_figure(run_dir: Path, rows: list[dict], labels: Tensor, a: LoadedModel, slope: float) -> Figure:
    """One strip per cell (its reconstructions of the first image of each class), under the originals."""
    strips = [("originals", run_dir / "examples" / "originals.png")]
    strips += [(f"{r['direction']}\n{cell_label(r['scheme'], r['method'], slope)}",
                run_dir / "examples" / f"{_slug(r['direction'])}__{_slug(r['scheme'])}__{r['method']}.png")
               for r in rows]
    figure = Figure(figsize=(1.0 + 0.5 * len(labels), 0.55 * len(strips) + 0.5))
    axes = figure.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, (label, path) in zip(axes, strips, strict=True):
        with Image.open(path) as picture:
            pixels = np.asarray(picture)
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=6)
    axes[0].set_title("labels: " + " ".join(a.spec.class_name(int(c)) for c in labels), fontsize=7)
    figure.tight_layout()
    return figure


def _strip(images: Tensor) -> Tensor:
    """(N, C, H, W) -> (C, H, N * W): images side by side."""
    return torch.cat(list(images), dim=2)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text).strip("_")[:80]
