"""Tables, plot and verdicts of ``proxygrad compare`` from its measured rows (see compare.py).

A measured row holds a method's per-cell results (``cells``: class, seed, activation, on_target, transfer,
plausibility), its set metrics (``fid``, ``seed_consistency``) and its optimality-gap cells (``gap_cells``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from ..metrics import mean_ci, paired_comparison

ALPHA = 0.05


@dataclass(frozen=True)
class Metric:
    """``key`` in a cell (per-image metrics) or in the row (set metrics); ``higher``: higher is better."""

    key: str
    label: str
    higher: bool
    per_cell: bool
    source: str = "cells"


METRICS = {
    "activation": Metric("activation", "activation (original network)", True, True),
    "target_share": Metric("on_target", "classified as target", True, True),
    "transferability": Metric("transfer", "transferability (second network)", True, True),
    "plausibility": Metric("plausibility", "plausibility (cosine to real)", True, True),
    "fid": Metric("fid", "FID to real images of the class", False, False),
    "seed_consistency": Metric("seed_consistency", "seed consistency (pixel correlation)", True, False),
    "optimality_gap": Metric("gap", "optimality gap (exact MILP maximum)", False, True, "gap_cells"),
}


def cell_values(row: dict, metric: Metric) -> dict[tuple[int, int], float]:
    """{(class, seed): value} of a per-cell metric (empty when the method has none)."""
    cells = row.get(metric.source) or []
    return {(c["class"], c["seed"]): c[metric.key] for c in cells if c.get(metric.key) is not None}


def _per_seed(values: dict[tuple[int, int], float]) -> list[float]:
    seeds: dict[int, list[float]] = {}
    for (_, seed), value in values.items():
        seeds.setdefault(seed, []).append(value)
    return [float(np.mean(v)) for _, v in sorted(seeds.items())]


def summary_rows(measured: list[dict], seeds) -> list[dict]:
    """One row per method: mean and 95 % t interval over seeds (of the per-seed mean over classes) for the
    per-cell metrics; the value for the set metrics (FID, seed consistency)."""
    table = []
    for row in measured:
        out = {"method": row["method"], "surrogate": row["surrogate"], "recipe": row["recipe"],
               "parameter": row["parameter"], "ascent": row["ascent"]}
        for name, metric in METRICS.items():
            if metric.per_cell:
                values = cell_values(row, metric)
                ci = mean_ci(_per_seed(values)) if values else None
                out[name] = None if ci is None else ci.mean
                out[f"{name}_low"] = None if ci is None or not math.isfinite(ci.low) else ci.low
                out[f"{name}_high"] = None if ci is None or not math.isfinite(ci.high) else ci.high
            else:
                out[name] = row.get(metric.key)
        out["seconds"] = round(row["seconds"], 2)
        table.append(out)
    return table


def metric_figure(table: list[dict]) -> Figure:
    """One panel per metric with data: a bar per method (95 % CI as error bars), coloured by recipe."""
    names = [n for n in METRICS if any(r.get(n) is not None for r in table)]
    recipes = list(dict.fromkeys(r["recipe"] for r in table))
    colours = {r: f"C{i}" for i, r in enumerate(recipes)}
    columns = min(3, max(1, len(names)))
    rows = math.ceil(len(names) / columns) or 1
    figure = Figure(figsize=(5.2 * columns, 0.28 * len(table) * rows + 1.5 * rows))
    axes = np.asarray(figure.subplots(rows, columns, squeeze=False)).ravel()
    labels = [r["method"] + ("" if r["ascent"] else " (not ascent)") for r in table]
    y = np.arange(len(table))
    for ax, name in zip(axes, names):
        metric = METRICS[name]
        values = [r.get(name) if r.get(name) is not None else np.nan for r in table]
        low = [v - r[f"{name}_low"] if r.get(f"{name}_low") is not None else 0 for v, r in zip(values, table)]
        high = [r[f"{name}_high"] - v if r.get(f"{name}_high") is not None else 0 for v, r in zip(values, table)]
        ax.barh(y, values, xerr=[low, high] if metric.per_cell else None, color=[colours[r["recipe"]] for r in table],
                capsize=2)
        ax.set_yticks(y, [""] * len(y))  # method names on the first column only (below)
        ax.invert_yaxis()
        ax.set_title(f"{metric.label} ({'higher' if metric.higher else 'lower'} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    handles = [_patch(colours[r]) for r in recipes]
    figure.legend(handles, [f"recipe {r}" for r in recipes], loc="lower right", fontsize=8)
    for ax in axes[::columns]:
        ax.set_yticks(y, labels, fontsize=7)
    figure.tight_layout()
    return figure


def _patch(colour: str):
    from matplotlib.patches import Patch

    return Patch(color=colour)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"


def _paired(a: dict, b: dict, metric: Metric):
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        return None
    return paired_comparison({k: a[k] for k in keys}, {k: b[k] for k in keys}, higher_is_better=metric.higher)


def _best_line(name: str, metric: Metric, table: list[dict], measured: dict[str, dict]) -> str | None:
    ranked = sorted((r for r in table if r.get(name) is not None), key=lambda r: r[name], reverse=metric.higher)
    if not ranked:
        return None
    best = ranked[0]
    line = f"{metric.label}: best is {best['method']} ({_fmt(best[name])})"
    if not best["ascent"]:
        line += " -- guided backpropagation, which is not an ascent direction"
    if len(ranked) > 1:
        second = ranked[1]
        line += f"; runner-up {second['method']} ({_fmt(second[name])})"
        if metric.per_cell:
            test = _paired(cell_values(measured[best["method"]], metric),
                           cell_values(measured[second["method"]], metric), metric)
            if test is not None:
                verdict = "significant" if test.p_value < ALPHA else "not significant"
                line += (f", difference {_fmt(test.mean_difference)} [{_fmt(test.low)}, {_fmt(test.high)}] on "
                         f"{test.n} paired cells, {test.wins} wins / {test.losses} losses, p = {test.p_value:.2g} "
                         f"({verdict})")
    return line + "."


def proxygrad_lines(table: list[dict], measured: dict[str, dict]) -> list[str]:
    """ProxyGrad vs ReLU within each recipe, per per-cell metric: helps / hurts / no significant difference."""
    lines = []
    for relu in (r for r in table if r["surrogate"] == "relu"):
        for proxy in (r for r in table if r["surrogate"] == "proxygrad" and r["recipe"] == relu["recipe"]):
            helps, hurts, same = [], [], []
            for name, metric in METRICS.items():
                if not metric.per_cell:
                    continue
                test = _paired(cell_values(measured[proxy["method"]], metric),
                               cell_values(measured[relu["method"]], metric), metric)
                if test is None:
                    continue
                text = f"{name} {_fmt(test.mean_difference)} (p = {test.p_value:.2g})"
                better = test.wins > test.losses
                (helps if test.p_value < ALPHA and better else hurts if test.p_value < ALPHA else same).append(text)
            parts = [f"helps on {', '.join(helps)}" if helps else "",
                     f"hurts on {', '.join(hurts)}" if hurts else "",
                     f"no significant difference on {', '.join(same)}" if same else ""]
            verdict = "; ".join(p for p in parts if p)
            summary = "ProxyGrad does not help here" if not helps else "ProxyGrad helps here"
            lines.append(f"{proxy['method']} vs {relu['method']}: {verdict}. {summary}.")
    return lines


def identical_lines(measured: list[dict]) -> list[str]:
    """Methods of one recipe whose every cell ended at exactly the same activation as another's (e.g. the
    redirected rules equal ReLU when no image ever had an all-zero gradient at a layer)."""
    lines, seen = [], {}
    for row in measured:
        signature = (row["recipe"], tuple((c["class"], c["seed"], c["activation"]) for c in row["cells"]))
        if signature in seen:
            lines.append(f"{row['method']} gave exactly the same results as {seen[signature]}: its backward rule "
                         "never differed from that method's on these images.")
        else:
            seen[signature] = row["method"]
    return lines


def findings(measured: list[dict], table: list[dict], gap_network: str | None = None) -> list[str]:
    """Plain verdicts: the best method per metric (and by how much), ProxyGrad vs ReLU per recipe, caveats.
    ``gap_network``: where the optimality gap was measured (a network of ``proxygrad gap``, or "model")."""
    by_label = {row["method"]: row for row in measured}
    lines = [line for name, metric in METRICS.items() if (line := _best_line(name, metric, table, by_label))]
    lines += proxygrad_lines(table, by_label)
    lines += identical_lines(measured)
    if any(row["recipe"] == "maco" for row in measured):
        lines.append("MACO's images are scored whole, at the model's size, while it optimizes crops of 0.20-0.25 of "
                     "its image side: on small models that costs it most of its activation.")
    if all(r.get("plausibility") is None for r in table):
        lines.append("Plausibility and FID were not measured: no real images (pass --real FOLDER with one "
                     "subfolder per class).")
    if gap_network not in (None, "model"):
        lines.append(f"The optimality gap is measured on proxygrad gap's {gap_network} network (8x8 digits, where the "
                     "MILP finds exact maxima), not on the compared model (--exact-network model tries that).")
    bounded = sorted({c["class"] for row in measured for c in row.get("gap_cells") or [] if not c.get("exact_optimal", True)})
    if bounded:
        lines.append(f"The optimality gap of class(es) {bounded} is measured against an upper bound (the MILP stopped "
                     "at its time limit), so it overstates the true gap there.")
    counts = [row.get("fid_images_per_class") for row in measured if row.get("fid_images_per_class")]
    if counts:
        lines.append(f"FID uses {min(counts)} visualization(s) per class: it is biased upward with so few images; "
                     "compare methods with each other, not with published FIDs.")
    if any(not r["ascent"] for r in table):
        lines.append("Guided backpropagation is listed for completeness: its update is not an ascent direction "
                     "of the objective.")
    return lines
