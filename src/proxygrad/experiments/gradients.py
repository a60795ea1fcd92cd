"""The paper's Section 7 (Table 5), Figure 4 and Appendix 11.3 for randomly initialized ResNet18s.

A cell is one repetition r for one architecture (with / without BatchNorm): a ResNet18 initialized with seed
``seed + r`` and one random input batch drawn with the same seed; every method (relu, leaky(s), proxygrad(s)
for each slope) is probed on that same network and batch, so the methods are compared pairwise. Cells are
appended to ``cells.jsonl`` as they finish: a killed run restarted on the same run directory skips them.

Outputs: ``table5.csv`` (mean and std over repetitions of the mean |dL/d output| at every position),
``bn_std.csv`` (Figure 4: std of each BatchNorm input vs slope, Leaky ReLU ResNets), ``gradients.png``,
``figure4.png`` (with the Appendix 11.3 closed forms) and ``results.json``.
"""
from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..analysis.gradients import (TABLE5_POSITION, leaky_relu_gaussian_mean, leaky_relu_gaussian_variance, probe,
                                  resnet18)
from ..report.files import versions, write_csv, write_figure, write_json
from ..report.rows import ResultRows, cell_key
from ..surrogates.rectifier import check_slope

POSITIONS = ("conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1", "layer4.0.conv1", "layer4.1.conv2")


@dataclass(frozen=True)
class GradientConfig:
    """What to measure. ``data``: None for the bundled digits (gray, repeated to 3 channels) or the root of an
    ImageFolder tree (one sub-folder per class). Images are ``size`` x ``size`` in [-1, 1]."""

    slopes: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3)
    repeats: int = 50
    batch_size: int = 32
    size: int = 64
    positions: tuple[str, ...] = POSITIONS
    batchnorm: tuple[bool, ...] = (True, False)
    data: str | None = None
    seed: int = 0
    device: str | None = None


PRESETS = {
    "paper": GradientConfig(),  # about 15 minutes on 2 shared CPU cores
    "quick": GradientConfig(slopes=(0.05, 0.1, 0.3), repeats=3, batch_size=16, size=32),
}


def preset(name: str, **changes) -> GradientConfig:
    """A named configuration (paper: 50 repetitions, about 15 minutes on 2 CPU cores; quick: seconds) with
    some fields changed (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown gradients preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


def validate(config: GradientConfig) -> None:
    """Check everything that can be checked before work starts (positions are checked on the model)."""
    if not config.slopes:
        raise ValueError("give at least one slope (e.g. --slopes 0.01,0.1,0.2)")
    for slope in config.slopes:
        if slope > 1 or check_slope(slope, "slope") == 0:
            raise ValueError(f"slopes must be in (0, 1] (s = 0 is relu, always included), got {slope}")
    for name in ("repeats", "batch_size", "size"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(config, name)!r}")
    if config.batch_size < 2:
        raise ValueError("batch_size must be at least 2 (BatchNorm needs batch statistics)")
    if not config.positions or not config.batchnorm:
        raise ValueError("give at least one position and one architecture (with and/or without BatchNorm)")
    if config.data is not None and not Path(config.data).is_dir():
        raise FileNotFoundError(f"data folder {config.data!r} does not exist (expected an ImageFolder root: one "
                                "sub-folder of images per class)")


def methods(slopes: tuple[float, ...]) -> list[tuple[str, float]]:
    """(mode, slope) pairs: relu first, then leaky and proxygrad at every slope."""
    return [("relu", 0.0)] + [(m, float(s)) for m in ("leaky", "proxygrad") for s in slopes]


class InputBatches:
    """Random labelled batches (B, 3, size, size) in [-1, 1] from the bundled digits or an ImageFolder root."""

    def __init__(self, data: str | None, size: int):
        self.data, self.size = data, size
        if data is None:
            from ..models import digits_data

            images, self.labels = digits_data("all", size)
            self.images = images.expand(-1, 3, -1, -1)
            self.num_classes, self.name = 10, "bundled digits"
        else:
            from torchvision import datasets, transforms

            tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
                                     transforms.Normalize((0.5,) * 3, (0.5,) * 3)])  # RGB [0, 1] -> [-1, 1]
            self.folder = datasets.ImageFolder(data, transform=tf)
            self.num_classes, self.name = len(self.folder.classes), f"ImageFolder {data}"

    def __len__(self) -> int:
        return len(self.labels) if self.data is None else len(self.folder)

    def batch(self, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` distinct random samples chosen by ``seed``: images (B, 3, H, W), labels (B,)."""
        if batch_size > len(self):
            raise ValueError(f"batch_size {batch_size} is larger than the data ({len(self)} samples)")
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:batch_size]
        if self.data is None:
            return self.images[index].contiguous(), self.labels[index]
        pairs = [self.folder[i] for i in index.tolist()]
        return torch.stack([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


def measure_cell(config: GradientConfig, batches: InputBatches, batchnorm: bool, repeat: int,
                 device: torch.device) -> dict:
    """Probe every method on one freshly initialized network and one batch: {"mode s": Probe as dict}."""
    seed = config.seed + repeat
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = resnet18(batches.num_classes, batchnorm).to(device).train()
    images, labels = (t.to(device) for t in batches.batch(config.batch_size, seed))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = {}
    for mode, slope in methods(config.slopes):
        model.load_state_dict(state)  # BatchNorm running statistics do not accumulate across methods
        out[f"{mode} {slope:g}"] = asdict(probe(model, images, labels, list(config.positions), mode, slope))
    return out


def cells(config: GradientConfig) -> list[dict]:
    return [{"batchnorm": bn, "repeat": r} for bn in config.batchnorm for r in range(config.repeats)]


def _cell_settings(config: GradientConfig, cell: dict) -> dict:
    fixed = {k: v for k, v in asdict(config).items() if k not in ("repeats", "batchnorm", "device")}
    return {**fixed, **cell}


def summarize(rows: list[dict], config: GradientConfig) -> tuple[list[dict], list[dict]]:
    """(gradient table, BatchNorm-input table): mean, std and n over repetitions, one row per
    (architecture, position, method, slope) and per (BatchNorm layer, slope) of Leaky ReLU ResNets."""
    grads, stds = [], []
    for bn in config.batchnorm:
        cell_rows = [r for r in rows if r["cell"]["batchnorm"] == bn]
        for position in config.positions:
            for mode, slope in methods(config.slopes):
                values = [r["probes"][f"{mode} {slope:g}"]["gradients"][position] for r in cell_rows]
                grads.append({"batchnorm": bn, "position": position, "method": mode, "slope": slope,
                              **_stats(values)})
        if bn:
            layers = list(cell_rows[0]["probes"]["relu 0"]["bn_input_std"]) if cell_rows else []
            for layer in layers:
                for mode, slope in [("relu", 0.0)] + [("leaky", float(s)) for s in config.slopes]:
                    values = [r["probes"][f"{mode} {slope:g}"]["bn_input_std"][layer] for r in cell_rows]
                    stds.append({"layer": layer, "slope": slope, **_stats(values)})
    return grads, stds


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def table5_text(grads: list[dict], position: str = TABLE5_POSITION) -> str:
    """Table 5's layout as text: rows s (s = 0 is relu); columns Leaky / ProxyGrad with and without BN."""
    def cell(bn, mode, slope):
        row = next((r for r in grads if r["position"] == position and r["batchnorm"] == bn
                    and r["method"] == mode and r["slope"] == slope), None)
        return "-" if row is None else f"{row['mean']:.3g} +- {row['std']:.2g}"

    archs = sorted({r["batchnorm"] for r in grads}, reverse=True)
    slopes = sorted({r["slope"] for r in grads if r["method"] != "relu"})
    header = ["s"] + [f"{m} ({'BN' if bn else 'no BN'})" for bn in archs for m in ("Leaky ReLU", "ProxyGrad")]
    lines = [header, ["0 (ReLU)"] + [cell(bn, "relu", 0.0) for bn in archs for _ in range(2)]]
    lines += [[f"{s:g}"] + [cell(bn, m, s) for bn in archs for m in ("leaky", "proxygrad")] for s in slopes]
    widths = [max(len(line[i]) for line in lines) + 2 for i in range(len(header))]
    return "\n".join("".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def _series(grads: list[dict], batchnorm: bool, mode: str, position: str) -> list[tuple[float, float]]:
    """(slope, mean gradient) of ``mode`` at ``position``, starting with relu at s = 0."""
    return sorted((r["slope"], r["mean"]) for r in grads if r["position"] == position
                  and r["batchnorm"] == batchnorm and r["method"] in (mode, "relu"))


def findings(grads: list[dict], position: str = TABLE5_POSITION) -> list[str]:
    """Plain sentences: does each method's gradient grow or shrink with the slope (paper: with BN, ProxyGrad
    grows and Leaky ReLU shrinks; without BN, both grow)? At ``position`` in detail, then over all positions."""
    lines = []
    positions = list(dict.fromkeys(r["position"] for r in grads))
    for bn in sorted({r["batchnorm"] for r in grads}, reverse=True):
        for mode in ("leaky", "proxygrad"):
            series = _series(grads, bn, mode, position)
            if len(series) < 2:
                continue
            (s0, g0), (s1, g1) = series[0], series[-1]
            steps = [b[1] > a[1] for a, b in itertools.pairwise(series)]
            lines.append(f"{'with' if bn else 'without'} BatchNorm, {position}: the {mode} gradient "
                         f"{'grows' if g1 > g0 else 'shrinks'} with the slope ({g0:.3g} at s = {s0:g} -> {g1:.3g} "
                         f"at s = {s1:g}, x{g1 / g0:.2f}{'' if len(set(steps)) == 1 else ', not monotonically'}).")
            if len(positions) > 1:
                grows = sum(_series(grads, bn, mode, p)[-1][1] > _series(grads, bn, mode, p)[0][1] for p in positions)
                lines.append(f"  over all {len(positions)} positions it grows at {grows} and shrinks at "
                             f"{len(positions) - grows}.")
    return lines


def gradient_figure(grads: list[dict]) -> Figure:
    """Mean |dL/d output| vs slope, one panel per (architecture, position); error bars: std over repetitions."""
    archs = sorted({r["batchnorm"] for r in grads}, reverse=True)
    positions = list(dict.fromkeys(r["position"] for r in grads))
    figure = Figure(figsize=(2.6 * len(positions) + 0.6, 2.4 * len(archs) + 0.4))
    axes = np.asarray(figure.subplots(len(archs), len(positions), squeeze=False))
    for i, bn in enumerate(archs):
        for j, position in enumerate(positions):
            ax = axes[i, j]
            for mode, colour in (("leaky", "tab:orange"), ("proxygrad", "tab:blue")):
                series = sorted((r["slope"], r["mean"], r["std"]) for r in grads if r["batchnorm"] == bn
                                and r["position"] == position and r["method"] in (mode, "relu"))
                s, m, e = zip(*series)
                ax.errorbar(s, m, yerr=e, color=colour, marker="o", markersize=3, capsize=2, label=mode)
            ax.set_yscale("log")
            ax.set_title(f"{position} ({'BN' if bn else 'no BN'})", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if i == len(archs) - 1:
                ax.set_xlabel("negative slope s (s = 0: ReLU)", fontsize=7)
            if j == 0:
                ax.set_ylabel("mean |dL/d output|", fontsize=7)
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def figure4(stds: list[dict], monte_carlo_samples: int = 200_000, seed: int = 0) -> Figure:
    """Left: Appendix 11.3, mean and std of LeakyReLU_s(N(0, 1)), closed form (lines) and Monte Carlo (dots).
    Right: Figure 4, std of the input of each BatchNorm layer vs s in Leaky ReLU ResNet18s (mean over
    repetitions), relative to its value at s = 0 (ReLU) so that layers of different scales share one axis."""
    figure = Figure(figsize=(10, 3.6))
    left, right = figure.subplots(1, 2)
    s = np.linspace(0, 1, 101)
    left.plot(s, leaky_relu_gaussian_mean(s), label="mean (1-s)/sqrt(2 pi)")
    left.plot(s, np.sqrt(leaky_relu_gaussian_variance(s)), label="std, sqrt((s^2+1)/2 - (1-s)^2/(2 pi))")
    x = torch.randn(monte_carlo_samples, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    dots = np.linspace(0, 1, 11)
    samples = [torch.nn.functional.leaky_relu(x, float(d)) for d in dots]
    left.plot(dots, [v.mean().item() for v in samples], "k.", label=f"Monte Carlo ({monte_carlo_samples} samples)")
    left.plot(dots, [v.std().item() for v in samples], "k.")
    left.set_xlabel("negative slope s")
    left.set_title("Leaky ReLU of N(0, 1) (Appendix 11.3)", fontsize=9)
    left.legend(fontsize=7)
    left.grid(alpha=0.3)
    layers = list(dict.fromkeys(r["layer"] for r in stds))
    colours = colormaps["viridis"](np.linspace(0, 0.9, len(layers)))
    for k, layer in enumerate(layers):
        series = dict(sorted((r["slope"], r["mean"]) for r in stds if r["layer"] == layer))
        base = series.get(0.0) or next(iter(series.values()))
        right.plot(list(series), [v / base for v in series.values()], marker="o", markersize=3, color=colours[k],
                   label=layer if k in (0, 1, len(layers) // 2, len(layers) - 1) else None)
    right.set_xlabel("negative slope s (Leaky ReLU in both passes; s = 0: ReLU)")
    right.set_ylabel("std of BatchNorm input / std at s = 0")
    right.set_title(f"Inputs of the {len(layers)} BatchNorm layers, shallow (dark) to deep (yellow)", fontsize=9)
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    figure.tight_layout()
    return figure



def run_gradients(config: GradientConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Run (or resume) the measurement into ``run_dir``; returns the results.json payload."""
    validate(config)
    run_dir = Path(run_dir)
    start = time.perf_counter()
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batches = InputBatches(config.data, config.size)
    rows = ResultRows(run_dir / "cells.jsonl")
    todo = [c for c in cells(config) if not rows.done(cell_key(_cell_settings(config, c)))]
    for cell in tqdm(todo, desc="networks", disable=not progress):
        probes = measure_cell(config, batches, cell["batchnorm"], cell["repeat"], device)
        rows.append(cell_key(_cell_settings(config, cell)), cell=cell, probes=probes)
    wanted = {cell_key(_cell_settings(config, c)) for c in cells(config)}
    grads, stds = summarize([r for r in rows if r["key"] in wanted], config)
    write_csv(run_dir / "table5.csv", grads)
    write_csv(run_dir / "bn_std.csv", stds)
    files = {"Gradient magnitude vs slope": "gradients.png"}
    write_figure(run_dir / "gradients.png", gradient_figure(grads))
    if stds:
        write_figure(run_dir / "figure4.png", figure4(stds, seed=config.seed))
        files["Figure 4 and Appendix 11.3: Leaky ReLU statistics"] = "figure4.png"
    position = TABLE5_POSITION if TABLE5_POSITION in config.positions else config.positions[0]
    payload = {"command": "gradients", "title": "Gradient magnitudes in randomly initialized ResNet18s",
               "settings": {**asdict(config), "data_name": batches.name, "num_classes": batches.num_classes,
                            "device": str(device)},
               "versions": versions(), "seconds": round(time.perf_counter() - start, 3),
               "files": files,
               "tables": [{"title": "Mean |dL/d output| over repetitions (Table 5: position layer1.0.conv1)",
                           "csv": "table5.csv"},
                          {"title": "Std of BatchNorm inputs, Leaky ReLU ResNet18 (Figure 4)", "csv": "bn_std.csv"}],
               "table5_position": position, "table5": table5_text(grads, position), "findings": findings(grads, position),
               "gradients": grads, "bn_input_std": stds}
    write_json(run_dir / "results.json", payload)
    return payload
