"""Recipes: the field's complete AM settings as presets, so that methods are compared like with like.

- ``paper`` (ProxyGrad, Section 5): pixels in [-1, 1], normalized gradient steps (lr 25 at 3x224x224, scaled
  to the image size), weak blur and small rotations after each step, 500 steps.
- ``lucent`` (Lucid/Lucent's ``render_vis`` defaults): decorrelated Fourier image, Adam lr 0.05, 512 steps,
  Lucent's standard transforms (the model sees them at its own size: Lucent's ``fixed_image_size``).
- ``maco`` (Fel et al. 2023, Horama): phase-only spectrum over a natural-image magnitude, NAdam lr 1.0, 1000
  steps, 6 random crops per step with a little noise, on an image buffer 1280/224 times the model's size
  (Horama's 1280 px buffer for 224 px models).

Every backward surrogate (``method``) combines with every recipe: :func:`recipe_config` returns the
:class:`RenderConfig`; keywords override any of its fields (``steps=``, ``batch_size=``, ...).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models.spec import InputSpec
from .config import RenderConfig
from .parametrizations import parametrization
from .presets import preset

MACO_BUFFER = 1280 / 224


@dataclass(frozen=True)
class Recipe:
    """One recipe's defaults: parametrization name, step rule, step size (None: the rule's default), steps,
    regularization preset and the image size relative to the model's input."""

    name: str
    parametrization: str
    step_rule: str
    lr: float | None
    steps: int
    regularization: str
    image_scale: float = 1.0

    def image_size(self, spec: InputSpec) -> tuple[int, int] | None:
        if self.image_scale == 1.0:
            return None
        return tuple(max(1, round(self.image_scale * s)) for s in spec.size)


RECIPES = {
    "paper": Recipe("paper", "pixel", "normalized", None, 500, "paper"),
    "lucent": Recipe("lucent", "fourier", "adam", 0.05, 512, "lucent"),
    "maco": Recipe("maco", "maco", "nadam", 1.0, 1000, "maco", MACO_BUFFER),
}


def recipe(name: str) -> Recipe:
    """The recipe called ``name``; ValueError listing the recipes otherwise."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_config(name: str, spec: InputSpec, *, spectrum: str | None = None, **changes) -> RenderConfig:
    """The RenderConfig of recipe ``name`` for a model with input ``spec``; ``spectrum`` is the maco recipe's
    magnitude (a shipped name or a file; None: the shipped one for the model's channels); ``changes``
    override fields (method, slope, temperature, steps, lr, batch_size, ...)."""
    chosen = recipe(name)
    options = {"spectrum": spectrum} if chosen.parametrization == "maco" else {}
    if spectrum is not None and not options:
        raise ValueError(f"recipe {name!r} has no spectrum: --spectrum goes with the maco recipe")
    settings = dict(parametrization=parametrization(chosen.parametrization, **options), step_rule=chosen.step_rule,
                    lr=chosen.lr, steps=chosen.steps, image_size=chosen.image_size(spec),
                    regularization=preset(chosen.regularization, model_size=tuple(spec.size)))
    settings.update(changes)
    return RenderConfig(**settings)
