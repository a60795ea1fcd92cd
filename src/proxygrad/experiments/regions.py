"""Seed 003's study of linear regions (Figures 2, 3, 5-7), with ProxyGrad added, and dead units.

MLPs with 2 inputs and three hidden layers of k units (Linear + rectifier each) plus a linear classifier are
trained with Adam (lr 1e-3, batch 32, cross-entropy) on the seed's three data sets, with ReLU, Leaky ReLU
(slope 0.01, the seed's a = 100) and ProxyGrad (ReLU forward, Leaky backward). At each epoch of the seed's
lists the exact regions per layer (``regioncam``), a grid-sampling estimate and the dead units are recorded.

A cell is one training run (data set, width, method, seed); every method of a (data set, width, seed) starts
from the same initial weights and sees the same batches. Cells are appended to ``cells.jsonl`` and their
snapshots saved to ``checkpoints/`` as they finish: a killed run restarted on the same directory skips them.
"""
from __future__ import annotations

import contextlib
import io
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..analysis.regions import box_around, dead_units, exact_regions, sampled_regions
from ..report.files import versions, write_bytes, write_csv, write_figure, write_json
from ..report.rows import ResultRows, cell_key
from ..surrogates import patched
from ..surrogates.rectifier import check_slope

DATASETS = ("random", "moons", "quantiles")
SEED_EPOCHS = {"random": (0, 10, 100, 500, 1000, 3000, 5000, 10000),
               "moons": (0, 2, 4, 8, 10, 30, 50, 100), "quantiles": (0, 2, 4, 8, 10, 30, 50, 100)}
METHOD_COLOURS = {"relu": "tab:red", "leaky": "tab:orange", "proxygrad": "tab:blue"}


def make_dataset(name: str, seed: int = 0, moons_noise: float = 0.1) -> tuple[np.ndarray, np.ndarray, int]:
    """The seed's 2-D data: (points float32 (N, 2), labels int64 (N,), number of classes).

    random: 500 points uniform in [-1, 1]^2 with random labels 0/1; moons: ``make_moons`` with 1000 samples
    (noise ``moons_noise``: the seed gives none); quantiles: ``make_gaussian_quantiles`` with 1000 samples and 5
    classes.
    """
    from sklearn.datasets import make_gaussian_quantiles, make_moons

    if name == "random":
        rng = np.random.default_rng(seed)
        points, labels, classes = rng.uniform(-1, 1, (500, 2)), rng.integers(0, 2, 500), 2
    elif name == "moons":
        (points, labels), classes = make_moons(1000, noise=moons_noise, random_state=seed), 2
    elif name == "quantiles":
        (points, labels), classes = make_gaussian_quantiles(n_samples=1000, n_features=2, n_classes=5,
                                                            random_state=seed), 5
    else:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    return points.astype(np.float32), labels.astype(np.int64), classes


@dataclass(frozen=True)
class Method:
    """How the MLP is trained: relu, leaky (slope in both passes) or proxygrad (ReLU forward, slope backward)."""

    mode: str
    slope: float = 0.0

    @property
    def label(self) -> str:
        return "relu" if self.mode == "relu" else f"{self.mode} {self.slope:g}"


def parse_method(text: str) -> Method:
    """``relu``, ``leaky:0.01``, ``proxygrad:0.1`` (``leaky`` and ``proxygrad`` alone: slope 0.01)."""
    mode, _, slope = text.strip().partition(":")
    if mode not in ("relu", "leaky", "proxygrad"):
        raise ValueError(f"unknown method {text!r}; valid: relu, leaky[:SLOPE], proxygrad[:SLOPE]")
    if mode == "relu":
        if slope:
            raise ValueError(f"relu takes no slope, got {text!r}")
        return Method("relu")
    try:
        value = check_slope(slope or 0.01, "slope")
    except ValueError as error:
        raise ValueError(f"bad slope in method {text!r}: {error}") from None
    if value == 0:
        raise ValueError(f"{mode} with slope 0 is relu; give a slope > 0 in {text!r}")
    return Method(mode, value)


def mlp(width: int, classes: int, method: Method, depth: int = 3) -> nn.Sequential:
    """2 -> (Linear(k) + rectifier) x depth -> Linear(classes); the rectifier is what the forward pass uses:
    LeakyReLU(slope) for leaky, ReLU for relu and proxygrad. PyTorch's default initialization (global RNG)."""
    layers, width_in = [], 2
    for _ in range(depth):
        act = nn.LeakyReLU(method.slope) if method.mode == "leaky" else nn.ReLU()
        layers += [nn.Linear(width_in, width), act]
        width_in = width
    return nn.Sequential(*layers, nn.Linear(width_in, classes))


def train(model: nn.Sequential, points: torch.Tensor, labels: torch.Tensor, method: Method, epochs: tuple[int, ...],
          seed: int, lr: float = 1e-3, batch_size: int = 32, progress: bool = False):
    """Adam + cross-entropy; yields ``epoch`` (with ``model`` in that state) for each epoch in ``epochs`` (0:
    the initial weights). Batches: a fresh permutation per epoch from a generator seeded by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    wanted = set(epochs)
    proxy = method.mode == "proxygrad"
    with patched(model, "proxygrad", method.slope, functional=False) if proxy else contextlib.nullcontext():
        if 0 in wanted:
            yield 0
        for epoch in tqdm(range(1, max(epochs) + 1), desc=f"  {method.label}", leave=False, disable=not progress):
            order = torch.randperm(len(points), generator=generator)
            for start in range(0, len(points), batch_size):
                index = order[start:start + batch_size]
                loss = F.cross_entropy(model(points[index]), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if epoch in wanted:
                yield epoch


@dataclass(frozen=True)
class RegionsConfig:
    """The sweep. ``epochs``: per data set, the epochs at which regions are counted (default: the seed's)."""

    datasets: tuple[str, ...] = DATASETS
    widths: tuple[int, ...] = (16, 32, 64)
    methods: tuple[str, ...] = ("relu", "leaky:0.01", "proxygrad:0.01", "proxygrad:0.1")
    epochs: dict = field(default_factory=lambda: dict(SEED_EPOCHS))
    seeds: tuple[int, ...] = (0,)
    depth: int = 3
    lr: float = 1e-3
    batch_size: int = 32
    grid: int = 256
    margin: float = 0.1
    moons_noise: float = 0.1


PRESETS = {
    "paper": RegionsConfig(),
    "quick": RegionsConfig(widths=(16, 32), epochs={"random": (0, 10, 50, 100), "moons": (0, 2, 10, 30),
                                                    "quantiles": (0, 2, 10, 30)}),
}


def preset(name: str, **changes) -> RegionsConfig:
    """A named sweep (paper: the seed's epochs, about 30 minutes on 2 CPU cores; quick: about a minute) with
    some fields changed (None values are ignored; ``epochs`` given as a tuple applies to every data set)."""
    if name not in PRESETS:
        raise ValueError(f"unknown regions preset {name!r}; valid: {', '.join(PRESETS)}")
    config = replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None and k != "epochs"})
    if changes.get("epochs") is not None:
        config = replace(config, epochs={d: tuple(changes["epochs"]) for d in DATASETS})
    return config


def validate(config: RegionsConfig) -> list[Method]:
    """Check the configuration before any work; returns the parsed methods."""
    for name in config.datasets:
        if name not in DATASETS:
            raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    if not config.datasets or not config.widths or not config.methods or not config.seeds:
        raise ValueError("give at least one data set, width, method and seed")
    if any(not isinstance(w, int) or w < 1 for w in config.widths) or config.depth < 1:
        raise ValueError(f"widths and depth must be positive integers, got {config.widths}, {config.depth}")
    for name in config.datasets:
        epochs = config.epochs.get(name)
        if not epochs or any(not isinstance(e, int) or e < 0 for e in epochs):
            raise ValueError(f"epochs for {name!r} must be integers >= 0, got {epochs!r}")
    if config.grid < 1 or config.batch_size < 1 or not config.lr > 0 or config.margin < 0:
        raise ValueError("grid and batch_size must be >= 1, lr > 0 and margin >= 0")
    return [parse_method(m) for m in config.methods]


def measure(model: nn.Sequential, points: np.ndarray, labels: np.ndarray, config: RegionsConfig) -> dict:
    """Per hidden layer: exact regions, grid estimate, dead units on the data and in the box; accuracy, loss."""
    box = box_around(points, config.margin)
    mesh = exact_regions(model, box)
    with torch.no_grad():
        logits = model(torch.from_numpy(points))
        loss = F.cross_entropy(logits, torch.from_numpy(labels)).item()
        accuracy = (logits.argmax(1).numpy() == labels).mean().item()
    return {"exact": mesh.counts, "sampled": sampled_regions(model, box, config.grid),
            "dead_on_data": dead_units(model, points),
            "dead_in_box": [int((m <= 0).sum()) for m in mesh.max_preactivation],
            "accuracy": accuracy, "loss": loss}


def cells(config: RegionsConfig) -> list[dict]:
    return [{"dataset": d, "width": w, "method": m, "seed": s}
            for d in config.datasets for w in config.widths for s in config.seeds for m in config.methods]


def _cell_settings(config: RegionsConfig, cell: dict) -> dict:
    fixed = {k: getattr(config, k) for k in ("depth", "lr", "batch_size", "grid", "margin", "moons_noise")}
    return {**fixed, **cell, "epochs": list(config.epochs[cell["dataset"]])}


def checkpoint_file(cell: dict) -> str:
    return f"checkpoints/{cell['dataset']}-k{cell['width']}-{cell['method'].replace(':', '')}-seed{cell['seed']}.pt"


def run_cell(config: RegionsConfig, cell: dict, run_dir: Path, progress: bool = False) -> list[dict]:
    """Train one MLP, measure it at each snapshot epoch, save the snapshots; returns one dict per epoch."""
    points, labels, classes = make_dataset(cell["dataset"], cell["seed"], config.moons_noise)
    method = parse_method(cell["method"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cell["seed"])
        model = mlp(cell["width"], classes, method, config.depth)
    snapshots, states = [], {}
    x, y = torch.from_numpy(points), torch.from_numpy(labels)
    for epoch in train(model, x, y, method, config.epochs[cell["dataset"]], cell["seed"], config.lr,
                       config.batch_size, progress):
        snapshots.append({"epoch": epoch, **measure(model, points, labels, config)})
        states[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"cell": cell, "classes": classes, "states": states}, buffer)
    write_bytes(run_dir / checkpoint_file(cell), buffer.getvalue())
    return snapshots


def load_snapshot(run_dir: Path, cell: dict, epoch: int, config: RegionsConfig) -> nn.Sequential:
    """The MLP of ``cell`` at ``epoch`` from its checkpoint file."""
    saved = torch.load(run_dir / checkpoint_file(cell), weights_only=True)
    with torch.random.fork_rng(devices=[]):  # the throw-away initialization leaves the global RNG alone
        model = mlp(cell["width"], saved["classes"], parse_method(cell["method"]), config.depth)
    model.load_state_dict(saved["states"][epoch])
    return model


def table(rows: list[dict]) -> list[dict]:
    """One flat row per (cell, epoch, layer)."""
    out = []
    for row in rows:
        for snap in row["snapshots"]:
            for layer in range(len(snap["exact"])):
                exact, sampled = snap["exact"][layer], snap["sampled"][layer]
                out.append({**row["cell"], "epoch": snap["epoch"], "layer": layer + 1, "exact_regions": exact,
                            "sampled_regions": sampled, "missed_by_sampling": round(1 - sampled / exact, 4),
                            "dead_on_data": snap["dead_on_data"][layer], "dead_in_box": snap["dead_in_box"][layer],
                            "accuracy": round(snap["accuracy"], 4), "loss": round(snap["loss"], 5)})
    return out


def findings(flat: list[dict]) -> list[str]:
    """Plain sentences on the last epoch of each network: regions and dead units per method, whether Leaky ReLU
    has more regions and ProxyGrad fewer dead units than ReLU, and what grid sampling misses."""
    depth = max(r["layer"] for r in flat)
    final = {}
    for r in flat:  # the last epoch of each network, last layer for regions, all layers for dead units
        key = (r["dataset"], r["width"], r["seed"], r["method"])
        if key not in final or r["epoch"] > final[key]["epoch"]:
            final[key] = {"epoch": r["epoch"], "regions": None, "dead": 0}
        if r["epoch"] == final[key]["epoch"]:
            final[key]["dead"] += r["dead_on_data"]
            if r["layer"] == depth:
                final[key]["regions"] = r["exact_regions"]
    lines = []
    for group in dict.fromkeys(k[:3] for k in final):
        parts = [f"{m}: {v['regions']} regions, {v['dead']} dead" for (*g, m), v in final.items() if tuple(g) == group]
        epoch = next(v["epoch"] for k, v in final.items() if k[:3] == group)
        lines.append(f"{group[0]}, k = {group[1]}, seed {group[2]}, epoch {epoch} (regions after the last layer; "
                     f"units never active on the data, all layers): " + "; ".join(parts) + ".")
    methods = list(dict.fromkeys(k[3] for k in final))
    others = [m for m in methods if m != "relu"]
    for other, quantity, wanted in [(m, "regions", "more") for m in others] + [(m, "dead", "fewer") for m in others]:
        pairs = [(v, final[(*k[:3], "relu")]) for k, v in final.items() if k[3] == other and (*k[:3], "relu") in final]
        if pairs:
            count = sum((a[quantity] > b[quantity]) if wanted == "more" else (a[quantity] < b[quantity])
                        for a, b in pairs)
            ties = sum(a[quantity] == b[quantity] for a, b in pairs)
            noun = "regions" if quantity == "regions" else "dead units"
            lines.append(f"{other} has {wanted} {noun} than relu in {count} of {len(pairs)} final networks "
                         f"({ties} ties).")
    missed = [r["missed_by_sampling"] for r in flat]
    lines.append(f"grid sampling misses a median {100 * statistics.median(missed):.1f}% (max "
                 f"{100 * max(missed):.1f}%) of the exact regions.")
    return lines


def region_picture(ax, polygons: list[np.ndarray], points: np.ndarray, labels: np.ndarray, seed: int = 0) -> None:
    """Each region filled with its own random colour, the data on top coloured by class."""
    colours = np.random.default_rng(seed).uniform(0.25, 1.0, (len(polygons), 3))
    ax.add_collection(PolyCollection(polygons, facecolors=colours, edgecolors="none", rasterized=True))
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", vmin=0, vmax=9, s=2, linewidths=0.2,
               edgecolors="black")
    lows, highs = np.min([p.min(0) for p in polygons], 0), np.max([p.max(0) for p in polygons], 0)
    ax.set_xlim(lows[0], highs[0])
    ax.set_ylim(lows[1], highs[1])
    ax.set_xticks([]), ax.set_yticks([])


def pictures_figure(run_dir: Path, config: RegionsConfig, dataset: str, width: int, seed: int) -> Figure:
    """Seed 003's Figures 5-7: rows methods, columns epochs; each panel the regions with the data on top."""
    points, labels, _ = make_dataset(dataset, seed, config.moons_noise)
    box = box_around(points, config.margin)
    epochs = config.epochs[dataset]
    figure = Figure(figsize=(1.7 * len(epochs) + 0.8, 1.8 * len(config.methods) + 0.3))
    axes = np.asarray(figure.subplots(len(config.methods), len(epochs), squeeze=False))
    for i, method in enumerate(config.methods):
        cell = {"dataset": dataset, "width": width, "method": method, "seed": seed}
        for j, epoch in enumerate(epochs):
            mesh = exact_regions(load_snapshot(run_dir, cell, epoch, config), box)
            region_picture(axes[i, j], mesh.polygons, points, labels, seed=j)
            axes[i, j].set_title(f"r={epoch}: {mesh.counts[-1]}", fontsize=7)
        axes[i, 0].set_ylabel(parse_method(method).label, fontsize=8)
    figure.suptitle(f"{dataset}, k = {width}: regions after {config.depth} layers (r: epoch)", fontsize=9)
    figure.tight_layout()
    return figure


def curves_figure(flat: list[dict], key: str, ylabel: str, log: bool) -> Figure:
    """``key`` vs epoch: rows data sets, columns widths; colour: method; line style: layer (solid: last)."""
    datasets = list(dict.fromkeys(r["dataset"] for r in flat))
    widths = list(dict.fromkeys(r["width"] for r in flat))
    methods = list(dict.fromkeys(r["method"] for r in flat))
    depth = max(r["layer"] for r in flat)
    styles = {depth: "-", depth - 1: "--", depth - 2: ":"}
    figure = Figure(figsize=(3.2 * len(widths) + 0.6, 2.6 * len(datasets) + 0.4))
    axes = np.asarray(figure.subplots(len(datasets), len(widths), squeeze=False))
    for i, dataset in enumerate(datasets):
        for j, width in enumerate(widths):
            ax = axes[i, j]
            for k, method in enumerate(methods):
                colour = METHOD_COLOURS[parse_method(method).mode]
                shade = 0.55 if sum(m.split(":")[0] == method.split(":")[0] for m in methods[:k]) else 1.0
                for layer, style in styles.items():
                    series = sorted((r["epoch"], r[key]) for r in flat if r["dataset"] == dataset
                                    and r["width"] == width and r["method"] == method and r["layer"] == layer)
                    if series:
                        ax.plot(*zip(*series), style, color=colour, alpha=shade, marker=".", markersize=3,
                                label=f"{parse_method(method).label}" if layer == depth else None)
            ax.set_xscale("symlog", linthresh=1)
            if log:
                ax.set_yscale("log")
            ax.set_title(f"{dataset}, k = {width}", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == len(datasets) - 1:
                ax.set_xlabel("epoch", fontsize=7)
            if j == 0:
                ax.set_ylabel(ylabel, fontsize=7)
    axes[0, 0].legend(fontsize=6, title="solid: last layer, dashed/dotted: earlier", title_fontsize=6)
    figure.tight_layout()
    return figure


def sampling_figure(flat: list[dict], grid: int) -> Figure:
    """Grid-sampling estimate vs exact count (every layer, epoch and network), with the line y = x."""
    figure = Figure(figsize=(4.6, 4.2))
    ax = figure.subplots()
    for method, marker in zip(dict.fromkeys(r["method"] for r in flat), "o^sDvP*X"):
        sel = [r for r in flat if r["method"] == method]
        ax.scatter([r["exact_regions"] for r in sel], [r["sampled_regions"] for r in sel], s=8, alpha=0.6,
                   marker=marker, color=METHOD_COLOURS[parse_method(method).mode], label=parse_method(method).label)
    top = max(r["exact_regions"] for r in flat)
    ax.plot([1, top], [1, top], "k--", linewidth=0.8, label="y = x")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("exact regions (regioncam)")
    ax.set_ylabel(f"regions found on a {grid} x {grid} grid")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure



def run_regions(config: RegionsConfig, run_dir: str | Path, progress: bool = True, pictures: bool = True) -> dict:
    """Run (or resume) the sweep into ``run_dir``; returns the results.json payload."""
    validate(config)
    run_dir = Path(run_dir)
    start = time.perf_counter()
    rows = ResultRows(run_dir / "cells.jsonl")
    todo = [c for c in cells(config) if not rows.done(cell_key(_cell_settings(config, c)))
            or not (run_dir / checkpoint_file(c)).is_file()]
    bar = tqdm(todo, desc="training runs", disable=not progress)
    for cell in bar:
        bar.set_postfix_str(f"{cell['dataset']} k={cell['width']} {cell['method']}")
        snapshots = run_cell(config, cell, run_dir, progress)
        rows.append(cell_key(_cell_settings(config, cell)), cell=cell, snapshots=snapshots)
    wanted = {cell_key(_cell_settings(config, c)) for c in cells(config)}
    latest = {r["key"]: r for r in rows}  # a cell retrained because its checkpoint was lost appears twice
    flat = table([r for k, r in latest.items() if k in wanted])
    write_csv(run_dir / "regions.csv", flat)
    files = {"Regions vs epoch": "regions_vs_epoch.png", "Dead units vs epoch": "dead_units.png",
             "Grid sampling vs exact count": "sampling.png"}
    write_figure(run_dir / files["Regions vs epoch"], curves_figure(flat, "exact_regions", "regions", log=True))
    write_figure(run_dir / files["Dead units vs epoch"],
                 curves_figure(flat, "dead_on_data", "units never active on the data", log=False))
    write_figure(run_dir / files["Grid sampling vs exact count"], sampling_figure(flat, config.grid))
    if pictures:
        jobs = [(d, w) for d in config.datasets for w in config.widths]
        for dataset, width in tqdm(jobs, desc="pictures", disable=not progress):
            name = f"regions_{dataset}_k{width}.png"
            write_figure(run_dir / name, pictures_figure(run_dir, config, dataset, width, config.seeds[0]))
            files[f"Regions of {dataset}, k = {width}"] = name
    payload = {"command": "regions", "title": "Linear regions of 2-D MLPs: ReLU vs Leaky ReLU vs ProxyGrad",
               "settings": {**asdict(config), "epochs": {k: list(v) for k, v in config.epochs.items()}},
               "versions": {**versions(), "regioncam": _regioncam_version()},
               "seconds": round(time.perf_counter() - start, 3), "files": files,
               "tables": [{"title": "Regions and dead units per layer and epoch", "csv": "regions.csv"}],
               "findings": findings(flat)}
    write_json(run_dir / "results.json", payload)
    return payload


def _regioncam_version() -> str:
    from importlib.metadata import version

    return version("regioncam")
