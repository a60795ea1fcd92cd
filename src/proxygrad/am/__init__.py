"""Activation maximization: objectives, parametrization, regularization and the rendering loop."""
from . import objectives
from .config import Octave, Regularization, RenderConfig
from .objectives import Objective, channel, class_logit, l2_penalty, neuron, parse
from .render import RenderResult, render

__all__ = ["Objective", "Octave", "Regularization", "RenderConfig", "RenderResult", "channel", "class_logit",
           "l2_penalty", "neuron", "objectives", "parse", "render"]
