"""The paper's Table 4: test accuracy of ResNet18 and PFNet18 trained with ProxyGrad, Leaky ReLU and ReLU.

Cells are architecture x setting x seed; each is one training run (:func:`proxygrad.train.train`) in its own
resumable directory ``OUT/runs/<arch>-<mode>-<slope>-seed<seed>/``. The table reports, per architecture and
setting, the mean and the standard deviation (n - 1 denominator; the paper does not say which) of the final
test accuracy over the seeds, next to the paper's numbers when the dataset is one of its three.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..train import TrainConfig, read_results, train
from ..train import dist

PAPER_SETTINGS = (("proxygrad", 0.01), ("proxygrad", 0.1), ("proxygrad", 0.2), ("leaky", 0.01), ("leaky", 0.1),
                  ("leaky", 0.2), ("relu", 0.0))
ARCH_NAMES = {"resnet18": "ResNet18", "pfnet18": "PFNet18"}
MODE_NAMES = {"proxygrad": "ReLU with ProxyGrad", "leaky": "Leaky ReLU", "relu": "ReLU"}
DATASET_NAMES = {"caltech101": "Caltech101", "cub200": "CUB", "flowers102": "Flowers", "digits": "Digits",
                 "imagefolder": "ImageFolder"}


def _paper(values: Sequence[tuple[float, float]]) -> dict[tuple[str, float], tuple[float, float]]:
    return dict(zip(PAPER_SETTINGS, values))


# Table 4 of the paper: (mean, std) of the test accuracy in % over five seeds.
PAPER_TABLE4 = {
    ("caltech101", "resnet18"): _paper([(59.3, 1.7), (59.5, 1.5), (62.9, 0.8), (58.3, 1.4), (59.3, 1.6), (62.2, 0.8),
                                        (56.0, 0.6)]),
    ("caltech101", "pfnet18"): _paper([(63.5, 1.0), (63.7, 0.7), (64.6, 1.0), (63.7, 1.4), (63.4, 0.9), (63.5, 0.7),
                                       (63.9, 0.7)]),
    ("cub200", "resnet18"): _paper([(58.9, 0.4), (58.8, 0.3), (56.6, 0.3), (59.6, 0.3), (61.2, 0.4), (61.2, 0.6),
                                    (58.8, 0.5)]),
    ("cub200", "pfnet18"): _paper([(53.3, 0.4), (53.3, 0.2), (52.7, 0.4), (53.3, 0.3), (53.2, 0.5), (53.4, 0.3),
                                   (53.2, 0.3)]),
    ("flowers102", "resnet18"): _paper([(74.1, 0.2), (74.7, 0.5), (75.3, 0.4), (74.3, 0.6), (75.7, 0.4), (76.1, 0.3),
                                        (74.0, 0.3)]),
    ("flowers102", "pfnet18"): _paper([(80.9, 0.4), (80.8, 0.5), (80.7, 0.5), (81.0, 0.4), (80.9, 0.4), (81.0, 0.4),
                                       (80.8, 0.2)]),
}


@dataclass(frozen=True)
class TableConfig:
    """The grid: ``base`` (data and hyper-parameters; its arch, mode, slope and seed are replaced per cell) x
    ``archs`` x ``settings`` ((mode, slope) pairs) x ``seeds``."""

    base: TrainConfig
    archs: tuple[str, ...] = ("resnet18", "pfnet18")
    settings: tuple[tuple[str, float], ...] = PAPER_SETTINGS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        if not self.archs or not self.settings or not self.seeds:
            raise ValueError("a table needs at least one architecture, one setting and one seed")
        for mode, slope in self.settings:
            replace(self.base, mode=mode, slope=float(slope))  # validates

    def cells(self) -> list[TrainConfig]:
        """One TrainConfig per (arch, setting, seed), in table order."""
        return [replace(self.base, arch=arch, mode=mode, slope=float(slope), seed=seed)
                for arch in self.archs for mode, slope in self.settings for seed in self.seeds]


def parse_settings(text: str) -> tuple[tuple[str, float], ...]:
    """"paper" (Table 4's seven) or comma-separated ``relu``, ``leaky:S``, ``proxygrad:S``."""
    if text.strip() == "paper":
        return PAPER_SETTINGS
    settings = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        mode, _, slope = part.partition(":")
        if mode == "relu" and not slope:
            settings.append(("relu", 0.0))
            continue
        try:
            settings.append((mode, float(slope)))
        except ValueError:
            raise ValueError(f"a setting is relu, leaky:SLOPE or proxygrad:SLOPE, got {part!r}") from None
        if mode not in ("leaky", "proxygrad"):
            raise ValueError(f"a setting is relu, leaky:SLOPE or proxygrad:SLOPE, got {part!r}")
    return tuple(settings)


def cell_dir(out: Path, cell: TrainConfig) -> Path:
    return Path(out) / "runs" / f"{cell.arch.replace(':', '_')}-{cell.mode}-{cell.slope:g}-seed{cell.seed}"


def run_cells(config: TableConfig, out: Path, *, env: dist.DistEnv | None = None, sweep: bool = False,
              device: str | None = None, workers: int = 0, progress: bool = True) -> int:
    """Train the unfinished cells (resuming interrupted ones); returns how many this process trained.

    ``sweep``: this process trains only its round-robin share (``dist.my_share``), each cell alone on its own
    device; otherwise every cell runs in turn (data parallel over ``env``'s processes when given).
    """
    cells = config.cells()
    if sweep:
        rank, world, local_rank = dist.launch_env()
        cells = dist.my_share(cells, rank, world)
        env = dist.DistEnv(rank=0, world=1, local_rank=local_rank, device=dist.pick_device(device, local_rank))
    trained = 0
    for i, cell in enumerate(cells, start=1):
        where = cell_dir(out, cell)
        if read_results(where, cell) is not None:
            continue
        if progress and (env is None or env.is_main):
            print(f"[{i}/{len(cells)}] {cell.arch} {cell.label} seed {cell.seed} -> {where}", flush=True)
        train(cell, where, device=device, env=env, workers=workers, progress=progress)
        trained += 1
    return trained


def collect(config: TableConfig, out: Path) -> tuple[list[dict], list[dict]]:
    """(one row per finished cell, the cells still missing) from the run directories under ``out``; a cell
    trained with other settings is a ValueError naming them."""
    done, missing = [], []
    for cell in config.cells():
        results = read_results(cell_dir(out, cell), cell)
        entry = {"arch": cell.arch, "mode": cell.mode, "slope": cell.slope, "seed": cell.seed}
        if results is None:
            missing.append(entry)
        else:
            done.append({**entry, "test_accuracy": 100 * results["test_accuracy"],
                         "seconds": results["seconds"], "dir": str(cell_dir(out, cell))})
    return done, missing


def summarize(config: TableConfig, done: list[dict]) -> list[dict]:
    """Per (arch, setting): n, mean and std (n - 1) of the test accuracy in %, and the paper's values."""
    rows = []
    for arch in config.archs:
        for mode, slope in config.settings:
            accs = [r["test_accuracy"] for r in done if (r["arch"], r["mode"], r["slope"]) == (arch, mode, slope)]
            paper = PAPER_TABLE4.get((config.base.data.dataset, arch), {}).get((mode, slope))
            rows.append({"arch": arch, "mode": mode, "slope": slope, "n": len(accs),
                         "mean": statistics.fmean(accs) if accs else math.nan,
                         "std": statistics.stdev(accs) if len(accs) > 1 else math.nan,
                         "paper_mean": paper[0] if paper else None, "paper_std": paper[1] if paper else None})
    return rows


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_table(rows: list[dict], dataset: str) -> str:
    """Table 4's layout as text: Architecture, Activation, s, Accuracy, Std (+ n, and the paper's when known)."""
    lines = [f"{DATASET_NAMES.get(dataset, dataset)} dataset",
             f"{'Architecture':<14}{'Activation':<22}{'s':>6}{'Accuracy':>10}{'Std':>6}{'n':>4}{'paper':>14}"]
    previous = None
    for r in rows:
        arch = ARCH_NAMES.get(r["arch"], r["arch"]) if r["arch"] != previous else ""
        previous = r["arch"]
        paper = f"{r['paper_mean']:.1f} ± {r['paper_std']:.1f}" if r["paper_mean"] is not None else "-"
        lines.append(f"{arch:<14}{MODE_NAMES[r['mode']]:<22}{r['slope']:>6g}{_num(r['mean']):>10}{_num(r['std']):>6}"
                     f"{r['n']:>4}{paper:>14}")
    return "\n".join(lines)


def findings(rows: list[dict]) -> list[str]:
    """Plain statements per architecture: the best setting, and ProxyGrad's best against ReLU and against the
    best Leaky ReLU, with a Welch t-test over the seeds where there are at least two per side."""
    out = []
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch and r["n"] > 0]
        if not mine:
            continue
        best = max(mine, key=lambda r: r["mean"])
        out.append(f"{arch}: best {_label(best)} at {best['mean']:.1f}% (n={best['n']})")
        proxy = max((r for r in mine if r["mode"] == "proxygrad"), key=lambda r: r["mean"], default=None)
        for other_mode in ("relu", "leaky"):
            other = max((r for r in mine if r["mode"] == other_mode), key=lambda r: r["mean"], default=None)
            if proxy is None or other is None:
                continue
            diff = proxy["mean"] - other["mean"]
            verdict = f"{'better' if diff > 0 else 'worse'} than" if diff else "level with"
            by = f" by {abs(diff):.1f} points" if diff else ""
            out.append(f"{arch}: ProxyGrad ({_label(proxy)}, {proxy['mean']:.1f}%) is {verdict} {_label(other)} "
                       f"({other['mean']:.1f}%){by}{_significance(proxy, other)}")
    return out


def _label(row: dict) -> str:
    return "relu" if row["mode"] == "relu" else f"{row['mode']} s={row['slope']:g}"


def _significance(a: dict, b: dict) -> str:
    if a["n"] < 2 or b["n"] < 2:
        return " (one seed per side: no test)"
    from scipy.stats import ttest_ind_from_stats

    if a["std"] == 0 and b["std"] == 0:
        return " (no spread over seeds)"
    p = ttest_ind_from_stats(a["mean"], a["std"], a["n"], b["mean"], b["std"], b["n"], equal_var=False).pvalue
    return f" (Welch t-test p = {p:.2g}{', not significant at 0.05' if p >= 0.05 else ''})"


def table_figure(rows: list[dict], dataset: str):
    """Bars: mean test accuracy per setting with the std as error bars, one panel per architecture; the paper's
    values as black diamonds where known."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    archs = list(dict.fromkeys(r["arch"] for r in rows))
    figure = Figure(figsize=(4.2 * len(archs) + 0.6, 3.8))
    axes = figure.subplots(1, len(archs), squeeze=False)[0]
    colors = {"proxygrad": "tab:blue", "leaky": "tab:orange", "relu": "tab:gray"}
    for ax, arch in zip(axes, archs):
        mine = [r for r in rows if r["arch"] == arch]
        xs = range(len(mine))
        ax.bar(xs, [r["mean"] for r in mine], yerr=[0 if math.isnan(r["std"]) else r["std"] for r in mine],
               color=[colors[r["mode"]] for r in mine], capsize=3)
        paper = [(x, r["paper_mean"]) for x, r in zip(xs, mine) if r["paper_mean"] is not None]
        if paper:
            ax.scatter(*zip(*paper), marker="D", color="black", zorder=3, s=18)
        ax.set_xticks(list(xs), [f"{r['slope']:g}" for r in mine], fontsize=8)
        ax.set_xlabel("negative slope s")
        values = [r["mean"] for r in mine if not math.isnan(r["mean"])] + [v for _, v in paper]
        if values:
            ax.set_ylim(max(0.0, min(values) - 10), min(100.0, max(values) + 5))
        ax.set_title(f"{ARCH_NAMES.get(arch, arch)} on {DATASET_NAMES.get(dataset, dataset)}", fontsize=9)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color=colors[m], label=MODE_NAMES[m]) for m in dict.fromkeys(r["mode"] for r in rows)]
    if any(r["paper_mean"] is not None for r in rows):
        handles.append(Line2D([], [], marker="D", color="black", linestyle="", markersize=5, label="paper"))
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    return figure


def write_table(config: TableConfig, out: Path, *, seconds: float = 0.0) -> dict:
    """Collect the finished cells under ``out`` and write ``table.csv``, ``table.png``, ``table.txt`` and
    ``results.json``; returns the results (rows, missing cells, findings, text)."""
    from ..report.files import versions, write_bytes, write_csv, write_figure, write_json

    done, missing = collect(config, out)
    rows = summarize(config, done)
    dataset = config.base.data.dataset
    text = format_table(rows, dataset)
    write_csv(out / "table.csv", rows)
    write_bytes(out / "table.txt", (text + "\n").encode())
    if done:
        write_figure(out / "table.png", table_figure(rows, dataset))
    results = {"settings": {"base": config.base.to_dict(), "archs": list(config.archs),
                            "settings": [list(s) for s in config.settings], "seeds": list(config.seeds)},
               "rows": rows, "cells": done, "missing": missing, "findings": findings(rows), "text": text,
               "seconds": seconds, "versions": versions()}
    write_json(out / "results.json", results)
    return results


def run_table(config: TableConfig, out: str | Path, *, collect_only: bool = False, sweep: bool = False,
              env: dist.DistEnv | None = None, device: str | None = None, workers: int = 0,
              progress: bool = True) -> dict | None:
    """Train the missing cells (unless ``collect_only``) and write the table. In sweep mode a process writes the
    table only when every cell is finished (otherwise it returns None); data parallel, rank 0 writes it."""
    start = time.perf_counter()
    out = Path(out)
    if not collect_only:
        run_cells(config, out, env=env, sweep=sweep, device=device, workers=workers, progress=progress)
    if sweep and collect(config, out)[1]:
        return None
    if env is not None and not env.is_main and not sweep:
        return None
    return write_table(config, out, seconds=time.perf_counter() - start)
