"""``proxygrad compare``: the field's AM methods on one model, scored by the same metrics (issue #11).

A method is a backward surrogate x a recipe (x a slope or temperature), e.g. ``proxygrad:0.075@lucent``.
Every method renders the same (class, seed) cells; every score comes from ORIGINAL networks:

- activation: the visualized network's target logit; target share: the share it classifies as the target;
- transferability: the share an independently trained second network classifies as the target;
- plausibility: mean cosine similarity to real images of the class in an evaluator's penultimate features;
- FID: per class, between the visualizations and real images of the class (evaluator features), averaged;
- seed consistency: mean pairwise pixel correlation of the images of one class from different seeds;
- optimality gap: on a small network with exact maxima (MILP), (exact - reached) / |exact|.

Per-image metrics get a mean and a 95 % t interval over seeds (the mean over classes per seed); verdicts
compare methods on the same cells (paired; Wilcoxon or sign test). Finished methods are appended to
``cells.jsonl`` so a rerun of the same run directory resumes.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..am import RenderConfig, class_logit, render
from ..am.api import class_objectives
from ..am.objectives import target_class
from ..am.recipes import RECIPES, recipe_config
from ..exact import maximize, optimality_gap, trace
from ..metrics import class_fid, score_images, seed_consistency
from ..metrics.real import load_folder_images
from ..models import LoadedModel, digits_data, load
from ..models.spec import InputSpec
from ..report.files import read_png, versions, write_csv, write_figure, write_json, write_png
from ..report.rows import ResultRows, cell_key
from ..report.visualization import kinds_suffix
from ..surrogates import MODES, is_ascent, patched
from ..surrogates.patch import check_kinds
from .compare_summary import METRICS, findings, metric_figure, summary_rows
from .gap import NETWORKS, SIZE, train_network

RECTIFIERS = ("rectifiers",)
PARAMETRIZED = {"leaky": "slope", "proxygrad": "slope", "softgate": "temperature"}
DEFAULT_PARAMETER = {"leaky": 0.075, "proxygrad": 0.075, "softgate": 0.5}
DIGITS_MODELS = ("digits", "digits-b", None)


@dataclass(frozen=True)
class Method:
    """A backward surrogate (one of MODES) with a recipe; ``parameter`` is the slope (leaky, proxygrad) or
    the temperature (softgate), None for the others; ``kinds``: what proxygrad changes (patched()'s kinds:
    rectifiers, smooth, pooling)."""

    surrogate: str
    recipe: str
    parameter: float | None = None
    kinds: tuple[str, ...] = RECTIFIERS

    @property
    def label(self) -> str:
        name = self.surrogate
        if self.parameter is not None:
            name += f" {'t' if self.surrogate == 'softgate' else 's'}={self.parameter:g}"
        return f"{name}{kinds_suffix(self.kinds)} @ {self.recipe}"

    @property
    def ascent(self) -> bool:
        return is_ascent(self.surrogate)

    def render_config(self, spec: InputSpec, steps: int | None, spectrum: str | None = None,
                      **changes) -> RenderConfig:
        """The RenderConfig of this method for a model with input ``spec`` (``steps`` None: the recipe's)."""
        settings = {"method": self.surrogate, **changes}
        if steps is not None:
            settings["steps"] = steps
        if self.surrogate in ("leaky", "proxygrad"):
            settings["slope"] = self.parameter
        if self.surrogate == "softgate":
            settings["temperature"] = self.parameter
        if self.kinds != RECTIFIERS:
            settings["kinds"] = self.kinds
        return recipe_config(self.recipe, spec, spectrum=spectrum if self.recipe == "maco" else None, **settings)


def parse_method(text: str) -> Method:
    """``SURROGATE[:PARAMETER]@RECIPE`` (recipe default: paper), e.g. ``proxygrad:0.1@lucent``, ``relu@maco``,
    ``softgate:0.5@paper``; ValueError naming the valid choices otherwise."""
    head, _, recipe = text.strip().partition("@")
    recipe = recipe.strip() or "paper"
    surrogate, _, value = head.partition(":")
    surrogate = surrogate.strip()
    if surrogate not in MODES:
        raise ValueError(f"unknown surrogate {surrogate!r} in {text!r}; valid: {', '.join(MODES)}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r} in {text!r}; valid: {', '.join(RECIPES)}")
    if value and surrogate not in PARAMETRIZED:
        raise ValueError(f"surrogate {surrogate!r} takes no parameter (in {text!r})")
    parameter = None
    if surrogate in PARAMETRIZED:
        try:
            parameter = float(value) if value else DEFAULT_PARAMETER[surrogate]
        except ValueError:
            raise ValueError(f"the {PARAMETRIZED[surrogate]} in {text!r} is not a number") from None
        if not math.isfinite(parameter) or parameter < 0 or (surrogate == "softgate" and parameter <= 0):
            bound = "> 0" if surrogate == "softgate" else ">= 0"
            raise ValueError(f"the {PARAMETRIZED[surrogate]} in {text!r} must be a finite number {bound}")
    return Method(surrogate, recipe, parameter)


QUICK_SURROGATES = ("relu", "proxygrad", "redirected", "redirected-captum", "softgate", "guided")


@dataclass(frozen=True)
class CompareConfig:
    """What to compare. ``steps``: per recipe (missing: the recipe's own count). ``real``: a folder of real
    images (one subfolder per class, named by index or class name) for plausibility and FID; None uses the
    bundled digits test images for the bundled digits models. ``exact_network``: a network of
    ``proxygrad gap`` whose exact maxima score the optimality gap, or "model": the compared model itself, when
    the MILP can take it (``exact_time_limit`` seconds per class; a solve cut short gives an upper bound, so
    the gap is then an upper bound too); None: skip."""

    model: str | None = None
    weights: str | None = None
    second: str | None = "digits-b"
    second_weights: str | None = None
    evaluator: str | None = None
    evaluator_weights: str | None = None
    real: str | None = None
    classes: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = tuple(f"{s}@{r}" for r in RECIPES for s in QUICK_SURROGATES)
    steps: dict = field(default_factory=lambda: {"paper": 200, "lucent": 256, "maco": 128})
    spectrum: str | None = None
    batch_size: int = 64
    device: str | None = None
    exact_network: str | None = "cnn-relu"
    exact_classes: tuple[int, ...] = (0, 1, 2, 3, 4)
    real_per_class: int = 50
    exact_time_limit: float = 60.0
    kinds: tuple[str, ...] | str = RECTIFIERS

    def parsed(self) -> list[Method]:
        kinds = check_kinds(self.kinds)
        methods = [parse_method(m) for m in self.methods]
        methods = [replace(m, kinds=kinds) if m.surrogate == "proxygrad" else m for m in methods]
        if not methods:
            raise ValueError("no methods to compare")
        labels = [m.label for m in methods]
        if len(set(labels)) != len(labels):
            raise ValueError(f"methods repeat: {labels}")
        return methods


PRESETS = ("quick", "full")
RUN_SETTINGS = ("model", "weights", "second", "second_weights", "evaluator", "evaluator_weights", "real", "classes",
                "seeds", "spectrum", "real_per_class")  # kinds: in the method's label  # what a finished method's results depend on


def preset(name: str, **changes) -> CompareConfig:
    """``quick``: bundled digits, 10 classes x 3 seeds, six surrogates x three recipes with shortened runs (a
    few minutes on 2 CPU cores). ``full``: 10 seeds, every recipe's own step count, more slopes and
    temperatures (for a GPU). ``changes`` override fields (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown compare preset {name!r}; valid: {', '.join(PRESETS)}")
    config = CompareConfig()
    if name == "full":
        surrogates = ("relu", "proxygrad:0.05", "proxygrad:0.1", "proxygrad:0.2", "leaky:0.1", "redirected",
                      "redirected-captum", "softgate:0.1", "softgate:0.5", "softgate:1", "guided")
        config = replace(config, seeds=tuple(range(10)), steps={}, exact_classes=tuple(range(10)),
                         methods=tuple(f"{s}@{r}" for r in RECIPES for s in surrogates))
    return replace(config, **{k: v for k, v in changes.items() if v is not None})


# ---- inputs --------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """Everything loaded and checked before any rendering."""

    config: CompareConfig
    methods: list[Method]
    model: LoadedModel
    second: LoadedModel | None
    evaluator: LoadedModel | None
    real: tuple[torch.Tensor, torch.Tensor] | None
    classes: list[int]
    device: torch.device


def real_images(config: CompareConfig, spec: InputSpec, classes: Sequence[int]) -> tuple | None:
    """(images (M, C, H, W) in [-1, 1], labels (M,)) of the chosen classes, at most ``real_per_class`` each:
    from ``config.real`` (class subfolders), the bundled digits test split for the digits models, else None."""
    if config.real is not None:
        return load_folder_images(config.real, spec, classes, config.real_per_class)
    if config.model not in DIGITS_MODELS:
        return None
    images, labels = digits_data("test", spec.size[0])
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:config.real_per_class] for c in classes])
    return images[keep], labels[keep]


def prepare(config: CompareConfig) -> Setup:
    """Load and check everything (methods, models, spectrum, classes, real images); errors before any work."""
    methods = config.parsed()
    device = torch.device(config.device) if config.device else \
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.exact_network not in (None, "model", *NETWORKS):
        raise ValueError(f"unknown exact network {config.exact_network!r}; valid: model, {', '.join(NETWORKS)}")
    if not config.seeds:
        raise ValueError("no seeds")
    if not (math.isfinite(config.exact_time_limit) and config.exact_time_limit > 0):
        raise ValueError(f"exact_time_limit must be a finite number of seconds > 0, got {config.exact_time_limit}")
    model = load(config.model, weights=config.weights, device=device)
    for method in methods:  # RenderConfig checks; the maco spectrum is loaded and checked here
        render_config = method.render_config(model.spec, config.steps.get(method.recipe), config.spectrum)
        if render_config.parametrization.name == "maco":
            render_config.parametrization.magnitude(model.spec.channels, model.spec.size, device)
    for surrogate, kinds in sorted({(m.surrogate, m.kinds) for m in methods if m.surrogate != "relu"}):
        with patched(model.model, surrogate, 0.1, kinds=kinds):  # ValueError when it has nothing to change
            pass
    second = load(config.second, weights=config.second_weights, device=device) if config.second else None
    evaluator = load(config.evaluator, weights=config.evaluator_weights, device=device) if config.evaluator \
        else second or model
    for other, what in ((second, "second"), (evaluator, "evaluator")):
        if other is not None and (other.spec.channels, other.spec.num_classes) != \
                (model.spec.channels, model.spec.num_classes):
            raise ValueError(f"the {what} network {other.name} takes {other.spec.channels} channels and has "
                             f"{other.spec.num_classes} classes, the model {model.spec.channels} and "
                             f"{model.spec.num_classes}: choose a matching one with --{what}")
    count = model.spec.num_classes or 10
    classes = [target_class(o) for o in class_objectives(config.classes, model.spec)] if config.classes \
        else list(range(min(count, 10)))
    real = real_images(config, evaluator.spec, classes)
    if config.exact_network == "model":
        trace(in_image_space(model.model, model.spec), (model.spec.channels, *model.spec.size))  # can MILP take it?
    return Setup(config, methods, model, second, evaluator, real, classes, device)


# ---- running -------------------------------------------------------------------------------------------------
def _render_method(setup: Setup, method: Method, progress: bool):
    jobs = [(c, s) for c in setup.classes for s in setup.config.seeds]
    render_config = method.render_config(setup.model.spec, setup.config.steps.get(method.recipe),
                                         setup.config.spectrum, batch_size=setup.config.batch_size,
                                         progress=progress)
    result = render(setup.model.model, setup.model.spec, [class_logit(c) for c, _ in jobs],
                    [s for _, s in jobs], render_config, device=setup.device)
    return jobs, result


def _set_metrics(setup: Setup, images: torch.Tensor, targets: torch.Tensor) -> dict:
    """FID per class (mean; None without real images) and seed consistency (mean over classes)."""
    consistency = seed_consistency(images, targets.tolist()) if len(setup.config.seeds) > 1 else None
    fid = None
    if setup.real is not None:
        fid = class_fid(images, targets, evaluator=setup.evaluator, real=setup.real)
    return {"fid": None if fid is None else fid.mean,
            "fid_per_class": None if fid is None else {str(k): v for k, v in fid.per_group.items()},
            "fid_images_per_class": None if fid is None else min(fid.counts.values()),
            "seed_consistency": None if consistency is None else consistency.mean}


def evaluate_method(setup: Setup, method: Method, run_dir: Path, progress: bool) -> dict:
    """Render one method on every (class, seed) cell, write its images, score them; the row for cells.jsonl."""
    jobs, result = _render_method(setup, method, progress)
    targets = torch.tensor([c for c, _ in jobs], device=setup.device)
    images = result.images.to(setup.device)
    scores = score_images(images, targets, model=setup.model, second=setup.second, evaluator=setup.evaluator,
                          real=setup.real)
    files = []
    for (c, seed), image in zip(jobs, result.images):
        files.append(f"images/{_slug(method.label)}/class{c}_seed{seed}.png")
        write_png(run_dir / files[-1], image)
    cells = [{"class": c, "seed": s, "activation": a, "on_target": float(o), "file": f,
              "transfer": float(scores["transfer"][i]) if "transfer" in scores else None,
              "plausibility": float(scores["plausibility"][i]) if "plausibility" in scores else None}
             for i, ((c, s), a, o, f) in enumerate(zip(jobs, result.activation.tolist(),
                                                       scores["on_target"].tolist(), files))]
    return {"method": method.label, "surrogate": method.surrogate, "recipe": method.recipe,
            "parameter": method.parameter, "ascent": method.ascent, "cells": cells,
            "zero_gradient_steps": int(result.zero_gradient_steps.sum()), "seconds": result.seconds,
            **_set_metrics(setup, images, targets)}


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in ".-" else "_" for ch in text)


def in_image_space(model: nn.Module, spec: InputSpec) -> nn.Module:
    """``model`` taking images in [-1, 1] (its input normalization as a per-channel 1x1 convolution first), so
    that the MILP's box [-1, 1]^d is the space the images are rendered in."""
    scale = torch.tensor([0.5 / s for s in spec.std])
    shift = torch.tensor([(0.5 - m) / s for m, s in zip(spec.mean, spec.std)])
    normalize = nn.Conv2d(spec.channels, spec.channels, 1, groups=spec.channels)
    with torch.no_grad():
        normalize.weight.copy_(scale.view(-1, 1, 1, 1))
        normalize.bias.copy_(shift)
    return nn.Sequential(normalize, copy.deepcopy(model).cpu()).eval()


def _exact_maxima(rows: ResultRows, name: str, network: nn.Module, shape, classes, time_limit: float) -> dict:
    """{class: (exact maximum or upper bound, optimal?)}, each solve cached in ``rows``."""
    exact = {}
    for c in classes:
        key = cell_key({"exact": name, "class": c, "time_limit": time_limit})
        row = rows.get(key) or rows.append(key, **maximize(network, shape, c, time_limit=time_limit).to_dict())
        exact[c] = (row["value"] if row["optimal"] else row["bound"], bool(row["optimal"]))
    return exact


def _gap_cells(exact: dict, reached) -> list[dict]:
    """Optimality-gap cells from (class, seed, reached activation) triples."""
    return [{"class": c, "seed": s, "gap": optimality_gap(exact[c][0], a), "exact_optimal": exact[c][1]}
            for c, s, a in reached]


def exact_gaps(setup: Setup, rows: ResultRows, measured: list[dict], progress: bool) -> dict[str, list[dict]]:
    """Optimality gap per method, {method label: [{"class", "seed", "gap", "exact_optimal"}]}: on the compared
    model itself ("model": its measured activations against its MILP maxima) or on a network of
    ``proxygrad gap`` (8x8 digits, rendered here with each method). Cached in ``rows``."""
    config = setup.config
    if config.exact_network is None:
        return {}
    if config.exact_network == "model":
        spec = setup.model.spec
        network = in_image_space(setup.model.model, spec)
        exact = _exact_maxima(rows, f"model:{setup.model.name}", network, (spec.channels, *spec.size),
                              setup.classes, config.exact_time_limit)
        return {row["method"]: _gap_cells(exact, [(c["class"], c["seed"], c["activation"]) for c in row["cells"]])
                for row in measured}
    network, _ = train_network(config.exact_network)
    spec = InputSpec(1, (SIZE, SIZE), (0.5,), (0.5,))
    exact = _exact_maxima(rows, config.exact_network, network, (1, SIZE, SIZE), config.exact_classes,
                          config.exact_time_limit)
    gaps = {}
    jobs = [(c, s) for c in config.exact_classes for s in config.seeds]
    for method in tqdm(setup.methods, desc="optimality gap", disable=not progress, leave=False):
        key = cell_key({"gap": config.exact_network, "method": method.label, "steps": config.steps.get(method.recipe),
                        "classes": list(config.exact_classes), "seeds": list(config.seeds),
                        "time_limit": config.exact_time_limit})
        if not rows.done(key):
            render_config = method.render_config(spec, config.steps.get(method.recipe), config.spectrum,
                                                 progress=False)
            result = render(network, spec, [class_logit(c) for c, _ in jobs], [s for _, s in jobs], render_config)
            rows.append(key, reached=[[c, s, a] for (c, s), a in zip(jobs, result.activation.tolist())])
        gaps[method.label] = _gap_cells(exact, rows.get(key)["reached"])
    return gaps


def run_compare(config: CompareConfig, run_dir: str | Path, progress: bool = True) -> dict:
    """Run (or resume) the comparison into ``run_dir``; returns the results.json payload."""
    start = time.perf_counter()
    setup = prepare(config)
    run_dir = Path(run_dir)
    rows = ResultRows(run_dir / "cells.jsonl")
    settings = asdict(config)
    measured = []
    for method in tqdm(setup.methods, desc="methods", disable=not progress):
        key = cell_key({"compare": method.label, "steps": config.steps.get(method.recipe),
                        **{k: settings[k] for k in RUN_SETTINGS}})
        if not rows.done(key):
            rows.append(key, **evaluate_method(setup, method, run_dir, progress=False))
        measured.append(rows.get(key))
    gaps = exact_gaps(setup, rows, measured, progress)
    for row in measured:
        row["gap_cells"] = gaps.get(row["method"])
    table = summary_rows(measured, config.seeds)
    write_csv(run_dir / "summary.csv", table)
    write_figure(run_dir / "metrics.png", metric_figure(table))
    write_figure(run_dir / "gallery.png", gallery(setup, measured, run_dir))
    payload = {"command": "compare", "title": f"proxygrad compare: {setup.model.name}",
               "findings": findings(measured, table, config.exact_network),
               "settings": {**settings, "model": setup.model.name, "model_source": setup.model.source,
                            "device": str(setup.device), "classes": setup.classes,
                            "real_images": None if setup.real is None else len(setup.real[1]),
                            "metrics": list(METRICS)},
               "versions": versions(), "seconds": round(time.perf_counter() - start, 3),
               "files": {"Metrics with 95% confidence intervals over seeds": "metrics.png",
                         "Gallery (first seed)": "gallery.png"},
               "tables": [{"title": "Methods x metrics (mean [95% CI] over seeds)", "csv": "summary.csv"}],
               "images": [{"method": row["method"], "objective": f"class {cell['class']} seed {cell['seed']}",
                           "file": cell["file"], "activation": cell["activation"]}
                          for row in measured for cell in row["cells"] if cell["seed"] == config.seeds[0]]}
    write_json(run_dir / "results.json", payload)
    return payload


def gallery(setup: Setup, measured: list[dict], run_dir: Path):
    """One column per method, one row per class: the first seed's image at the model's size."""
    from ..report.figures import image_grid

    seed, spec = setup.config.seeds[0], setup.model.spec
    columns, notes = {}, {}
    for row in measured:
        cells = [cell for cell in row["cells"] if cell["seed"] == seed]
        images = torch.stack([read_png(run_dir / cell["file"], spec.channels) for cell in cells])
        label = row["method"].replace(" @ ", "\n@ ")
        columns[label] = F.interpolate(images, size=spec.size, mode="area") \
            if tuple(images.shape[-2:]) != tuple(spec.size) else images
        notes[label] = [f"{cell['activation']:.1f}" for cell in cells]
    return image_grid(columns, [spec.class_name(c) for c in setup.classes], notes, cell_inches=1.2)
