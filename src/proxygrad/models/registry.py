"""``load()``: any model by name or file, with its :class:`InputSpec`.

Names, in the order they are tried:

- ``None`` or ``"digits"``: the bundled default (:mod:`proxygrad.models.digits`), 1x32x32, classes "0".."9";
  ``"digits-b"``: a second bundled digits model, trained independently (other seed, widths and depth).
- ``"arch=path/to/file.pt"``: architecture ``arch`` (any name below) with the weights in that file.
- ``"timm:<name>"``: a timm model (``timm.list_models()``; a pretrained tag ``name.tag`` is allowed).
- a path (has a ``/``, or ends in .pt/.pth/.ckpt/.bin/.safetensors, or exists): a checkpoint -- a whole pickled
  ``nn.Module`` (``torch.load(weights_only=False)``, only ever for files the user names), or a state dict that
  says its architecture (``{"arch": ..., "state_dict": ...}``) or fits the digits model.
  A checkpoint's ``"spec"`` entry (an :class:`InputSpec` or its ``to_dict()``) is the spec, whatever the source.
- a torchvision classification model (``torchvision.models.list_models(module=torchvision.models)``).
- a timm model name that torchvision does not have.

``weights``: a torchvision weights name (``"IMAGENET1K_V1"``, ``"DEFAULT"``, ``"ResNet18_Weights.IMAGENET1K_V1"``),
for timm ``"pretrained"``/``"DEFAULT"`` or a pretrained tag, or a local file (state dict or checkpoint dict).
Downloads go through torchvision/timm and their caches; offline they raise :class:`DownloadError`.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from . import digits as _digits
from .spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec, Normalized, closest

SOURCES = ("bundled", "torchvision", "timm", "checkpoint", "module")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".tar")
BUNDLED_NAMES = _digits.BUNDLED_MODELS  # "digits" (the default) and "digits-b" (a second, independent one)
ARCHITECTURES = ("pfnet18",)  # architectures that ship with proxygrad (no weights): proxygrad.models.pfnet
_STATE_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "weights")
_STRIP_PREFIXES = ("module.", "_orig_mod.")


class DownloadError(ConnectionError):
    """Weights could not be downloaded (usually: no internet). Subclass of ``ConnectionError`` / ``OSError``."""


@dataclass
class LoadedModel:
    """A network and what it expects.

    Attributes:
        model: the ORIGINAL network (no normalization inside), eval mode, on the requested device.
        spec: its :class:`InputSpec`; images in [-1, 1] map to its input through ``spec.to_model_input``.
        name: what was loaded, e.g. "digits", "resnet18", "timm:resnet10t" or a file path.
        source: one of "bundled", "torchvision", "timm", "checkpoint", "module".
    """

    model: nn.Module
    spec: InputSpec
    name: str
    source: str

    def normalized(self) -> Normalized:
        """The model behind its normalization: forward takes (B, C, H, W) images in [-1, 1]."""
        return Normalized(self.model, self.spec)

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter or buffer (CPU for a model with neither)."""
        for t in list(self.model.parameters()) + list(self.model.buffers()):
            return t.device
        return torch.device("cpu")

    def check_size(self, size: int | tuple[int, int] | None = None) -> None:
        """Run one zero image of ``size`` (default ``spec.size``) through the model; ValueError naming the model
        and size when it cannot take it (e.g. a ViT with a fixed size, or an image too small to pool)."""
        h, w = InputSpec(self.spec.channels, size or self.spec.size, self.spec.mean, self.spec.std).size
        x = torch.zeros(1, self.spec.channels, h, w, device=self.device)
        dtype = next((p.dtype for p in self.model.parameters()), torch.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                self.model(x.to(dtype))
        except Exception as err:  # shape errors come as RuntimeError, AssertionError, ValueError, ...
            raise ValueError(f"model {self.name} cannot take {self.spec.channels}x{h}x{w} inputs: "
                             f"{type(err).__name__}: {_digits._short(err, 300)}") from err
        finally:
            self.model.train(was_training)


# ---- names ---------------------------------------------------------------------------------------------------
def torchvision_names() -> list[str]:
    """Classification model names of torchvision (``torchvision.models.list_models(module=torchvision.models)``)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def timm_names() -> list[str]:
    """Architecture names of timm (``timm.list_models()``), without pretrained tags."""
    import timm

    return list(timm.list_models())


def available() -> list[str]:
    """Every model name ``load`` accepts (besides file paths): "digits", torchvision names, "timm:<name>"."""
    return list(BUNDLED_NAMES + ARCHITECTURES) + torchvision_names() + [f"timm:{n}" for n in timm_names()]


def _unknown(name: str) -> ValueError:
    tv, tm = torchvision_names(), timm_names()
    near = closest(name, list(dict.fromkeys(list(BUNDLED_NAMES + ARCHITECTURES) + tv + tm)))
    near = [n if n in tv or n in BUNDLED_NAMES + ARCHITECTURES else f"timm:{n}" for n in near]
    hint = f"closest names: {', '.join(near)}. " if near else ""
    return ValueError(
        f"unknown model {name!r}. {hint}Valid: 'digits' (the bundled default) or 'digits-b' (a second bundled "
        f"model); one of {len(tv)} torchvision classification models (torchvision.models.list_models()); one of {len(tm)} timm models as "
        f"'timm:<name>' (timm.list_models()); a checkpoint file path ({', '.join(CHECKPOINT_SUFFIXES)}); or "
        f"'arch=path/to/weights.pt'. proxygrad.models.available() lists all names."
    )


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.lower().endswith(CHECKPOINT_SUFFIXES)


# ---- files ---------------------------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> Any:
    """The object stored in a user-named file: ``torch.load`` with ``weights_only=True`` first, then (only
    because the user named the file) ``weights_only=False`` for pickled modules; ``.safetensors`` through
    safetensors. FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist" + ("" if path.parent.is_dir() else
                                f" (no folder {path.parent})"))
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ValueError(f"{path}: reading .safetensors needs the 'safetensors' package") from None
        try:
            return load_file(str(path))
        except Exception as err:
            raise ValueError(f"cannot read weights file {path} (corrupt safetensors?): {err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        if not isinstance(first, pickle.UnpicklingError):  # refused globals (a pickled module) come as this
            raise ValueError(f"cannot read model file {path}: not a PyTorch file or corrupt "
                             f"({type(first).__name__}: {_digits._short(first, 200)})") from first
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"model file {path} holds a pickled object whose class cannot be imported here "
                         f"({err}); save a state dict instead and load it as 'arch={path}'") from err
    except Exception as err:
        raise ValueError(f"cannot read model file {path}: not a PyTorch file or corrupt "
                         f"({type(err).__name__}: {_digits._short(err, 200)})") from err


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DataParallel ``module.`` / torch.compile ``_orig_mod.`` prefixes shared by every key."""
    for prefix in _STRIP_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def unwrap_checkpoint(obj: Any, path: str | Path) -> tuple[nn.Module | dict[str, torch.Tensor], dict]:
    """(module or state dict, metadata) from what a file holds: a module, a state dict, or a checkpoint dict
    with one of the keys ``state_dict``/``model_state_dict``/``model``/... plus metadata such as ``arch``,
    ``class_names``/``classes``, ``spec``, ``num_classes``."""
    if isinstance(obj, nn.Module):
        return obj, {}
    if _is_state_dict(obj):
        return _strip(obj), {}
    if isinstance(obj, dict):
        for key in _STATE_KEYS:
            if key in obj and (isinstance(obj[key], nn.Module) or _is_state_dict(obj[key])):
                meta = {k: v for k, v in obj.items() if k != key}
                inner = obj[key]
                return (inner if isinstance(inner, nn.Module) else _strip(inner)), meta
    kind = type(obj).__name__ if not isinstance(obj, dict) else f"dict with keys {sorted(map(str, obj))[:8]}"
    raise ValueError(f"model file {path} holds a {kind}; expected a state dict (name -> tensor), a checkpoint "
                     f"dict with one of {list(_STATE_KEYS)}, or a whole nn.Module")


def _read_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    obj, meta = unwrap_checkpoint(read_checkpoint(path), path)
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    return obj, meta


def _mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list, list, list]:
    """(missing keys, unexpected keys, [(key, file shape, model shape)]) between a model and a state dict."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return missing, unexpected, shapes


def _head_size(shapes: list) -> int | None:
    """The class count a state dict implies when its only differences are the output layer's leading dim."""
    if not shapes or len(shapes) > 2:
        return None
    sizes = {f[0] for _, f, m in shapes if len(f) == len(m) and f[1:] == m[1:]}
    return sizes.pop() if len(sizes) == 1 and all(len(f) == len(m) for _, f, m in shapes) else None


def _describe(missing: list, unexpected: list, shapes: list) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (e.g. " + ", ".join(
            f"{k}: file {list(f)} vs model {list(m)}" for k, f, m in shapes[:3]) + ")")
    return "; ".join(parts)


def load_state_into(build: Callable[[int | None], nn.Module], state: dict[str, torch.Tensor], path: str | Path,
                    arch: str, num_classes: int | None) -> nn.Module:
    """``build(num_classes)`` and load ``state`` strictly. When ``num_classes`` is None and only the head's class
    count differs, the model is rebuilt with the file's count. ValueError naming the file otherwise."""
    model = build(num_classes)
    missing, unexpected, shapes = _mismatch(model, state)
    if num_classes is None and not missing and not unexpected and _head_size(shapes):
        model = build(_head_size(shapes))
        missing, unexpected, shapes = _mismatch(model, state)
    if missing or unexpected or shapes:
        raise ValueError(f"weights file {path} does not match the architecture {arch}: "
                         f"{_describe(missing, unexpected, shapes)}")
    model.load_state_dict(state, strict=True)
    return model


# ---- specs ---------------------------------------------------------------------------------------------------
def _out_features(model: nn.Module) -> int | None:
    """Output count of the last Linear layer, or None."""
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last.out_features if last is not None else None


def guess_spec(model: nn.Module, meta: dict | None = None) -> InputSpec:
    """Spec of a model that does not declare one: ``meta["spec"]`` when present, else channels from the first
    conv/linear layer, 224 x 224, ImageNet mean/std for 3 channels and 0.5/0.5 otherwise, class names from
    ``meta["class_names"]``/``meta["classes"]``, class count from the last Linear layer."""
    meta = meta or {}
    stored = stored_spec(meta)
    if stored is not None:
        return stored
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
    channels = getattr(first, "in_channels", 3) if isinstance(first, nn.Conv2d) else 3
    names = meta.get("class_names", meta.get("classes"))
    names = tuple(map(str, names)) if isinstance(names, (list, tuple)) else None
    n = _out_features(model)
    if names is not None and n is not None and len(names) != n:
        names = None
    if channels == 3:
        return InputSpec.imagenet(224, class_names=names, num_classes=None if names else n)
    return InputSpec(channels, (224, 224), (0.5,) * channels, (0.5,) * channels, names, None if names else n)


def stored_spec(meta: dict, path: str | Path | None = None) -> InputSpec | None:
    """The spec a checkpoint stores as ``meta["spec"]`` (an :class:`InputSpec` or its ``to_dict()``), or None;
    ValueError (naming ``path`` when given) when it is not a valid spec."""
    spec = meta.get("spec")
    if spec is None or isinstance(spec, InputSpec):
        return spec
    where = f"model file {path}" if path is not None else "checkpoint metadata"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: 'spec' must be an InputSpec or its dict (InputSpec.to_dict()), "
                         f"got {type(spec).__name__}")
    try:
        return InputSpec.from_dict(spec)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: its 'spec' is not a valid InputSpec ({err})") from None


def _with_stored_spec(loaded: LoadedModel, meta: dict, path: str | Path) -> LoadedModel:
    """``loaded`` with the checkpoint's stored spec in place of the source's default (unchanged without one);
    ValueError when the stored class count differs from the model's outputs."""
    spec = stored_spec(meta, path)
    if spec is None:
        return loaded
    outputs = _out_features(loaded.model)
    if spec.num_classes is not None and outputs is not None and spec.num_classes != outputs:
        raise ValueError(f"model file {path}: its spec has {spec.num_classes} classes but the model has "
                         f"{outputs} outputs")
    return LoadedModel(loaded.model, spec, loaded.name, loaded.source)


# ---- sources -------------------------------------------------------------------------------------------------
def _download_error(what: str, err: Exception, url: str | None, cache: str) -> DownloadError:
    where = f" from {url}" if url else ""
    return DownloadError(
        f"could not download the weights {what}{where}: {type(err).__name__}: {_digits._short(err, 200)}. "
        f"This machine may have no internet access. Download the file elsewhere and either put it in {cache} "
        f"(found there offline) or pass it as a local file: weights='path/to/file.pth'."
    )


def _load_bundled(name: str, weights: str | None, num_classes: int | None) -> LoadedModel:
    if weights is not None and weights.lower() in ("default", "bundled"):
        weights = None
    if weights is None:
        if num_classes not in (None, 10):
            raise ValueError(f"the bundled {name} weights have 10 classes, got num_classes={num_classes}")
        return LoadedModel(_digits.load_digits_model(name=name), _digits.digits_spec(32), name, "bundled")
    state, meta = _read_state(weights)
    return _with_stored_spec(_digits_from_state(state, weights, num_classes, "bundled"), meta, weights)


def _digits_from_state(state: dict, path: str, num_classes: int | None, source: str) -> LoadedModel:
    """A DigitsResNet (widths read from the state dict) with the weights of ``path``."""
    widths = _digits._widths_from_state(state) or (16, 32, 64)
    model = load_state_into(lambda n: _digits.DigitsResNet(widths, num_classes=n or 10), state, path,
                            f"digits (DigitsResNet, widths {widths})", num_classes)
    spec = _digits.digits_spec(32)
    if _out_features(model) != 10:
        spec = spec.replace(class_names=None, num_classes=_out_features(model))
    return LoadedModel(model, spec, str(path), source)


def _torchvision_weights(name: str, weights: str):
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    key = weights.split(".", 1)[1] if weights.startswith(enum.__name__ + ".") else weights
    members = list(enum.__members__)
    if key not in members:
        raise ValueError(f"unknown weights {weights!r} for torchvision {name}; valid: {', '.join(members)} "
                         f"or a local file path")
    return enum[key]


def _tv_spec(model: nn.Module, w, class_names) -> InputSpec:
    t = w.transforms()
    crop = getattr(t, "crop_size", [224])
    size = int(crop[0]) if isinstance(crop, (list, tuple)) else int(crop)
    if isinstance(getattr(model, "image_size", None), int):  # e.g. ViT: fixed size, set by the builder
        size = model.image_size
    mean, std = tuple(getattr(t, "mean", IMAGENET_MEAN)), tuple(getattr(t, "std", IMAGENET_STD))
    return InputSpec(3, (size, size), mean, std, class_names, None if class_names else _out_features(model))


def _load_torchvision(name: str, weights: str | None, num_classes: int | None) -> LoadedModel:
    import torchvision.models as tvm

    kw = lambda n: {} if n is None else {"num_classes": n}
    default = tvm.get_model_weights(name).DEFAULT
    if weights is None or _is_file_arg(weights):
        if weights is None:
            model = tvm.get_model(name, weights=None, **kw(num_classes))
        else:
            state, meta = _read_state(weights)
            model = load_state_into(lambda n: tvm.get_model(name, weights=None, **kw(n)), state, weights, name,
                                    num_classes)
            names = meta.get("class_names", meta.get("classes"))
            fits = isinstance(names, (list, tuple)) and len(names) == _out_features(model)
            spec = _tv_spec(model, default, tuple(map(str, names)) if fits else None)
            return _with_stored_spec(LoadedModel(model, spec, name, "torchvision"), meta, weights)
        return LoadedModel(model, _tv_spec(model, default, None), name, "torchvision")
    w = _torchvision_weights(name, weights)
    categories = tuple(w.meta.get("categories") or ()) or None
    if num_classes is not None and categories is not None and num_classes != len(categories):
        raise ValueError(f"weights {w} have {len(categories)} classes, not num_classes={num_classes}; drop "
                         f"num_classes or load without weights")
    try:
        model = tvm.get_model(name, weights=w)
    except (OSError, RuntimeError) as err:
        raise _download_error(f"{type(w).__name__}.{w.name} of torchvision {name}", err, w.url,
                              f"{torch.hub.get_dir()}/checkpoints") from err
    return LoadedModel(model, _tv_spec(model, w, categories), name, "torchvision")


def _timm_label_names(model: nn.Module) -> tuple[str, ...] | None:
    """ImageNet class names of a pretrained timm model (short form, as torchvision's), or None."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(model)
        if not subset:
            return None
        info = ImageNetInfo(subset)
        return tuple(info.index_to_description(i).split(",")[0] for i in range(info.num_classes()))
    except Exception:  # names are a convenience: never fail a load on them
        return None


def _timm_spec(model: nn.Module, class_names) -> InputSpec:
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    c, h, w = cfg["input_size"]
    if class_names is not None and len(class_names) != _out_features(model):
        class_names = None
    return InputSpec(c, (h, w), tuple(cfg["mean"]), tuple(cfg["std"]), class_names,
                     None if class_names else _out_features(model))


def _load_timm(name: str, weights: str | None, num_classes: int | None) -> LoadedModel:
    import timm

    arch = name.split(".", 1)[0]
    if arch not in timm_names():
        near = closest(arch, timm_names())
        raise ValueError(f"unknown timm model {name!r}; " + (f"closest: {', '.join(near)}. " if near else "")
                         + "timm.list_models() lists the valid names")
    kw = lambda n: {} if n is None else {"num_classes": n}
    label = f"timm:{name}"
    if weights is None:
        model = timm.create_model(name, pretrained=False, **kw(num_classes))
        return LoadedModel(model, _timm_spec(model, None), label, "timm")
    if _is_file_arg(weights):
        state, meta = _read_state(weights)
        model = load_state_into(lambda n: timm.create_model(name, pretrained=False, **kw(n)), state, weights,
                                label, num_classes)
        names = meta.get("class_names", meta.get("classes"))
        spec = _timm_spec(model, tuple(map(str, names)) if names else None)
        return _with_stored_spec(LoadedModel(model, spec, label, "timm"), meta, weights)
    tagged = name if weights.lower() in ("pretrained", "default", "true") else f"{arch}.{weights}"
    if weights.lower() not in ("pretrained", "default", "true") and tagged not in timm.list_models(pretrained=True):
        tags = [n.split(".", 1)[1] for n in timm.list_models(arch, pretrained=True) if "." in n]
        raise ValueError(f"unknown weights {weights!r} for timm {arch}; valid: 'pretrained', "
                         f"{', '.join(tags) or '(no pretrained tags)'}, or a local file path")
    try:
        model = timm.create_model(tagged, pretrained=True, **kw(num_classes))
    except Exception as err:  # huggingface_hub / urllib raise many kinds when offline
        raise _download_error(f"of timm {tagged}", err, None, "the Hugging Face hub cache (~/.cache/huggingface)") \
            from err
    return LoadedModel(model, _timm_spec(model, _timm_label_names(model)), f"timm:{tagged}", "timm")


def _load_architecture(name: str, weights: str | None, num_classes: int | None) -> LoadedModel:
    """PFNet18 (:mod:`proxygrad.models.pfnet`), randomly initialized or with the weights of a local file."""
    from .pfnet import pfnet18

    build = lambda n: pfnet18(num_classes=n or 1000)
    meta: dict = {}
    if weights is None:
        model = build(num_classes)
    elif _is_file_arg(weights):
        state, meta = _read_state(weights)
        model = load_state_into(build, state, weights, name, num_classes)
    else:
        raise ValueError(f"{name} has no downloadable weights; pass a local weights file")
    names = meta.get("class_names", meta.get("classes"))
    names = tuple(map(str, names)) if isinstance(names, (list, tuple)) and len(names) == _out_features(model) else None
    spec = InputSpec.imagenet(224, class_names=names, num_classes=None if names else _out_features(model))
    return _with_stored_spec(LoadedModel(model, spec, name, "bundled"), meta, weights)


def _load_checkpoint(path: str, num_classes: int | None) -> LoadedModel:
    obj, meta = unwrap_checkpoint(read_checkpoint(path), path)
    if isinstance(obj, Normalized):
        loaded = _with_stored_spec(LoadedModel(obj.model, obj.spec, path, "checkpoint"), meta, path)
    elif isinstance(obj, nn.Module):
        loaded = _with_stored_spec(LoadedModel(obj, guess_spec(obj, meta), path, "checkpoint"), meta, path)
    elif isinstance(meta.get("arch"), str):
        inner = load(meta["arch"], weights=path, num_classes=num_classes)  # its loader applies the stored spec
        return _with_stored_spec(LoadedModel(inner.model, inner.spec, path, "checkpoint"), meta, path)
    elif _digits._widths_from_state(obj) is not None and "stem.0.weight" in obj:
        return _with_stored_spec(_digits_from_state(obj, path, num_classes, "checkpoint"), meta, path)
    else:
        raise ValueError(f"model file {path} holds a state dict ({len(obj)} tensors) without its architecture; "
                         f"name it: load('resnet18={path}') or load('resnet18', weights='{path}')")
    if num_classes is not None and _out_features(loaded.model) not in (None, num_classes):
        raise ValueError(f"model file {path} has {_out_features(loaded.model)} outputs, not num_classes={num_classes}")
    return loaded


def _is_file_arg(weights: str) -> bool:
    return _looks_like_path(weights) or Path(weights).is_file()


def from_module(model: nn.Module, spec: InputSpec | None = None, *, name: str | None = None,
                device: torch.device | str | None = None) -> LoadedModel:
    """Any ``nn.Module`` as a :class:`LoadedModel` (eval mode); ``spec`` guessed by :func:`guess_spec` if None."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, Normalized):
        spec, model = spec or model.spec, model.model
    spec = spec or guess_spec(model)
    model = model.to(device) if device is not None else model
    return LoadedModel(model.eval(), spec, name or type(model).__name__, "module")


def load(name: str | nn.Module | None = None, *, weights: str | None = None,
         device: torch.device | str | None = None, num_classes: int | None = None) -> LoadedModel:
    """Load a model and its input spec; see the module docstring for the accepted names and weights.

    Args:
        name: None/"digits", a torchvision or timm name, "timm:<name>", "arch=path", a file path, or an nn.Module.
        weights: weights name to download (torchvision enum member / timm "pretrained" or tag) or a local file.
        device: where to put the model (it stays on the CPU when None).
        num_classes: output count for models built without downloaded weights (inferred from a weights file).

    Returns:
        :class:`LoadedModel` with the original network in eval mode.

    Raises:
        ValueError: unknown name (with the closest names), weights that do not fit, corrupt file (named).
        FileNotFoundError: a named file that does not exist.
        DownloadError: weights that could not be downloaded (no internet).
    """
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")
    if weights is not None and not isinstance(weights, (str, Path)):
        raise ValueError(f"weights must be a name or a file path, got {type(weights).__name__}")
    weights = str(weights) if weights is not None else None
    if isinstance(name, nn.Module):
        if weights is not None:
            raise ValueError("weights cannot be combined with an nn.Module; load its state dict yourself")
        return from_module(name, device=device)
    loaded = _dispatch(name.strip() if isinstance(name, str) else name, weights, num_classes)
    if device is not None:
        loaded.model.to(device)
    loaded.model.eval()
    return loaded


def _dispatch(name: str | None, weights: str | None, num_classes: int | None) -> LoadedModel:
    if name is not None and not isinstance(name, str):
        raise ValueError(f"model name must be a string, an nn.Module or None, got {type(name).__name__}")
    if name is None or name.lower() in BUNDLED_NAMES:
        return _load_bundled((name or "digits").lower(), weights, num_classes)
    if "=" in name:
        arch, path = (s.strip() for s in name.split("=", 1))
        if weights is not None:
            raise ValueError(f"model {name!r} already names its weights file; drop weights={weights!r}")
        if not arch or not path:
            raise ValueError(f"expected 'arch=path/to/weights.pt', got {name!r}")
        return _dispatch(arch, path, num_classes)
    if name.lower().startswith("timm:"):
        return _load_timm(name[5:], weights, num_classes)
    if _looks_like_path(name) or (Path(name).is_file() and name not in torchvision_names()):
        if weights is not None:
            raise ValueError(f"{name!r} is a file; weights={weights!r} applies to a named architecture only")
        return _load_checkpoint(name, num_classes)
    if name.lower() in ARCHITECTURES:
        return _load_architecture(name.lower(), weights, num_classes)
    if name in torchvision_names():
        return _load_torchvision(name, weights, num_classes)
    if name.split(".", 1)[0] in timm_names():
        return _load_timm(name, weights, num_classes)
    raise _unknown(name)
