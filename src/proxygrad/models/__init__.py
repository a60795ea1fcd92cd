"""Models and what they expect: ``load()`` returns a network with its :class:`InputSpec`.

Sources: the bundled default ("digits", a small ResNet trained on scikit-learn's digits), torchvision and timm
models by name, checkpoint files, or any ``nn.Module`` (:func:`from_module`). Images in proxygrad live in
[-1, 1]; ``spec.to_model_input`` (or :class:`Normalized`) maps them to each model's own normalization.
"""
from .digits import DigitsResNet, digits_data, digits_spec, load_digits_model
from .registry import DownloadError, LoadedModel, available, from_module, load, read_checkpoint
from .spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, Normalized

__all__ = [
    "DigitsResNet", "DownloadError", "IMAGENET_MEAN", "IMAGENET_STD", "InputSpec", "LoadedModel", "Normalized",
    "available", "digits_data", "digits_spec", "from_module", "load", "load_digits_model", "read_checkpoint",
]
