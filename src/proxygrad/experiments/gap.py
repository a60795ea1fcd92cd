"""Optimality gap of activation maximization on small networks whose true maximum is known.

Small MLPs and CNNs (with BatchNorm; ReLU and Leaky ReLU) are trained in seconds on the bundled digits at
their native 8x8. For each class logit, the exact maximum over [-1, 1]^(8x8) comes from the MILP of
:func:`proxygrad.exact.maximize`. Every AM method then starts from the same seeds (gray plus noise, the
paper's normalized step, no regularization) and is scored by the ORIGINAL network; its optimality gap is
(exact - reached) / |exact|. Methods: ``plain`` (gradient ascent on the original network), ``leaky s``,
``proxygrad s`` and, beyond the paper, ``proxygrad s->0`` (backward slope annealed linearly from s to 0 over
the run).

Every finished cell (trained network, exact maximum, method x steps) is appended to ``cells.jsonl`` and the
trained weights are kept in ``networks/``, so a rerun on the same run directory skips finished work.
"""
from __future__ import annotations

import io
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..am import RenderConfig, class_logit, render
from ..exact import maximize, optimality_gap
from ..models import digits_data
from ..models.spec import InputSpec
from ..report.files import versions, write_bytes, write_csv, write_figure, write_json
from ..report.html import write_report
from ..report.rows import ResultRows, cell_key

SIZE = 8
LEAKY_SLOPE = 0.1
METHODS = ("plain", "leaky", "proxygrad", "proxygrad-anneal")
SOLVED = 0.01  # a start counts as solved when its gap is at most 1 %
MIN_EFFECT = 1e-3  # differences in mean gap below 0.1 percentage point are "no clear difference"


# ---- networks ------------------------------------------------------------------------------------------------
def _activation(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else nn.LeakyReLU(LEAKY_SLOPE)


def _mlp(kind: str, widths: tuple[int, ...]) -> nn.Module:
    layers, width = [nn.Flatten()], SIZE * SIZE
    for w in widths:
        layers += [nn.Linear(width, w), _activation(kind)]
        width = w
    return nn.Sequential(*layers, nn.Linear(width, 10))


def _cnn(kind: str, channels: tuple[int, int]) -> nn.Module:
    a, b = channels  # 8x8 -> 4x4 -> 2x2
    return nn.Sequential(nn.Conv2d(1, a, 3, 2, 1), nn.BatchNorm2d(a), _activation(kind),
                         nn.Conv2d(a, b, 3, 2, 1), nn.BatchNorm2d(b), _activation(kind),
                         nn.Flatten(), nn.Linear(4 * b, 10))


NETWORKS = {
    "mlp-relu": lambda: _mlp("relu", (16, 16)),
    "mlp-leaky": lambda: _mlp("leaky", (16, 16)),
    "cnn-relu": lambda: _cnn("relu", (2, 4)),
    "cnn-leaky": lambda: _cnn("leaky", (2, 4)),
    "cnn4-relu": lambda: _cnn("relu", (4, 4)),
    "cnn4-leaky": lambda: _cnn("leaky", (4, 4)),
    "mlp8-relu": lambda: _mlp("relu", (8, 8)),
}
DESCRIPTIONS = {
    "mlp-relu": "64-16-16-10 MLP, ReLU", "mlp-leaky": f"64-16-16-10 MLP, Leaky ReLU {LEAKY_SLOPE}",
    "cnn-relu": "conv 2ch/s2 + BN, conv 4ch/s2 + BN, linear; ReLU",
    "cnn-leaky": f"conv 2ch/s2 + BN, conv 4ch/s2 + BN, linear; Leaky ReLU {LEAKY_SLOPE}",
    "cnn4-relu": "conv 4ch/s2 + BN, conv 4ch/s2 + BN, linear; ReLU",
    "cnn4-leaky": f"conv 4ch/s2 + BN, conv 4ch/s2 + BN, linear; Leaky ReLU {LEAKY_SLOPE}",
    "mlp8-relu": "64-8-8-10 MLP, ReLU",
}


def train_network(name: str, seed: int = 0, epochs: int = 30) -> tuple[nn.Module, float]:
    """(the network ``name`` trained on the digits' training split at 8x8 in eval mode, its test accuracy).
    Adam (lr 0.01, weight decay 1e-4), batch 64, cross-entropy; deterministic for a seed and thread count."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; valid: {', '.join(NETWORKS)}")
    torch.manual_seed(seed)
    model = NETWORKS[name]()
    images, labels = digits_data("train", SIZE)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order) - 1, 64):
            batch = order[start:start + 64]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    test_images, test_labels = digits_data("test", SIZE)
    with torch.no_grad():
        accuracy = (model(test_images).argmax(1) == test_labels).float().mean().item()
    return model, accuracy


# ---- configuration -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GapConfig:
    """What to measure. ``time_limit``: seconds per MILP (a time-limited solve gives an upper bound, and the
    gap is then an upper bound too)."""

    networks: tuple[str, ...] = ("mlp-relu", "mlp-leaky", "cnn-relu", "cnn-leaky")
    classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: tuple[int, ...] = (10, 50, 200)
    slopes: tuple[float, ...] = (0.05, 0.2, 0.5)
    methods: tuple[str, ...] = METHODS
    lr: float | None = None
    init_sigma: float = 0.1
    train_epochs: int = 30
    train_seed: int = 0
    time_limit: float = 60.0

    def validate(self) -> None:
        for name, values, valid in (("network", self.networks, NETWORKS), ("method", self.methods, METHODS)):
            unknown = [v for v in values if v not in valid]
            if unknown or not values:
                raise ValueError(f"unknown {name}s {unknown or list(values)}; valid: {', '.join(valid)}")
        if not self.classes or any(not 0 <= c < 10 for c in self.classes):
            raise ValueError(f"classes must be digits 0..9, got {self.classes}")
        if not self.seeds or not self.steps or any(s < 1 for s in self.steps):
            raise ValueError("give at least one seed and one step count (each >= 1)")
        if set(self.methods) - {"plain"} and not self.slopes:
            raise ValueError("leaky and proxygrad need at least one slope")
        if any(not (math.isfinite(s) and s > 0) for s in self.slopes):
            raise ValueError(f"slopes must be > 0, got {self.slopes}")
        if not (self.time_limit > 0 and self.train_epochs >= 1):
            raise ValueError("time_limit must be > 0 and train_epochs >= 1")


PRESETS = {
    "quick": GapConfig(),
    "test": GapConfig(networks=("mlp8-relu",), classes=(0, 1), seeds=(0, 1), steps=(30,), slopes=(0.3,),
                      methods=("plain", "proxygrad", "proxygrad-anneal"), train_epochs=5, time_limit=30.0),
    "full": GapConfig(networks=("mlp-relu", "mlp-leaky", "cnn-relu", "cnn-leaky", "cnn4-relu", "cnn4-leaky"),
                      classes=tuple(range(10)), seeds=tuple(range(10)), steps=(10, 30, 100, 300, 1000),
                      slopes=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5), time_limit=300.0),
}


def preset(name: str, **changes) -> GapConfig:
    """A named configuration with the given fields changed (None leaves a field as it is). Measured on a
    shared 2-core machine with one thread: quick about 70 s, test about 6 s, full about 13 minutes."""
    if name not in PRESETS:
        raise ValueError(f"unknown gap preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Method:
    """One AM method: engine mode (``relu`` is the original network: plain ascent), slope, slope schedule."""

    mode: str
    slope: float = 0.0
    schedule: str = "constant"

    @property
    def label(self) -> str:
        if self.mode == "relu":
            return "plain"
        return f"{self.mode} s={self.slope:g}" + ("->0" if self.schedule != "constant" else "")


def methods(config: GapConfig) -> list[Method]:
    out = []
    for name in config.methods:
        if name == "plain":
            out.append(Method("relu"))
        else:
            mode, _, anneal = name.partition("-")
            out += [Method(mode, s, "linear-to-zero" if anneal else "constant") for s in config.slopes]
    return out


# ---- running -------------------------------------------------------------------------------------------------
@dataclass
class GapResult:
    """``networks``: per network, its accuracy and MILP statistics; ``rows``: one dict per network x class x
    seed x method x steps with the reached value, the exact maximum and the gap."""

    config: GapConfig
    networks: dict[str, dict] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def run_gap(config: GapConfig, run_dir: str | Path, progress: bool = True) -> GapResult:
    """Train, solve and render everything (skipping cells already in ``run_dir/cells.jsonl``)."""
    config.validate()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    cells = ResultRows(run_dir / "cells.jsonl")
    result = GapResult(config)
    chosen = methods(config)
    total = len(config.networks) * (1 + len(config.classes) + len(chosen) * len(config.steps))
    with tqdm(total=total, desc="gap", disable=not progress) as bar:
        for name in config.networks:
            bar.set_postfix_str(f"{name}: training")
            model, info = _network(cells, run_dir, name, config)
            bar.update()
            bar.set_postfix_str(f"{name}: exact maxima (MILP)")
            exact = {}
            for c in config.classes:
                exact[c] = _exact(cells, name, c, model, config)
                bar.update()
            result.networks[name] = _network_summary(info, exact)
            bar.set_postfix_str(f"{name}: activation maximization")
            for method in chosen:
                for steps in config.steps:
                    reached = _reached(cells, name, model, method, steps, config)
                    result.rows += _rows(name, method, steps, config, reached, exact)
                    bar.update()
    result.seconds = time.perf_counter() - start
    return result


def _network(cells: ResultRows, run_dir: Path, name: str, config: GapConfig) -> tuple[nn.Module, dict]:
    key = cell_key({"network": name, "train_seed": config.train_seed, "epochs": config.train_epochs})
    weights = run_dir / "networks" / f"{name}-seed{config.train_seed}-epochs{config.train_epochs}.pt"
    row = cells.get(key)
    if row is not None and weights.is_file():
        model = NETWORKS[name]()
        model.load_state_dict(torch.load(weights, weights_only=True))
        return model.eval(), row
    begin = time.perf_counter()
    model, accuracy = train_network(name, config.train_seed, config.train_epochs)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    write_bytes(weights, buffer.getvalue())
    return model, cells.append(key, network=name, description=DESCRIPTIONS[name], test_accuracy=accuracy,
                               train_seconds=time.perf_counter() - begin,
                               weights=str(weights.relative_to(run_dir)))


def _exact(cells: ResultRows, name: str, c: int, model: nn.Module, config: GapConfig) -> dict:
    key = cell_key({"exact": name, "class": c, "train_seed": config.train_seed, "epochs": config.train_epochs,
                    "time_limit": config.time_limit})
    row = cells.get(key)
    if row is None:
        solved = maximize(model, (1, SIZE, SIZE), c, time_limit=config.time_limit)
        row = cells.append(key, **solved.to_dict())
    return row


def _reached(cells: ResultRows, name: str, model: nn.Module, method: Method, steps: int,
             config: GapConfig) -> list[float]:
    """The ORIGINAL network's class logit after ``steps`` steps, per (class, seed) in that order."""
    key = cell_key({"network": name, "train_seed": config.train_seed, "epochs": config.train_epochs,
                    "method": method.label, "steps": steps, "lr": config.lr, "init_sigma": config.init_sigma,
                    "classes": list(config.classes), "seeds": list(config.seeds)})
    row = cells.get(key)
    if row is None:
        jobs = [(c, s) for c in config.classes for s in config.seeds]
        render_config = RenderConfig(method=method.mode, slope=method.slope, slope_schedule=method.schedule,
                                     steps=steps, lr=config.lr, init_sigma=config.init_sigma, trace_every=steps,
                                     progress=False)
        spec = InputSpec(1, (SIZE, SIZE), (0.5,), (0.5,))
        rendered = render(model, spec, [class_logit(c) for c, _ in jobs], [s for _, s in jobs], render_config)
        row = cells.append(key, reached=rendered.activation.tolist())
    return row["reached"]


def _network_summary(info: dict, exact: dict[int, dict]) -> dict:
    solves = list(exact.values())
    return {"description": info["description"], "test_accuracy": info["test_accuracy"],
            "milp_optimal": f"{sum(e['optimal'] for e in solves)}/{len(solves)}",
            "milp_seconds_mean": statistics.fmean(e["seconds"] for e in solves),
            "milp_seconds_max": max(e["seconds"] for e in solves),
            "binaries": max(e["binaries"] for e in solves),
            "exact_maxima": {c: e["value"] if e["optimal"] else e["bound"] for c, e in exact.items()}}


def _rows(name, method: Method, steps, config: GapConfig, reached, exact) -> list[dict]:
    jobs = [(c, s) for c in config.classes for s in config.seeds]
    out = []
    for (c, seed), value in zip(jobs, reached):
        best = exact[c]["value"] if exact[c]["optimal"] else exact[c]["bound"]
        out.append({"network": name, "class": c, "seed": seed, "method": method.label, "mode": method.mode,
                    "slope": method.slope, "schedule": method.schedule, "steps": steps, "reached": value,
                    "exact": best, "exact_is_optimal": bool(exact[c]["optimal"]),
                    "gap": optimality_gap(best, value)})
    return out


# ---- summary -------------------------------------------------------------------------------------------------
def summary(result: GapResult) -> list[dict]:
    """Per network x steps x method: mean and median gap, share of starts solved (gap <= 1 %), and the
    paired difference to plain ascent from the same starts with a verdict: "helps" / "hurts" when the mean
    difference is beyond two standard errors (and beyond 0.1 percentage point), else "no clear difference"."""
    groups: dict[tuple, list[dict]] = {}
    for row in result.rows:
        groups.setdefault((row["network"], row["steps"], row["method"]), []).append(row)
    table = []
    for (network, steps, method), rows in groups.items():
        gaps = np.array([r["gap"] for r in rows])
        line = {"network": network, "steps": steps, "method": method, "starts": len(rows),
                "mean_gap": float(gaps.mean()), "median_gap": float(np.median(gaps)),
                "solved": float((gaps <= SOLVED).mean()), "vs_plain": None, "verdict": ""}
        base = groups.get((network, steps, "plain"))
        if base is not None and method != "plain":
            diff = gaps - np.array([r["gap"] for r in base])
            line["vs_plain"] = float(diff.mean())
            line["verdict"] = _verdict(diff)
        table.append(line)
    networks = list(dict.fromkeys(r["network"] for r in table))
    labels = list(dict.fromkeys(r["method"] for r in table))
    return sorted(table, key=lambda r: (networks.index(r["network"]), r["steps"], labels.index(r["method"])))


def _verdict(diff: np.ndarray) -> str:
    mean = diff.mean()
    se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.inf
    if abs(mean) > MIN_EFFECT and abs(mean) > 2 * se:
        return "helps" if mean < 0 else "hurts"
    return "no clear difference"


def findings(table: list[dict], networks: dict[str, dict]) -> list[str]:
    """Plain sentences: per network, where each ProxyGrad variant helps or hurts against plain ascent."""
    lines = []
    for network in networks:
        rows = [r for r in table if r["network"] == network and r["verdict"]]
        for variant in dict.fromkeys(r["method"] for r in rows if r["method"].startswith("proxygrad")):
            parts = [f"{r['steps']} steps: {r['verdict']} ({100 * r['mean_gap']:.2f}% vs plain "
                     f"{100 * (r['mean_gap'] - r['vs_plain']):.2f}%)" for r in rows if r["method"] == variant]
            lines.append(f"{network}, {variant}: " + "; ".join(parts))
        worst_exact = networks[network]["milp_optimal"]
        if worst_exact.split("/")[0] != worst_exact.split("/")[1]:
            lines.append(f"{network}: only {worst_exact} MILPs proved optimal; the others' gaps are upper bounds")
    return lines


def gap_figure(table: list[dict], slopes) -> Figure:
    """Mean optimality gap vs steps, one panel per network, one line per method (plain black; leaky dashed;
    proxygrad solid; annealed proxygrad dotted; color by slope)."""
    from matplotlib import colormaps

    networks = list(dict.fromkeys(r["network"] for r in table))
    figure = Figure(figsize=(3.4 * len(networks) + 1.8, 3.3))
    axes = np.atleast_1d(figure.subplots(1, len(networks), sharey=True))
    slopes = list(slopes)
    for ax, network in zip(axes, networks):
        rows = [r for r in table if r["network"] == network]
        for method in dict.fromkeys(r["method"] for r in rows):
            points = sorted((r["steps"], max(100 * r["mean_gap"], 1e-3)) for r in rows if r["method"] == method)
            mode, slope = method.split(" ")[0], _slope_of(method)
            color = "black" if mode == "plain" else colormaps["viridis"](
                0.9 * slopes.index(slope) / max(len(slopes) - 1, 1))
            style = ":" if method.endswith("->0") else "--" if mode == "leaky" else "-"
            ax.plot(*zip(*points), style, marker="o", ms=3, color=color, label=method, lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(network, fontsize=9)
        ax.set_xlabel("steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean optimality gap (%, log)")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    return figure


def _slope_of(method: str) -> float | None:
    if "s=" not in method:
        return None
    return float(method.split("s=")[1].split("->")[0])


def write_gap(run_dir: str | Path, result: GapResult) -> dict:
    """results.json, summary.csv, starts.csv, networks.csv, gap.png and report.html; returns the payload."""
    run_dir = Path(run_dir)
    table = summary(result)
    write_csv(run_dir / "summary.csv", table)
    write_csv(run_dir / "starts.csv", result.rows)
    nets = [{"network": n, **{k: v for k, v in info.items() if k != "exact_maxima"}}
            for n, info in result.networks.items()]
    write_csv(run_dir / "networks.csv", nets)
    write_figure(run_dir / "gap.png", gap_figure(table, result.config.slopes))
    payload = {"command": "gap", "title": "proxygrad gap: optimality gap of activation maximization",
               "findings": findings(table, result.networks), "settings": asdict(result.config),
               "versions": versions(), "seconds": round(result.seconds, 3), "networks": result.networks,
               "summary": table,
               "tables": [{"title": "Networks and their exact maxima (MILP)", "csv": "networks.csv"},
                          {"title": "Optimality gap per method (paired with plain ascent from the same starts)",
                           "csv": "summary.csv"}],
               "files": {"Optimality gap vs steps": "gap.png"}}
    write_json(run_dir / "results.json", payload)
    write_report(run_dir)
    return payload
