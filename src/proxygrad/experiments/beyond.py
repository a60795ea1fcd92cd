"""ProxyGrad beyond ReLU: smooth activations (GELU, SiLU, Mish, ELU, Hardswish) and max pooling, measured.

Sections (each a list of cells; a cell renders every class x seed from the same starts with one method and
records the ORIGINAL network's class logit after each of ``steps`` steps):

- ``smooth``: the tiny GELU/SiLU/... networks of :mod:`proxygrad.models.tiny`, the plain gradient vs every
  smooth proxy variant at every slope.
- ``pooling``: small ReLU CNNs with max pooling: the plain gradient, the pooling proxy (softmax at each
  temperature, share at each share), ProxyGrad on the ReLUs, and both. With ``exact``, the exact maximum
  of every class logit over [-1, 1]^(1x8x8) by MILP (:mod:`proxygrad.exact`) gives the optimality gap.
- ``model`` (optional, e.g. ResNet18 with ImageNet weights on a GPU): the paper's recipe (lr 25, its blur and
  rotation) with ProxyGrad on the rectifiers, with and without the pooling proxy.

A patched proxy copy of the network computes the gradients (its forward is bit-identical to the original's);
every final value is recomputed by the original network and the largest difference is recorded. Cells and
exact maxima are appended to ``cells.jsonl`` as they finish: a killed run restarted on the same run directory
skips them. Outputs: ``smooth.csv``, ``pooling.csv``, ``exact.csv``, ``model.csv``, ``smooth.png``,
``smooth_gain.png``, ``pooling.png``, ``results.json``.
"""
from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from ..am import RenderConfig, render
from ..am.objectives import class_logit, target_class
from ..am.presets import PRESETS as REGULARIZATIONS
from ..am.presets import preset as regularization_preset
from ..am.render import proxy_network
from ..am.runtime import cpu_threads, deterministic_cpu
from ..models import LoadedModel, load
from ..models.tiny import POOLING_NETWORKS, RECIPES, SMOOTH_NETWORKS, load_tiny
from ..report.files import versions, write_csv, write_figure, write_json
from ..report.rows import ResultRows, cell_key
from ..surrogates import patched, pooling, smooth
from ..am.api import class_objectives


@dataclass(frozen=True)
class BeyondConfig:
    """What to measure. Slopes, temperatures and shares are the proxies' parameters (see docs/proxies.md)."""

    networks: tuple[str, ...] = SMOOTH_NETWORKS
    variants: tuple[str, ...] = smooth.VARIANTS
    slopes: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    steps: tuple[int, ...] = (10, 100, 500)
    classes: tuple[int, ...] = tuple(range(10))
    seeds: tuple[int, ...] = (0, 1)
    regularization: str = "none"
    pool_networks: tuple[str, ...] = POOLING_NETWORKS
    temperatures: tuple[float, ...] = (0.1, 0.5, 2.0)
    shares: tuple[float, ...] = (0.05, 0.2)
    rectifier_slope: float = 0.1
    exact: bool = True
    exact_time_limit: float = 60.0
    model: str | None = None
    weights: str | None = None
    model_classes: tuple[str, ...] = ()
    model_steps: tuple[int, ...] = (10, 100, 500)
    model_slope: float = 0.075
    model_temperature: float = 0.5
    model_lr: float | None = 25.0
    model_regularization: str = "paper"
    batch_size: int = 64
    device: str | None = None


PRESETS = {
    "full": BeyondConfig(),
    "quick": BeyondConfig(networks=("convnext-gelu", "resnet-silu"), variants=("floor", "add"), slopes=(0.1,),
                          steps=(10, 100), classes=(0, 3, 5, 8), seeds=(0,), pool_networks=("poolcnn-a",),
                          temperatures=(0.5,), shares=(0.2,), exact_time_limit=10.0),
    "paper": BeyondConfig(networks=(), pool_networks=(), model="resnet18", weights="IMAGENET1K_V1",
                          model_classes=tuple(str(i) for i in range(0, 1000, 100))),
}


def preset(name: str, **changes) -> BeyondConfig:
    """A named configuration (full: every tiny network, 20-40 minutes on 2 CPU cores; quick: a minute;
    paper: ResNet18 with ImageNet weights, for a GPU) with some fields changed (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown beyond preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


def validate(config: BeyondConfig) -> None:
    """Everything that can be checked before any work starts."""
    for name in config.networks:
        if name not in SMOOTH_NETWORKS:
            raise ValueError(f"unknown smooth network {name!r}; valid: {', '.join(SMOOTH_NETWORKS)}")
    for name in config.pool_networks:
        if name not in POOLING_NETWORKS:
            raise ValueError(f"unknown pooling network {name!r}; valid: {', '.join(POOLING_NETWORKS)}")
    if not set(config.variants) <= set(smooth.VARIANTS) or not config.variants:
        raise ValueError(f"variants must be among {smooth.VARIANTS}, got {config.variants}")
    for value in (*config.slopes, *config.shares, config.rectifier_slope, config.model_slope):
        if not 0 <= value <= 1:
            raise ValueError(f"slope/share {value} is out of range: use values in [0, 1]")
    for value in (*config.temperatures, config.model_temperature):
        pooling.check_proxy("softmax", value, 0.0)
    if not config.seeds or any(s < 1 for s in (*config.steps, *config.model_steps)) or not config.steps:
        raise ValueError("at least one seed and step counts >= 1 are needed")
    if any(not 0 <= c < 10 for c in config.classes) or not config.classes:
        raise ValueError(f"classes of the digits networks must be in 0..9, got {config.classes}")
    for name in (config.regularization, config.model_regularization):
        if name not in REGULARIZATIONS:
            raise ValueError(f"unknown regularization {name!r}; valid: {', '.join(REGULARIZATIONS)}")
    if not config.exact_time_limit > 0:
        raise ValueError(f"exact_time_limit must be > 0 seconds, got {config.exact_time_limit}")


# ---- methods ---------------------------------------------------------------------------------------------------
def method(rectifiers: float | None = None, smooth_variant: str | None = None, smooth_slope: float = 0.0,
           pool_variant: str | None = None, pool_value: float = 0.0) -> dict:
    """A method as JSON-friendly settings; all None: the plain gradient."""
    return {"rectifiers": rectifiers, "smooth": smooth_variant, "smooth_slope": smooth_slope,
            "pooling": pool_variant, "pool_value": pool_value}


PLAIN = method()


def label(m: dict) -> str:
    """Short text of a method, e.g. "plain", "floor s=0.1", "proxygrad s=0.1 + softmax t=0.5"."""
    parts = []
    if m["rectifiers"] is not None:
        parts.append(f"proxygrad s={m['rectifiers']:g}")
    if m["smooth"] is not None:
        parts.append(f"{m['smooth']} s={m['smooth_slope']:g}")
    if m["pooling"] is not None:
        parts.append(f"{m['pooling']} {'t' if m['pooling'] == 'softmax' else 's'}={m['pool_value']:g}")
    return " + ".join(parts) or "plain"


def patch_arguments(m: dict) -> dict | None:
    """Keyword arguments of ``patched`` for method ``m`` (None for the plain gradient)."""
    kinds = [k for k in ("rectifiers", "smooth", "pooling") if m[k] is not None]
    if not kinds:
        return None
    args = {"mode": "proxygrad", "slope": m["rectifiers"] or 0.0, "kinds": tuple(kinds)}
    if m["smooth"] is not None:
        args.update(smooth_variant=m["smooth"], smooth_slope=m["smooth_slope"])
    if m["pooling"] == "softmax":
        args.update(pool_variant="softmax", pool_temperature=m["pool_value"])
    elif m["pooling"] == "share":
        args.update(pool_variant="share", pool_share=m["pool_value"])
    return args


def smooth_methods(config: BeyondConfig) -> list[dict]:
    return [PLAIN] + [method(smooth_variant=v, smooth_slope=s) for v in config.variants for s in config.slopes]


def pool_methods(config: BeyondConfig) -> list[dict]:
    pools = [("softmax", t) for t in config.temperatures] + [("share", s) for s in config.shares]
    r = config.rectifier_slope
    return ([PLAIN] + [method(pool_variant=v, pool_value=p) for v, p in pools] + [method(rectifiers=r)]
            + [method(rectifiers=r, pool_variant=v, pool_value=p) for v, p in pools])


def model_methods(config: BeyondConfig) -> list[dict]:
    s, t = config.model_slope, config.model_temperature
    return [PLAIN, method(rectifiers=s), method(pool_variant="softmax", pool_value=t),
            method(rectifiers=s, pool_variant="softmax", pool_value=t),
            method(rectifiers=s, pool_variant="share", pool_value=s)]


# ---- one cell ----------------------------------------------------------------------------------------------
def render_cell(loaded: LoadedModel, objectives, seeds: Sequence[int], m: dict, steps: Sequence[int],
                regularization: str, lr: float | None = None, batch_size: int = 64, device=None) -> dict:
    """Render objectives x seeds with method ``m``; the original network's values after each of ``steps``.

    Returns {"activation": {steps: [value per image]}, "check": largest |proxy-copy score - original score|
    of the final images, "calls": what the patch changed per kind, "seconds"}.
    """
    jobs = [(o, s) for o in objectives for s in seeds]
    config = RenderConfig(method="relu", slope=0.0, steps=max(steps), lr=lr, trace_every=math.gcd(*steps),
                          regularization=regularization_preset(regularization), batch_size=batch_size,
                          progress=False)
    proxy = proxy_network(loaded.model)
    args = patch_arguments(m)
    with (patched(proxy, **args) if args else contextlib.nullcontext()) as record:
        result = render(proxy, loaded.spec, [o for o, _ in jobs], [s for _, s in jobs], config, device=device)
    x = result.images.to(next(loaded.model.parameters()).device)
    # as render scores (oneDNN off, same intra-op threads): bit-identical on the CPU
    with torch.no_grad(), deterministic_cpu(x.device.type == "cpu"), cpu_threads(x.device, x.numel()):
        logits = loaded.model(loaded.spec.to_model_input(x)).cpu()
    targets = [target_class(o) for o, _ in jobs]
    if None in targets:
        raise ValueError("the beyond experiment measures class logits: every objective must name a class")
    original = logits.flatten(1).gather(1, torch.tensor(targets)[:, None])[:, 0]
    return {"activation": {str(n): result.trace[:, result.trace_steps.index(n)].tolist() for n in steps},
            "check": float((original - result.activation).abs().max()),
            "calls": record.by_kind() if record is not None else {}, "seconds": result.seconds}


# ---- sections ----------------------------------------------------------------------------------------------
def _digit_objectives(classes: Sequence[int]):
    return [class_logit(int(c), f"class:{c}") for c in classes]


def run_cells(rows: ResultRows, section: str, loaded: LoadedModel, objectives, methods: list[dict],
              config: BeyondConfig, steps, regularization: str, lr=None, bar=None) -> None:
    """Render every method not yet in ``rows`` and append it."""
    for m in methods:
        key = cell_key({"section": section, "network": loaded.name, "method": m, "steps": list(steps),
                        "regularization": regularization, "seeds": list(config.seeds),
                        "objectives": [o.name for o in objectives]})
        if not rows.done(key):
            out = render_cell(loaded, objectives, config.seeds, m, steps, regularization, lr, config.batch_size,
                              config.device)
            rows.append(key, section=section, network=loaded.name, method=m, label=label(m),
                        objectives=[o.name for o in objectives], seeds=list(config.seeds), **out)
        if bar is not None:
            bar.update(1)


def exact_maxima(rows: ResultRows, loaded: LoadedModel, classes: Sequence[int], time_limit: float) -> list[dict]:
    """The exact maximum of each class logit over [-1, 1]^input by MILP; cached in ``rows``."""
    from ..exact.milp import maximize

    out = []
    shape = (loaded.spec.channels, *loaded.spec.size)
    for c in classes:
        key = cell_key({"section": "exact", "network": loaded.name, "class": int(c), "time_limit": time_limit})
        if not rows.done(key):
            result = maximize(loaded.model, shape, output=int(c), time_limit=time_limit)
            rows.append(key, section="exact", network=loaded.name, objective=f"class:{c}", value=result.value,
                        bound=result.bound, optimal=result.optimal, seconds=result.seconds,
                        binaries=result.binaries, status=result.status)
        out.append(rows.get(key))
    return out


def exact_available() -> bool:
    """Whether ``proxygrad.exact`` (the MILP of the exact-optimum issue) can be imported."""
    try:
        from ..exact.milp import maximize  # noqa: F401
    except ImportError:
        return False
    return True


# ---- summaries ---------------------------------------------------------------------------------------------
def summarize(rows: ResultRows, section: str, exact: dict | None = None) -> list[dict]:
    """One row per (network, method, step count): mean, std and the per-image ``values``, the paired comparison
    with the plain gradient (mean difference, share of images where the method is higher, gain in %), and with
    ``exact`` ({(network, objective): exact row}) over the proved maxima the mean gap (exact - reached, logit
    units) and mean relative gap (``proxygrad.exact.optimality_gap``), the share of images within 1 % of the
    maximum, and ``gap_upper_bound``: the mean of (MILP bound - reached) over every
    image, an upper bound on the mean gap that holds also where the MILP hit its time limit."""
    cells = [r for r in rows if r.get("section") == section]
    plain = {r["network"]: r for r in cells if r["method"] == PLAIN}
    table = []
    for cell in cells:
        base = plain.get(cell["network"])
        for n, values in cell["activation"].items():
            row = {"network": cell["network"], "method": cell["label"], "steps": int(n),
                   "mean": statistics.fmean(values), "std": statistics.pstdev(values), "values": values}
            if base is not None:
                diffs = [a - b for a, b in zip(values, base["activation"][n])]
                row.update(vs_plain=statistics.fmean(diffs), higher_share=sum(d > 1e-6 for d in diffs) / len(diffs),
                           gain_pct=100 * statistics.fmean(diffs) / abs(statistics.fmean(base["activation"][n])))
            if exact is not None:
                row.update(_gap(cell, values, exact))
            table.append(row)
    return table


def _gap(cell: dict, values: list[float], exact: dict) -> dict:
    from ..exact import optimality_gap

    objectives = [o for o in cell["objectives"] for _ in cell["seeds"]]
    pairs = [(exact[(cell["network"], o)], v) for o, v in zip(objectives, values) if (cell["network"], o) in exact]
    proved = [(e["value"], v) for e, v in pairs if e["optimal"]]
    upper = statistics.fmean(e["bound"] - v for e, v in pairs) if pairs else float("nan")
    if not proved:
        return {"gap": float("nan"), "rel_gap": float("nan"), "within_1pct": float("nan"), "proved": 0,
                "gap_upper_bound": upper}
    return {"gap": statistics.fmean(opt - v for opt, v in proved),
            "rel_gap": statistics.fmean(optimality_gap(opt, v) for opt, v in proved),
            "within_1pct": sum(v >= opt - 0.01 * abs(opt) for opt, v in proved) / len(proved),
            "proved": len(proved), "gap_upper_bound": upper}


def best_default(table: list[dict]) -> dict | None:
    """The smooth proxy with the highest mean gain over plain (in %), averaged over networks and step counts."""
    gains: dict[str, list[float]] = {}
    for row in table:
        if row["method"] != "plain" and "gain_pct" in row:
            gains.setdefault(row["method"], []).append(row["gain_pct"])
    if not gains:
        return None
    name = max(gains, key=lambda k: statistics.fmean(gains[k]))
    return {"method": name, "mean_gain_pct": statistics.fmean(gains[name]), "cells": len(gains[name])}


def _verdict(best: dict, base: dict) -> str:
    if best["mean"] <= base["mean"]:
        return "does NOT help"
    return "helps" if best["higher"] > 0.5 else "helps on average, but on at most half of the images"


def _compare(title: str, panel: list[dict], baseline: str, candidates) -> str | None:
    """One sentence: the best of ``candidates`` (a filter on method names) against method ``baseline``."""
    base = next((r for r in panel if r["method"] == baseline), None)
    others = [r for r in panel if r["method"] != baseline and candidates(r["method"])]
    if base is None or not others:
        return None
    best = max(others, key=lambda r: r["mean"])
    diffs = [a - b for a, b in zip(best["values"], base["values"])]
    best = {**best, "higher": sum(d > 1e-6 for d in diffs) / len(diffs)}
    gain = 100 * (best["mean"] - base["mean"]) / abs(base["mean"]) if base["mean"] else float("nan")
    gap = (f"; optimality gap {100 * best['rel_gap']:.1f}% vs {100 * base['rel_gap']:.1f}% of the maximum"
           if math.isfinite(best.get("rel_gap", float("nan"))) and math.isfinite(base.get("rel_gap", float("nan")))
           else "")
    return (f"{title}: best {best['method']} {best['mean']:.3g} vs {baseline} {base['mean']:.3g} ({gain:+.1f}%, "
            f"higher on {100 * best['higher']:.0f}% of the images): {_verdict(best, base)}{gap}.")


def findings(smooth_table: list[dict], pool_table: list[dict], model_table: list[dict]) -> list[str]:
    """Plain sentences, per network and step count: the best smooth proxy against the plain gradient; the best
    pooling proxy against plain, and on top of ProxyGrad against ProxyGrad alone; or that none helps."""
    lines = []
    for section, table in (("smooth", smooth_table), ("pooling", pool_table), ("model", model_table)):
        for network, steps in sorted({(r["network"], r["steps"]) for r in table}):
            panel = [r for r in table if r["network"] == network and r["steps"] == steps]
            title = f"{section}, {network}, {steps} steps"
            if section == "smooth":
                lines.append(_compare(title, panel, "plain", lambda m: True))
                continue
            lines.append(_compare(title + ", pooling proxy", panel, "plain", lambda m: "proxygrad" not in m))
            rectifier = next((r["method"] for r in panel if r["method"].startswith("proxygrad") and "+" not in
                              r["method"]), None)
            if rectifier is not None:
                lines.append(_compare(title + ", pooling proxy on top of ProxyGrad", panel, rectifier,
                                      lambda m, r=rectifier: m.startswith(r + " + ")))
    pick = best_default(smooth_table)
    if pick is not None:
        verdict = "" if pick["mean_gain_pct"] > 0 else " -- no smooth proxy beats the plain gradient on average"
        lines.append(f"smooth proxies, best on average: {pick['method']} (mean gain {pick['mean_gain_pct']:+.1f}% "
                     f"over {pick['cells']} network x step cells){verdict}.")
    return [line for line in lines if line]


# ---- figures -----------------------------------------------------------------------------------------------
def smooth_figure(table: list[dict], config: BeyondConfig) -> Figure:
    """Mean original-network logit vs slope, one line per variant, dashed: plain; rows: steps, columns: networks."""
    networks = [n for n in dict.fromkeys(r["network"] for r in table)]
    figure = Figure(figsize=(2.8 * max(1, len(networks)), 2.4 * len(config.steps)))
    axes = np.asarray(figure.subplots(len(config.steps), max(1, len(networks)), squeeze=False))
    for i, steps in enumerate(config.steps):
        for j, network in enumerate(networks):
            ax = axes[i, j]
            panel = [r for r in table if r["network"] == network and r["steps"] == steps]
            for variant in config.variants:
                points = sorted((float(r["method"].split("s=")[1]), r["mean"]) for r in panel
                                if r["method"].startswith(variant + " "))
                if points:
                    ax.plot(*zip(*points), marker="o", ms=3, label=variant)
            base = next((r for r in panel if r["method"] == "plain"), None)
            if base is not None:
                ax.axhline(base["mean"], color="gray", ls="--", lw=0.8, label="plain")
            ax.set_title(f"{network}, {steps} steps", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel("mean logit", fontsize=8)
            if i == len(config.steps) - 1:
                ax.set_xlabel("slope s", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    figure.tight_layout()
    return figure


def gain_figure(table: list[dict], config: BeyondConfig) -> Figure:
    """Gain over plain (%) vs slope per variant, mean over networks (band: min..max); one panel per step count."""
    figure = Figure(figsize=(3.6 * len(config.steps), 3.0))
    axes = figure.subplots(1, len(config.steps), squeeze=False)[0]
    for ax, steps in zip(axes, config.steps):
        for variant in config.variants:
            by_slope: dict[float, list[float]] = {}
            for r in table:
                if r["steps"] == steps and r["method"].startswith(variant + " ") and "gain_pct" in r:
                    by_slope.setdefault(float(r["method"].split("s=")[1]), []).append(r["gain_pct"])
            if by_slope:
                slopes = sorted(by_slope)
                mean = [statistics.fmean(by_slope[s]) for s in slopes]
                line, = ax.plot(slopes, mean, marker="o", ms=3, label=variant)
                ax.fill_between(slopes, [min(by_slope[s]) for s in slopes], [max(by_slope[s]) for s in slopes],
                                color=line.get_color(), alpha=0.12, lw=0)
        ax.axhline(0, color="gray", ls="--", lw=0.8)
        ax.set_title(f"{steps} steps", fontsize=9)
        ax.set_xlabel("slope s")
        ax.set_ylabel("gain over plain gradient (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _pool_style(name: str, colors: dict) -> dict:
    """Color per pooling setting (black: none), dashed when combined with ProxyGrad on the rectifiers."""
    parts = name.split(" + ")
    pool = next((p for p in parts if not p.startswith("proxygrad") and p != "plain"), "none")
    if pool not in colors:
        colors[pool] = "black" if pool == "none" else f"C{len([c for c in colors if c != 'none']) % 10}"
    return {"color": colors[pool], "ls": "--" if parts[0].startswith("proxygrad") else "-",
            "lw": 2.2 if name == "plain" else 1.2}


def pooling_figure(table: list[dict]) -> Figure:
    """Mean relative optimality gap in % (or mean logit, when no exact maxima) vs steps, one line per method;
    the color is the pooling proxy, dashed lines add ProxyGrad on the rectifiers."""
    networks = list(dict.fromkeys(r["network"] for r in table))
    figure = Figure(figsize=(5.0 * max(1, len(networks)), 3.8))
    axes = figure.subplots(1, max(1, len(networks)), squeeze=False)[0]
    colors: dict = {}
    for ax, network in zip(axes, networks):
        rows = [r for r in table if r["network"] == network]
        use_gap = all(math.isfinite(r.get("rel_gap", float("nan"))) for r in rows)
        for name in dict.fromkeys(r["method"] for r in rows):
            points = sorted((r["steps"], 100 * r["rel_gap"] if use_gap else r["mean"]) for r in rows
                            if r["method"] == name)
            ax.plot(*zip(*points), marker="o", ms=3, label=name, **_pool_style(name, colors))
        ax.set_xscale("log")
        ax.set_xlabel("steps")
        ax.set_ylabel("mean optimality gap (% of the maximum)" if use_gap else "mean logit")
        ax.set_title(network, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    figure.tight_layout()
    return figure


# ---- the whole run -----------------------------------------------------------------------------------------
def run_beyond(config: BeyondConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Run (or resume) every section into ``run_dir``; returns the results.json payload."""
    validate(config)
    run_dir = Path(run_dir)
    start = time.perf_counter()
    rows = ResultRows(run_dir / "cells.jsonl")
    use_exact = config.exact and bool(config.pool_networks) and exact_available()
    total = (len(config.networks) * len(smooth_methods(config)) + len(config.pool_networks) * len(pool_methods(config))
             + (len(model_methods(config)) if config.model else 0))
    objectives = _digit_objectives(config.classes)
    exact: dict = {}
    with tqdm(total=total, desc="beyond cells", disable=not progress) as bar:
        for name in config.networks:
            run_cells(rows, "smooth", load_tiny(name), objectives, smooth_methods(config), config, config.steps,
                      config.regularization, bar=bar)
        for name in config.pool_networks:
            loaded = load_tiny(name)
            if use_exact:
                exact.update({(loaded.name, r["objective"]): r for r in
                              exact_maxima(rows, loaded, config.classes, config.exact_time_limit)})
            run_cells(rows, "pooling", loaded, objectives, pool_methods(config), config, config.steps,
                      config.regularization, bar=bar)
        if config.model:
            loaded = load(config.model, weights=config.weights, device=config.device)
            model_objectives = class_objectives(config.model_classes or None, loaded.spec)
            run_cells(rows, "model", loaded, model_objectives, model_methods(config), config, config.model_steps,
                      config.model_regularization, lr=config.model_lr, bar=bar)
    return write_outputs(run_dir, rows, config, exact if use_exact else None, time.perf_counter() - start)


def write_outputs(run_dir: Path, rows: ResultRows, config: BeyondConfig, exact: dict | None, seconds: float) -> dict:
    """Tables, figures and results.json of a finished run."""
    smooth_table = summarize(rows, "smooth")
    pool_table = summarize(rows, "pooling", exact)
    model_table = summarize(rows, "model")
    files, tables = {}, []
    for name, table, title in (("smooth", smooth_table, "Smooth proxies (original network's class logit)"),
                               ("pooling", pool_table, "Max-pooling proxy (gap: exact maximum - reached)"),
                               ("model", model_table, "Model recipe with and without the pooling proxy")):
        if table:
            write_csv(run_dir / f"{name}.csv", table, _columns(table, drop=("values",)))
            tables.append({"title": title, "csv": f"{name}.csv"})
    if exact:
        rows_exact = list(exact.values())
        write_csv(run_dir / "exact.csv", rows_exact, _columns(rows_exact, drop=("key",)))
        tables.append({"title": "Exact maxima (MILP)", "csv": "exact.csv"})
    if smooth_table:
        files["Smooth proxies: logit vs slope"] = write_figure(run_dir / "smooth.png",
                                                               smooth_figure(smooth_table, config)).name
        files["Smooth proxies: gain over the plain gradient"] = write_figure(run_dir / "smooth_gain.png",
                                                                             gain_figure(smooth_table, config)).name
    if pool_table:
        files["Max-pooling proxy"] = write_figure(run_dir / "pooling.png", pooling_figure(pool_table)).name
    checks = [r["check"] for r in rows if "check" in r]
    payload = {"command": "beyond", "title": "ProxyGrad beyond ReLU: smooth activations and max pooling",
               "settings": {**asdict(config), "exact_used": exact is not None,
                            "networks_trained": {n: RECIPES[n].arch for n in (*config.networks, *config.pool_networks)}},
               "versions": versions(), "seconds": round(seconds, 3),
               "cell_seconds": round(sum(r.get("seconds", 0.0) for r in rows), 1),
               "files": files, "tables": tables,
               "findings": findings(smooth_table, pool_table, model_table)
               + ([] if exact is not None or not config.pool_networks else
                  ["pooling: no exact maxima (proxygrad.exact unavailable or exact=False): no optimality gaps."]),
               "default_smooth": best_default(smooth_table),
               "max_score_difference_proxy_vs_original": max(checks, default=0.0),
               "smooth": smooth_table, "pooling": pool_table, "model": model_table}
    write_json(run_dir / "results.json", payload)
    return payload


def _columns(rows: list[dict], drop: Sequence[str] = ()) -> list[str]:
    """Every key of ``rows`` in first-seen order, without ``drop``."""
    return [k for k in dict.fromkeys(k for row in rows for k in row) if k not in drop]
