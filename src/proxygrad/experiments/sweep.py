"""The paper's activation-maximization study (Section 5: Figure 2, Table 3, Figure 3) for any model.

Cells: regularization x step count x (relu, and leaky / proxygrad at every non-zero slope, and one cell for
each other backward surrogate: redirected, redirected-captum, softgate at ``temperature``, guided). Every cell
uses the sweep's parametrization (pixel, fourier or maco) and step rule; proxygrad's cells also proxy the
sweep's ``kinds`` (rectifiers by default; smooth activations, max pooling). A cell renders every class x seed
from the same starts and records, per image, the ORIGINAL network's activation (the class logit) and its
predicted class. Cells are appended to ``cells.jsonl`` as they finish, so a killed sweep
restarted on the same run directory skips the finished ones. The s = 0 point of both lines is the relu cell
(the paper's baseline). The gallery renders chosen classes with each method (leaky / proxygrad at each
gallery slope).
"""
from __future__ import annotations

import csv
import io
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

from ..am import RenderConfig
from ..am.distributed import barrier, local_device, render_sharded, world
from ..am.api import class_objectives
from ..am.config import COMPILE_MODES, PROXY_OPTIONS
from ..am.objectives import target_class
from ..am.parametrizations import PARAMETRIZATIONS
from ..am.presets import PRESETS as REGULARIZATIONS, preset as regularization_preset
from ..am.recipes import RECIPES
from ..models import LoadedModel, load
from ..report.figures import image_grid
from ..report.files import read_png, versions, write_csv, write_figure, write_json, write_png
from ..report.rows import ResultRows, cell_key
from ..report.visualization import NOT_ASCENT_NOTE, RECTIFIERS_ONLY, SLOPED, kinds_suffix, method_label
from ..surrogates import MODES, is_ascent
from ..surrogates.gates import check_temperature
from ..surrogates.patch import check_kinds
from ..surrogates.patch import proxy_settings as patch_proxy_settings

DEFAULT_SLOPES = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
METHODS = ("relu", "leaky", "proxygrad")  # the default; any of MODES may be swept
DEFAULT_STEP_RULE = "normalized"
OTHER_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink")
# the regularization each parametrization's recipe uses: the gallery's when none is named
GALLERY_REGULARIZATION = {r.parametrization: r.regularization for r in RECIPES.values()}
PAPER_GALLERY = ("pelican", "lion", "analog clock", "bakery", "bucket", "poncho", "pool table", "cucumber")


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep. ``classes`` are class names or indices (None: every class of the model). ``methods``:
    any of the backward surrogates (MODES); ``slopes`` apply to leaky and proxygrad, ``temperature`` to
    softgate. ``parametrization``: pixel, fourier or maco (the last two need regularizations that do not act on
    pixels: none, lucent, maco). ``gallery_regularization`` None: that of the parametrization's recipe
    (pixel: paper, fourier: lucent, maco: maco). ``compile``: False, True (torch.compile's default mode) or a
    mode name (see ``RenderConfig``); values agree with eager ones to rounding, so a compiled cell is keyed apart.
    ``kinds`` and the per-kind settings (``smooth_variant``, ``smooth_slope``, ``pool_variant``,
    ``pool_temperature``, ``pool_share``; None: ``patched``'s defaults) are RenderConfig's and apply to method
    proxygrad only: other kinds than rectifiers allow relu (the original network) and proxygrad only."""

    model: str | None = None
    weights: str | None = None
    classes: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = METHODS
    slopes: tuple[float, ...] = DEFAULT_SLOPES
    steps: tuple[int, ...] = (10, 500)
    regularizations: tuple[str, ...] = ("none", "paper")
    lr: float | None = None
    init_sigma: float = 0.1
    batch_size: int = 64
    gallery_classes: tuple[str, ...] = ()
    gallery_slopes: tuple[float, ...] = (0.075,)
    gallery_steps: int = 500
    gallery_regularization: str | None = None
    device: str | None = None
    precision: str = "fp32"
    channels_last: bool = False
    parametrization: str = "pixel"
    step_rule: str = DEFAULT_STEP_RULE
    temperature: float = 1.0
    compile: bool | str = False
    kinds: tuple[str, ...] | str = RECTIFIERS_ONLY
    smooth_variant: str | None = None
    smooth_slope: float | None = None
    pool_variant: str | None = None
    pool_temperature: float | None = None
    pool_share: float | None = None

    @property
    def compile_mode(self) -> str | None:
        """torch.compile's mode, or None when not compiling (True means "default")."""
        return None if not self.compile else "default" if self.compile is True else self.compile

    def resolved(self) -> "SweepConfig":
        """This config with the gallery's regularization filled in (see the class docstring)."""
        if self.gallery_regularization is not None:
            return self
        return replace(self, gallery_regularization=GALLERY_REGULARIZATION.get(self.parametrization, "paper"))


PRESETS = {
    "quick": SweepConfig(seeds=(0,), gallery_classes=("0", "3", "5", "8"), gallery_slopes=(0.075, 0.3)),
    "paper": SweepConfig(model="resnet18", weights="IMAGENET1K_V1", classes=tuple(str(i) for i in range(0, 1000, 10)),
                         seeds=(0,), lr=25.0, batch_size=32, gallery_classes=PAPER_GALLERY,
                         gallery_slopes=(0.075, 0.3), gallery_steps=2500),
}


def preset(name: str, **changes) -> SweepConfig:
    """A named sweep (quick: the bundled model on 2 CPU cores in a few minutes; paper: ResNet18 on ImageNet
    as in Section 5, for users with the weights and a GPU) with some fields changed."""
    if name not in PRESETS:
        raise ValueError(f"unknown sweep preset {name!r}; valid: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


def validate(config: SweepConfig) -> None:
    """Everything that can be checked before any work starts (the model's classes are checked after loading):
    names, ranges, and that every cell's RenderConfig can be built."""
    config = config.resolved()
    if config.classes is not None and not config.classes:
        raise ValueError("the class list is empty: name at least one class (or leave it out for every class)")
    unknown = set(config.methods) - set(MODES)
    if unknown or not config.methods:
        raise ValueError(f"methods must be among {MODES}, got {config.methods}")
    if config.parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"unknown parametrization {config.parametrization!r}; valid: {', '.join(PARAMETRIZATIONS)}")
    check_temperature(config.temperature)
    check_proxies(config)
    if not (isinstance(config.compile, bool) or config.compile in COMPILE_MODES):
        raise ValueError(f"compile must be True, False or a torch.compile mode ({', '.join(COMPILE_MODES)}), "
                         f"got {config.compile!r}")
    for slope in (*config.slopes, *config.gallery_slopes):
        if not 0 <= slope <= 1:
            raise ValueError(f"slope {slope} is out of range for a sweep: use slopes in [0, 1]")
    if not config.seeds or not config.steps or any(s < 1 for s in config.steps):
        raise ValueError("a sweep needs at least one seed and step counts >= 1")
    for name in (*config.regularizations, config.gallery_regularization):
        if name not in REGULARIZATIONS:
            raise ValueError(f"unknown regularization {name!r}; valid: {', '.join(REGULARIZATIONS)}")
    if config.parametrization != "pixel":
        fits = [name for name in REGULARIZATIONS if not regularization_preset(name).acts_on_pixels]
        for name in (*config.regularizations, *((config.gallery_regularization,) if config.gallery_classes else ())):
            if name not in fits:
                raise ValueError(f"parametrization {config.parametrization!r} optimizes a spectrum: regularization "
                                 f"{name!r} acts on pixels after each step; valid with it: {', '.join(fits)}")
    for settings in (*cells(config), *_gallery_cells(config)):
        render_config(settings, config, model_size=None, progress=False)


def check_proxies(config: SweepConfig) -> None:
    """``kinds`` and the per-kind settings: ValueError when they would be ignored (no proxygrad among the
    methods), when another method than relu and proxygrad is swept with kinds beyond rectifiers, or when
    RenderConfig refuses them (unknown kinds or variants, settings of kinds not selected, out-of-range numbers)."""
    kinds = check_kinds(config.kinds)
    given = [name for name in PROXY_OPTIONS if getattr(config, name) is not None]
    if kinds == RECTIFIERS_ONLY and not given:
        return
    named = (["kinds"] if kinds != RECTIFIERS_ONLY else []) + given
    if "proxygrad" not in config.methods:
        raise ValueError(f"{' and '.join(named)} {'apply' if len(named) > 1 else 'applies'} to method proxygrad "
                         f"only, which is not among the methods ({', '.join(config.methods)})")
    others = [m for m in config.methods if m not in ("relu", "proxygrad")]
    if kinds != RECTIFIERS_ONLY and others:
        raise ValueError(f"kinds {','.join(kinds)}: only method proxygrad has proxies beyond rectifiers; drop "
                         f"{', '.join(others)} from the methods (e.g. methods relu,proxygrad) or use kinds rectifiers")
    RenderConfig(method="proxygrad", kinds=kinds, progress=False, **{name: getattr(config, name) for name in given})


def proxy_settings(config: SweepConfig) -> dict:
    """proxygrad's settings beyond rectifiers, for its cells: {} for rectifiers only (the default), else the
    kinds (in KINDS order) and the settings they use with the defaults filled in (so a later change of a
    default cannot reuse cells rendered with the old one)."""
    if check_kinds(config.kinds) == RECTIFIERS_ONLY:
        return {}
    return patch_proxy_settings(config.kinds, config.smooth_variant, config.smooth_slope, config.pool_variant,
                                config.pool_temperature, config.pool_share)


def cell(config: SweepConfig, method: str, slope: float, steps: int, regularization: str, **extra) -> dict:
    """One cell's settings (its key in cells.jsonl). The temperature (softgate), a parametrization other than
    pixel, a step rule other than the default, the compile mode (when compiling) and proxygrad's kinds beyond
    rectifiers with their settings (``proxy_settings``) are added, so that the keys of the original sweep stay
    as they were and a run directory resumed with other settings does not reuse cells."""
    settings = {**extra, "regularization": regularization, "steps": steps, "method": method, "slope": slope}
    if method == "softgate":
        settings["temperature"] = config.temperature
    if method == "proxygrad":
        settings.update(proxy_settings(config))
    if config.parametrization != "pixel":
        settings["parametrization"] = config.parametrization
    if config.step_rule != DEFAULT_STEP_RULE:
        settings["step_rule"] = config.step_rule
    if config.compile_mode is not None:
        settings["compile"] = config.compile_mode
    return settings


def cells(config: SweepConfig) -> list[dict]:
    """Settings of every cell of the sweep: relu and each surrogate without a slope once per regularization
    and step count; leaky and proxygrad at every non-zero slope."""
    out = []
    others = [m for m in config.methods if m != "relu" and m not in SLOPED]
    for regularization in config.regularizations:
        for steps in config.steps:
            if "relu" in config.methods:
                out.append(cell(config, "relu", 0.0, steps, regularization))
            for method in SLOPED:
                if method in config.methods:
                    out += [cell(config, method, s, steps, regularization) for s in config.slopes if s > 0]
            out += [cell(config, method, 0.0, steps, regularization) for method in others]
    return out


def _gallery_cells(config: SweepConfig) -> list[dict]:
    """Settings of the gallery's cells, per gallery slope and method (repeats where the slope does not apply)."""
    if not config.gallery_classes:
        return []
    return [cell(config, m, s if m in SLOPED else 0.0, config.gallery_steps, config.gallery_regularization,
                 gallery=True) for s in config.gallery_slopes for m in config.methods]


def cell_label(settings: dict) -> str:
    """A cell's method as labels show it, e.g. "proxygrad s=0.075 [all]" (see ``method_label``)."""
    return method_label(settings["method"], settings["slope"], settings.get("temperature", 1.0),
                        settings.get("kinds", RECTIFIERS_ONLY))


def render_config(settings: dict, config: SweepConfig, model_size, progress: bool) -> RenderConfig:
    """The RenderConfig of one cell; ``model_size`` (H, W) sizes the lucent/maco input views. The cell's own
    settings (its key) carry proxygrad's kinds and their settings."""
    proxies = {name: settings[name] for name in PROXY_OPTIONS if name in settings}
    return RenderConfig(method=settings["method"], slope=settings["slope"], steps=settings["steps"], lr=config.lr,
                        init_sigma=config.init_sigma, batch_size=config.batch_size,
                        regularization=regularization_preset(settings["regularization"], model_size=model_size),
                        progress=progress, precision=config.precision, channels_last=config.channels_last,
                        parametrization=config.parametrization, step_rule=config.step_rule,
                        temperature=config.temperature, compile=config.compile,
                        kinds=tuple(settings.get("kinds", RECTIFIERS_ONLY)), **proxies)


def _render_cell(loaded: LoadedModel, objectives, seeds, settings: dict, config: SweepConfig, progress: bool):
    jobs = [(o, s) for o in objectives for s in seeds]
    settings_config = render_config(settings, config, tuple(loaded.spec.size), progress)
    if config.compile:  # each cell's slope is a constant of its compiled graph: without a reset, dynamo's
        torch._dynamo.reset()  # recompile limit (8 graphs per function) would send later cells back to eager
    result = render_sharded(loaded.model, loaded.spec, [o for o, _ in jobs], [s for _, s in jobs], settings_config)
    targets = [target_class(o) for o, _ in jobs]
    return result, targets  # result is None on ranks other than 0 (see am.distributed)


def summarize_cell(activation: Sequence[float], predicted: Sequence[int], targets: Sequence[int]) -> dict:
    """Mean, std, min, max of the activations and the share classified as the target class."""
    return {"mean": statistics.fmean(activation), "std": statistics.pstdev(activation) if len(activation) > 1 else 0.0,
            "min": min(activation), "max": max(activation),
            "target_share": sum(int(p == t) for p, t in zip(predicted, targets)) / len(targets)}


def run_sweep(config: SweepConfig, run_dir: str | Path, progress: bool = True) -> dict | None:
    """Run (or resume) the sweep into ``run_dir``; returns the results.json payload. Under ``torchrun`` every
    cell's images are spread over the ranks; rank 0 writes everything and the other ranks return None."""
    validate(config)
    config = config.resolved()
    run_dir = Path(run_dir)
    start = time.perf_counter()
    rank, _ = world()
    device = torch.device(config.device) if config.device else local_device()
    loaded = load(config.model, weights=config.weights, device=device)
    objectives = class_objectives(config.classes, loaded.spec)
    rows = ResultRows(run_dir / "cells.jsonl")
    todo = [c for c in cells(config) if not rows.done(cell_key(c))]
    barrier()  # every rank has read the same finished cells before rank 0 appends more
    for settings in tqdm(todo, desc="sweep cells", disable=not progress or rank != 0):
        result, targets = _render_cell(loaded, objectives, config.seeds, settings, config, progress=False)
        if rank == 0:
            rows.append(cell_key(settings), settings=settings, objectives=result.objectives, seeds=result.seeds,
                        targets=targets, activation=result.activation.tolist(),
                        predicted=result.predicted.tolist(), seconds=result.seconds)
    gallery = run_gallery(loaded, config, run_dir, rows, progress and rank == 0)
    if rank != 0:
        return None
    grid = [row for row in rows if "gallery" not in row["settings"]]
    summary = [{**row["settings"], **summarize_cell(row["activation"], row["predicted"], row["targets"]),
                "seconds": row["seconds"]} for row in grid]
    columns = [*dict.fromkeys(k for row in grid for k in row["settings"]), "mean", "std", "min", "max",
               "target_share", "seconds"]  # the settings of every cell (softgate's temperature), then the numbers
    write_csv(run_dir / "summary.csv", [{**r, "kinds": "+".join(r["kinds"])} if "kinds" in r else r
                                        for r in summary], columns)
    write_figure(run_dir / "figure2.png", figure2(summary, config))
    payload = {"command": "sweep", "title": f"Activation-maximization sweep: {loaded.name}",
               "settings": {**asdict(config), "model": loaded.name, "model_source": loaded.source,
                            "device": str(device), "classes": [o.name for o in objectives]},
               "versions": versions(), "seconds": round(time.perf_counter() - start, 3),
               "files": {"Figure 2: activation vs slope": "figure2.png", **gallery["figures"]},
               "tables": [{"title": "Cells (original network's activation)", "csv": "summary.csv"}],
               "findings": findings(grid), "summary": summary, "gallery": gallery["images"]}
    write_json(run_dir / "results.json", payload)
    return payload


def run_gallery(loaded: LoadedModel, config: SweepConfig, run_dir: Path, rows: ResultRows, progress: bool) -> dict:
    """Table 3 / Figure 3: each gallery class with each method (leaky and proxygrad at each gallery slope)."""
    figures, images = {}, []
    if not config.gallery_classes:
        return {"figures": figures, "images": images}
    objectives = class_objectives(config.gallery_classes, loaded.spec)
    finished = {row["key"] for row in rows if row["settings"].get("gallery")}
    for slope in config.gallery_slopes:
        columns, notes = {}, {}
        for method in config.methods:
            settings = cell(config, method, slope if method in SLOPED else 0.0, config.gallery_steps,
                            config.gallery_regularization, gallery=True)
            label = cell_label(settings)
            folder = "_".join((method, *settings.get("kinds", ())))  # kinds apart: "proxygrad_rectifiers_smooth"
            files = [f"gallery/s{slope:g}/{folder}/{i:02d}_{o.name.replace(':', '_').replace(' ', '_')}.png"
                     for i, o in enumerate(objectives)]
            key = cell_key(settings)
            if key not in finished:  # the same decision on every rank (relu's cell repeats across slopes)
                finished.add(key)
                result, targets = _render_cell(loaded, objectives, config.seeds[:1], settings, config, progress)
                if result is None:  # another rank than 0: rank 0 writes
                    continue
                for file, image in zip(files, result.images):
                    write_png(run_dir / file, image)
                rows.append(cell_key(settings), settings=settings, objectives=result.objectives, files=files,
                            activation=result.activation.tolist(), predicted=result.predicted.tolist(),
                            targets=targets, seconds=result.seconds)
            row = rows.get(cell_key(settings))
            if row is None:
                continue
            columns[label] = torch.stack([read_png(run_dir / f, loaded.spec.channels) for f in row["files"]])
            images += [{"method": label, "objective": o, "file": f, "activation": a}
                       for o, f, a in zip(row["objectives"], row["files"], row["activation"])]
            notes[label] = [f"{a:.1f} -> {loaded.spec.class_name(p)}" for a, p in zip(row["activation"], row["predicted"])]
        if not columns:  # ranks other than 0 draw nothing
            continue
        figure = image_grid(columns, [o.name for o in objectives], notes)
        write_figure(run_dir / f"gallery_s{slope:g}.png", figure)
        figures[f"Gallery at slope {slope:g}, {config.gallery_steps} steps"] = f"gallery_s{slope:g}.png"
    return {"figures": figures, "images": images}


def figure2(summary: list[dict], config: SweepConfig) -> Figure:
    """Mean activation vs slope, one line per method with a slope (band: +-1 std over images) and a dotted
    level for relu and each other surrogate, one panel per (regularization, step count)."""
    regs, steps = config.regularizations, config.steps
    figure = Figure(figsize=(4.2 * len(steps), 3.2 * len(regs)))
    axes = np.asarray(figure.subplots(len(regs), len(steps), squeeze=False))
    colors = {"proxygrad": "tab:blue", "leaky": "tab:red"}  # the other surrogates: dotted lines, OTHER_COLORS
    for r, reg in enumerate(regs):
        for c, n in enumerate(steps):
            ax = axes[r, c]
            panel = [row for row in summary if row["regularization"] == reg and row["steps"] == n]
            base = next((row for row in panel if row["method"] == "relu"), None)
            for method in ("leaky", "proxygrad"):
                for suffix, line in _by_kinds([row for row in panel if row["method"] == method], lambda row: row).items():
                    points = sorted((row["slope"], row["mean"], row["std"]) for row in line)
                    if base is not None:
                        points = [(0.0, base["mean"], base["std"])] + points
                    x, y, e = (np.asarray(v) for v in zip(*points))
                    ax.plot(x, y, marker="o", ms=3, color=colors[method], ls="-" if not suffix else "-.",
                            label=f"{method}{suffix}")
                    ax.fill_between(x, y - e, y + e, color=colors[method], alpha=0.12, lw=0)
            if base is not None:
                ax.axhline(base["mean"], color="gray", lw=0.8, ls="--", label="relu (s = 0)")
            others = [row for row in panel if row["method"] not in ("relu", *SLOPED)]
            for k, row in enumerate(others):
                label = cell_label(row)
                ax.axhline(row["mean"], color=OTHER_COLORS[k % len(OTHER_COLORS)], lw=1.0, ls=":",
                           label=label if is_ascent(row["method"]) else f"{label} (not ascent)")
            ax.set_title(f"{n} steps, regularization: {reg}", fontsize=9)
            ax.set_xlabel("negative slope s")
            ax.set_ylabel("mean activation (original network)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _by_kinds(rows: list[dict], settings_of) -> dict[str, list[dict]]:
    """Rows grouped by the kinds suffix of their settings ("" for rectifiers only), in order of appearance: a
    run directory resumed with other kinds holds proxygrad cells of both."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(kinds_suffix(settings_of(row).get("kinds", RECTIFIERS_ONLY)), []).append(row)
    return groups


def findings(rows: list[dict]) -> list[str]:
    """Plain sentences per panel: the best slope of each method against relu (each other surrogate: its one
    cell), with the paired comparison over the same starts (how many images it beats relu on), so that a gain
    inside the noise reads as such. Guided gets a note: it is not an ascent direction."""
    lines = []
    panels = sorted({(row["settings"]["regularization"], row["settings"]["steps"]) for row in rows}, key=str)
    for reg, steps in panels:
        panel = [row for row in rows if (row["settings"]["regularization"], row["settings"]["steps"]) == (reg, steps)]
        base = next((row for row in panel if row["settings"]["method"] == "relu"), None)
        if base is None:
            continue
        base_mean = statistics.fmean(base["activation"])
        others = [row["settings"]["method"] for row in panel if row["settings"]["method"] not in ("relu", *SLOPED)]
        for method in ("proxygrad", "leaky", *dict.fromkeys(others)):
            cells_of_method = [row for row in panel if row["settings"]["method"] == method]
            for suffix, group in _by_kinds(cells_of_method, lambda row: row["settings"]).items():
                best = max(group, key=lambda row: statistics.fmean(row["activation"]))
                mean = statistics.fmean(best["activation"])
                wins = sum(a > b for a, b in zip(best["activation"], base["activation"]))
                change = (mean - base_mean) / abs(base_mean) if base_mean else math.inf
                verdict = "higher than" if mean > base_mean else "NOT higher than"
                name = (f"best {method}{suffix} (s = {best['settings']['slope']:g})" if method in SLOPED
                        else cell_label(best["settings"]))
                note = "" if is_ascent(method) else f" {method}: {NOT_ASCENT_NOTE}"
                lines.append(f"{reg}, {steps} steps: {name} reaches {mean:.3g}, {verdict} relu's {base_mean:.3g} "
                             f"({100 * change:+.1f}%; higher on {wins} of {len(base['activation'])} images from "
                             f"the same starts).{note}")
    return lines


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
