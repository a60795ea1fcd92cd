"""``proxygrad.visualize``: activation maximization in a few lines."""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from ..models import LoadedModel, load
from ..models.spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from . import recipes
from .config import RenderConfig
from .objectives import Objective, class_logit, parse
from .render import RenderResult, render


def resolve_model(model, spec: InputSpec | None = None, device=None) -> tuple[nn.Module, InputSpec, str]:
    """(module, input spec, name) from a name/path, a LoadedModel or an nn.Module (with ``spec``, or ImageNet's
    3x224x224 normalization when none is given)."""
    if model is None or isinstance(model, str):
        model = load(model, device=device)
    if isinstance(model, LoadedModel):
        return model.model, spec or model.spec, model.name
    if isinstance(model, nn.Module):
        if device is not None:
            model = model.to(device)
        return model, spec or InputSpec(3, (224, 224), IMAGENET_MEAN, IMAGENET_STD), type(model).__name__
    raise TypeError(f"model must be a name, a path, a LoadedModel or an nn.Module, got {type(model).__name__}")


def resolve_objectives(objectives, spec: InputSpec) -> list[Objective]:
    """Objectives from Objective values, class indices or text (see ``objectives.parse``); None: every class."""
    if objectives is None:
        if spec.num_classes is None:
            raise ValueError("the model's number of classes is unknown: name the objectives to render")
        return [class_logit(i, f"class:{spec.class_names[i]}" if spec.class_names else None)
                for i in range(spec.num_classes)]
    if isinstance(objectives, (Objective, str, int)):
        objectives = [objectives]
    resolved = []
    for item in objectives:
        if isinstance(item, Objective):
            resolved.append(item)
        elif isinstance(item, int):
            resolved.append(parse(str(item), spec.class_names))
        elif isinstance(item, str):
            resolved.append(parse(item, spec.class_names))
        else:
            raise TypeError(f"an objective must be an Objective, a class index or text, got {item!r}")
    _check_classes(resolved, spec)
    return resolved


def class_objectives(classes: Sequence[str] | None, spec: InputSpec) -> list[Objective]:
    """Class-logit objectives for class names or indices (None: every class); ValueError for unknown ones."""
    if classes is None:
        return resolve_objectives(None, spec)
    return resolve_objectives([c if str(c).isdigit() else f"class:{c}" for c in classes], spec)


def _check_classes(objectives: Sequence[Objective], spec: InputSpec) -> None:
    from .objectives import target_class

    for objective in objectives:
        index = target_class(objective)
        if index is not None and spec.num_classes is not None and not 0 <= index < spec.num_classes:
            raise ValueError(f"class {index} out of range: the model has {spec.num_classes} classes "
                             f"(0..{spec.num_classes - 1})")


def visualize(model, objectives=None, *, method: str = "proxygrad", slope: float = 0.075, steps: int | None = None,
              seeds: Sequence[int] = (0,), spec: InputSpec | None = None, device=None, recipe: str | None = None,
              **config) -> RenderResult:
    """Render every objective from every seed with ``method`` (relu, leaky, proxygrad, redirected,
    redirected-captum, softgate, guided).

    ``model``: a name (torchvision, timm, a checkpoint path, or None for the bundled default), a LoadedModel
    or an nn.Module. ``recipe`` ("paper", "lucent", "maco"; see recipes.py) starts from that recipe's settings
    (its own step count unless ``steps`` is given; ``spectrum=`` picks maco's magnitude); without it the
    settings are :class:`RenderConfig`'s (500 steps). Further keywords go to :class:`RenderConfig` and override
    the recipe's (lr, step_rule, parametrization, regularization, temperature, octaves, batch_size, ...;
    ``kinds="all"`` with ``smooth_variant``, ``pool_temperature``, ... for method proxygrad beyond ReLU).
    Images come back in [-1, 1], scored by the original network.
    """
    if recipe is not None:
        recipes.recipe(recipe)  # an unknown name fails before the model loads
    elif "spectrum" in config:
        raise ValueError("spectrum= goes with recipe='maco' (or give parametrization=Maco(spectrum=...))")
    if steps is not None:
        config["steps"] = steps
    module, spec, _ = resolve_model(model, spec, device)
    objectives = resolve_objectives(objectives, spec)
    jobs = [(o, s) for o in objectives for s in seeds]
    if recipe is None:
        render_config = RenderConfig(method=method, slope=slope, **config)
    else:
        render_config = recipes.recipe_config(recipe, spec, method=method, slope=slope, **config)
    return render(module, spec, [o for o, _ in jobs], [s for _, s in jobs], render_config, device=device)
