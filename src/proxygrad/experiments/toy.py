"""The paper's Table 1 and Figure 1: gradient ascent on the white-image problems, whose optimum is known.

Every method runs through the project's one rendering loop (:func:`proxygrad.am.render`) on the problem
modules of :mod:`proxygrad.problems`, from the same random starts: ``plain`` (gradient ascent on the problem
as it is), ``leaky s`` (every rectifier a Leaky ReLU of slope s, forward and backward) and ``proxygrad s``
(forward unchanged, backward slope s). Scores are the ORIGINAL problem's values, reported as the fraction of
the exact optimum reached and the first step at which 99% of it is reached (the race of patterns).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..am import RenderConfig, class_logit, render
from ..am.init import initial_images
from ..models.spec import InputSpec
from ..problems import PAPER_P, PAPER_SLOPE, single_pixel, table1
from ..report.figures import image_grid
from ..report.files import versions, write_csv, write_figure, write_json
from ..report.html import write_report

PROBLEMS = ("f1", "f2", "f3", "conv")
METHODS = ("plain", "leaky", "proxygrad")
REACHED = 0.99


@dataclass(frozen=True)
class ToyConfig:
    """Settings of ``proxygrad toy``. Images are ``size`` x ``size``; starts are gray plus Gaussian noise of
    std ``init_sigma`` (clamped to [-1, 1]), one per seed; ``lr=None`` is the engine's default for the
    paper's normalized step (per-pixel step 25 / sqrt(3*224*224), about 0.064). ``slopes`` are the slopes of
    ``leaky`` and ``proxygrad``; ``s`` and ``p`` define the problems (the paper: s = 0.1, p = 0.2)."""

    size: int = 16
    steps: int = 300
    seeds: tuple[int, ...] = (0, 1, 2)
    problems: tuple[str, ...] = PROBLEMS
    methods: tuple[str, ...] = METHODS
    slopes: tuple[float, ...] = (0.05, 0.1, 0.3, 0.5)
    init_sigma: float = 0.5
    lr: float | None = None
    step_rule: str = "normalized"
    s: float = PAPER_SLOPE
    p: float = PAPER_P

    def validate(self) -> None:
        if not isinstance(self.size, int) or self.size < 2:
            raise ValueError(f"size must be an int >= 2 (pixels), got {self.size!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        for name, values, valid in (("problem", self.problems, PROBLEMS), ("method", self.methods, METHODS)):
            unknown = [v for v in values if v not in valid]
            if unknown or not values:
                raise ValueError(f"unknown {name}s {unknown or values}; valid: {', '.join(valid)}")
        if any(m != "plain" for m in self.methods) and not self.slopes:
            raise ValueError("leaky and proxygrad need at least one slope")
        table1(self.s, self.p)  # checks 0 <= s < p < 1


@dataclass
class ToyResult:
    """Per problem: the optimum, the start images (seeds, 1, H, W) and, per method label, the final images
    and the value trace (seeds, steps + 1); ``rows``: one dict per problem x method x seed."""

    config: ToyConfig
    optimum: dict[str, float]
    starts: dict[str, torch.Tensor]
    finals: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    traces: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def method_configs(config: ToyConfig) -> dict[str, RenderConfig]:
    """Label -> rendering settings: plain, then leaky and proxygrad at every slope (trace at every step)."""
    common = dict(steps=config.steps, lr=config.lr, step_rule=config.step_rule, init_sigma=config.init_sigma,
                  trace_every=1, progress=False)
    out = {}
    for method in config.methods:
        if method == "plain":
            out["plain"] = RenderConfig(method="relu", slope=0.0, **common)
        else:
            for slope in config.slopes:
                out[f"{method} s={slope:g}"] = RenderConfig(method=method, slope=slope, **common)
    return out


def steps_to_reach(trace: torch.Tensor, optimum: float, share: float = REACHED) -> int | None:
    """First step at which a value trace (T + 1,) reaches ``share`` of ``optimum`` (> 0); None if never."""
    hits = torch.nonzero(trace >= share * optimum - 1e-9 * abs(optimum))
    return int(hits[0, 0]) if len(hits) else None


def run_toy(config: ToyConfig, progress: bool = True) -> ToyResult:
    """Render every problem with every method from every seed; see :class:`ToyResult`."""
    config.validate()
    start = time.perf_counter()
    spec = InputSpec(1, (config.size, config.size), (0.5,), (0.5,))
    chosen = {name: problem for name, problem in table1(config.s, config.p).items() if name in config.problems}
    methods = method_configs(config)
    seeds = list(config.seeds)
    result = ToyResult(config, optimum={n: m.optimum(config.size, config.size) for n, m in chosen.items()},
                       starts={n: initial_images(spec, seeds, config.init_sigma, "cpu") for n in chosen})
    with tqdm(total=len(chosen) * len(methods), desc="toy", disable=not progress) as bar:
        for name, problem in chosen.items():
            result.finals[name], result.traces[name] = {}, {}
            for label, render_config in methods.items():
                rendered = render(problem, spec, [class_logit(0)] * len(seeds), seeds, render_config)
                result.finals[name][label] = rendered.images
                result.traces[name][label] = rendered.trace
                result.rows += _rows(name, label, render_config, seeds, rendered.trace, result.optimum[name])
                bar.update()
    result.seconds = time.perf_counter() - start
    return result


def _rows(problem: str, label: str, config: RenderConfig, seeds, trace: torch.Tensor, optimum: float) -> list[dict]:
    method = "plain" if config.method == "relu" else config.method
    return [{"problem": problem, "method": method, "slope": config.slope if method != "plain" else None,
             "label": label, "seed": seed, "optimum": optimum, "start_value": float(values[0]),
             "final_value": float(values[-1]), "fraction": float(values[-1]) / optimum,
             "steps_to_99": steps_to_reach(values, optimum)} for seed, values in zip(seeds, trace)]


def summary(result: ToyResult) -> list[dict]:
    """Per problem x method: mean and worst fraction of the optimum over seeds, how many seeds reached 99%,
    and the median steps those needed."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in result.rows:
        groups.setdefault((row["problem"], row["label"]), []).append(row)
    table = []
    for (problem, label), rows in groups.items():
        steps = [r["steps_to_99"] for r in rows if r["steps_to_99"] is not None]
        table.append({"problem": problem, "method": label, "optimum": round(rows[0]["optimum"], 6),
                      "mean_fraction": statistics.fmean(r["fraction"] for r in rows),
                      "worst_fraction": min(r["fraction"] for r in rows),
                      "seeds_at_99": f"{len(steps)}/{len(rows)}",
                      "median_steps_to_99": statistics.median(steps) if steps else None})
    return table


# ---- figures -------------------------------------------------------------------------------------------------
def table1_figure(result: ToyResult, seed_index: int = 0) -> Figure:
    """The paper's Table 1: one row per problem; the start image, then each method's final image (one seed),
    with the fraction of the optimum it reached; the last column is the exact optimum's image."""
    names = list(result.finals)
    size = result.config.size
    chosen = table1(result.config.s, result.config.p)
    columns = {"start": torch.stack([result.starts[n][seed_index] for n in names])}
    notes = {"start": [f"{_value(chosen[n], result.starts[n][seed_index]) / result.optimum[n]:.0%}" for n in names]}
    for label in result.finals[names[0]]:
        columns[label] = torch.stack([result.finals[n][label][seed_index] for n in names])
        notes[label] = [f"{float(result.traces[n][label][seed_index, -1]) / result.optimum[n]:.1%}" for n in names]
    columns["optimum"] = torch.stack([chosen[n].optimal_image(size, size) for n in names])
    notes["optimum"] = [f"{result.optimum[n]:.4g}" for n in names]
    return image_grid(columns, names, notes, cell_inches=1.2)


def _value(problem: torch.nn.Module, image: torch.Tensor) -> float:
    with torch.no_grad():
        return float(problem(image[None]))


def figure1(s: float = PAPER_SLOPE, p: float = PAPER_P) -> Figure:
    """The paper's Figure 1: f3 of a single pixel, LReLU_s(x) + LReLU_s(-p x) on [-1, 1], with its local
    maximum p - s at x = -1 and its global maximum 1 - s p at x = 1."""
    x = torch.linspace(-1, 1, 401)
    figure = Figure(figsize=(4.8, 3.2))
    ax = figure.subplots()
    ax.plot(x.numpy(), single_pixel(x, s, p).numpy(), color="black")
    ax.plot([-1], [p - s], "o", color="tab:blue", label=f"local maximum {p - s:.3g}")
    ax.plot([1], [1 - s * p], "o", color="tab:red", label=f"global maximum {1 - s * p:.3g}")
    ax.set_xlabel("pixel value x")
    ax.set_ylabel("f3(x)")
    ax.set_title(f"f3 for one pixel (s = {s:g}, p = {p:g})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def race_figure(result: ToyResult) -> Figure:
    """Fraction of the optimum vs step, one panel per problem, one line per method (mean over seeds)."""
    names = list(result.traces)
    slopes = list(result.config.slopes)
    figure = Figure(figsize=(3.4 * len(names) + 1.6, 3.2))
    axes = np.atleast_1d(figure.subplots(1, len(names), sharey=True))
    for ax, name in zip(axes, names):
        for (label, trace), config in zip(result.traces[name].items(), method_configs(result.config).values()):
            color = "black" if config.method == "relu" else _cmap(slopes.index(config.slope) / max(len(slopes) - 1, 1))
            style = {"relu": "-", "leaky": "--", "proxygrad": "-"}[config.method]
            ax.plot((trace / result.optimum[name]).mean(0).numpy(), style, color=color, label=label, lw=1.2)
        ax.axhline(REACHED, color="gray", lw=0.8, ls=":")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of the optimum (mean over seeds)")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.tight_layout()
    return figure


def _cmap(t: float):
    from matplotlib import colormaps

    return colormaps["viridis"](0.9 * t)


# ---- run directory -------------------------------------------------------------------------------------------
def findings(table: list[dict]) -> list[str]:
    """One plain sentence per problem: which methods reach 99% of the optimum from every start (median steps
    needed), and which fall short (mean fraction reached)."""
    lines = []
    for problem in dict.fromkeys(r["problem"] for r in table):
        rows = [r for r in table if r["problem"] == problem]
        every = [r for r in rows if r["seeds_at_99"].split("/")[0] == r["seeds_at_99"].split("/")[1]]
        done = [f"{r['method']} ({r['median_steps_to_99']:g} steps)" for r in every]
        stuck = [f"{r['method']} ({r['mean_fraction']:.0%})" for r in rows if r not in every]
        lines.append(f"{problem}: reach 99% of the optimum from every start: {', '.join(done) or 'none'}; "
                     f"fall short: {', '.join(stuck) or 'none'}")
    return lines


def write_toy(run_dir: str | Path, result: ToyResult) -> dict:
    """results.json, summary.csv, runs.csv, table1.png, figure1.png, race.png and report.html; returns the
    results.json payload."""
    run_dir = Path(run_dir)
    table = summary(result)
    write_csv(run_dir / "summary.csv", table)
    write_csv(run_dir / "runs.csv", result.rows)
    write_figure(run_dir / "table1.png", table1_figure(result))
    write_figure(run_dir / "figure1.png", figure1(result.config.s, result.config.p))
    write_figure(run_dir / "race.png", race_figure(result))
    payload = {"command": "toy", "title": "proxygrad toy: white-image problems (Table 1, Figure 1)",
               "findings": findings(table), "settings": asdict(result.config), "versions": versions(),
               "seconds": round(result.seconds, 3), "optimum": result.optimum, "summary": table, "runs": result.rows,
               "tables": [{"title": "Fraction of the optimum reached (mean over seeds)", "csv": "summary.csv"}],
               "files": {"Table 1": "table1.png", "Figure 1": "figure1.png", "Race of patterns": "race.png"}}
    write_json(run_dir / "results.json", payload)
    write_report(run_dir)
    return payload
