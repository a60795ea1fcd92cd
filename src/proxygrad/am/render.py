"""The one activation-maximization loop (paper Section 5; seeds 002 and 004).

Images live in [-1, 1]^(C, H, W). Each image has its own objective and its own seed; a batch renders many
at once and gives the same images as rendering them one at a time, because every random number an image
uses (its initial noise, its transforms) comes from its own generator.

The optimizer changes a parameter p: the image itself (``pixel``, the paper's) or a spectrum it is made from
(``fourier``, ``maco``; see parametrizations.py), x = image(p). One step, for every image of the batch:
    g  = d objective(original-forward, proxy-backward) / d p       (through the random input transforms;
                                                                    a multi-view transform such as MACO's
                                                                    crops scores the mean over the views)
    g  = fluid filter of g                                          (scheme, optional; pixel only)
    d  = lr * g / ||g||_2 (normalized, the paper's) | lr * g (plain) | Adam(g) | NAdam(g)
    p  = p + d; pixel only: p = clamp(after_step(elastic filter of p), -1, 1)  (after_step: blur + rotation)
An image whose gradient is zero or not finite is left unchanged for that step, and the step is counted.
Every score reported is computed by the ORIGINAL network (never by the proxy).
The loop's settings live in config.py, its update rules in steppers.py, its CPU environment in runtime.py.
"""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..models.spec import InputSpec
from ..surrogates import patched
from ..surrogates.patch import RECTIFIER_MODULES, SMOOTH_MODULES
from .config import Octave, Regularization, RenderConfig
from .objectives import (
    INPUT,
    OUTPUT,
    Capturer,
    Objective,
    batch_scores,
    check_layers,
    run_and_capture,
)
from .runtime import cpu_threads, deterministic_cpu, frozen_eval
from .steppers import Stepper

__all__ = ["Octave", "Regularization", "RenderConfig", "RenderResult", "all_uniforms", "bytes_per_image",
           "image_generators", "images_per_batch", "proxy_network", "render"]  # settings re-exported from config


@dataclass
class RenderResult:
    """Images (N, C, H, W) in [-1, 1] on the CPU with, per image: its objective's name, seed, the ORIGINAL
    network's final objective value and predicted class, the value every ``trace_every`` steps (N, T) at
    ``trace_steps``, and how many steps had a zero or non-finite gradient. ``transparency`` (N, C, H, W) >= 0,
    like ``images``: the sum over steps of |d objective / d image| when ``config.transparency``, else None."""

    images: Tensor
    objectives: list[str]
    seeds: list[int]
    activation: Tensor
    predicted: Tensor
    trace: Tensor
    trace_steps: list[int]
    zero_gradient_steps: Tensor
    nonfinite_gradient_steps: Tensor
    seconds: float
    config: RenderConfig
    batch_size: int
    transparency: Tensor | None = None

    def records(self) -> list[dict]:
        return [{"objective": o, "seed": s, "activation": float(a), "predicted": int(p),
                 "zero_gradient_steps": int(z), "nonfinite_gradient_steps": int(n)}
                for o, s, a, p, z, n in zip(self.objectives, self.seeds, self.activation.tolist(),
                                            self.predicted.tolist(), self.zero_gradient_steps.tolist(),
                                            self.nonfinite_gradient_steps.tolist())]


def image_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One generator per image for its transforms, independent of the one that drew its initial noise."""
    return [torch.Generator().manual_seed(int(s) * 7919 + 104729) for s in seeds]


def proxy_network(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s modules that shares all its parameters and buffers (the paper's proxy)."""
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)

def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize to ``size``, antialiased when shrinking (a large image seen whole, e.g. MACO's buffer)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=_shrinks(x, size))


def _shrinks(x: Tensor, size: tuple[int, int]) -> bool:
    """True when resizing x (..., H, W) to ``size`` makes it smaller along an axis."""
    return size[0] < x.shape[-2] or size[1] < x.shape[-1]


def _split(u: Tensor, regularization: Regularization) -> tuple[Tensor, Tensor]:
    k = regularization.augment.n_random if regularization.augment is not None else 0
    return u[:, :k], u[:, k:]


def all_uniforms(n_random: int, generators: Sequence[torch.Generator], steps: int, device, dtype) -> Tensor:
    """Every uniform random number a batch needs, (steps, B, n_random) in [0, 1), drawn up front from each
    image's own generator (one transfer to the device; no host round trip inside the loop)."""
    rows = [torch.rand(steps, n_random, generator=g) for g in generators]
    return torch.stack(rows, 1).to(device=device, dtype=dtype)


def _autocast(config: RenderConfig, device):
    if config.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _normalizer(spec: InputSpec, like: Tensor, channels_last: bool = False):
    """``spec.to_model_input`` with its mean and std moved to the device once (not at every step)."""
    mean, std = (torch.tensor(v, dtype=like.dtype).view(-1, 1, 1).to(like.device) for v in (spec.mean, spec.std))

    def to_model_input(images: Tensor) -> Tensor:
        model_input = ((images + 1) * 0.5 - mean) / std
        return model_input.contiguous(memory_format=torch.channels_last) if channels_last else model_input

    return to_model_input


def _patch(proxy: nn.Module, config: RenderConfig, slope: float, functional: bool = True):
    """The proxy patched for ``config.method`` with backward slope ``slope`` and ``config.kinds`` with their
    settings (a context manager); ``functional=False`` leaves functional calls alone (no TorchFunctionMode
    around the forward)."""
    options = dict(config.proxy_options, kinds=config.kinds)
    if config.method == "softgate":
        options["temperature"] = config.temperature
    return patched(proxy, config.method, slope, functional=functional, **options)


def _patched_for_step(proxy: nn.Module, config: RenderConfig, step: int, functional: bool):
    """With a slope schedule, the proxy patched with this step's slope; otherwise a no-op (the proxy is then
    patched once for the whole rendering)."""
    if config.slope_schedule == "constant":
        return contextlib.nullcontext()
    return _patch(proxy, config, config.slope_at(step), functional)


_FUNCTIONS = {"rectifiers": "rectifier functions (F.relu, torch.relu, ...)",
              "smooth": "smooth activation functions (F.gelu, F.silu, ...)",
              "pooling": "max pooling functions (F.max_pool2d, ...)"}


def _functional(proxy: nn.Module, spec: InputSpec, config: RenderConfig, device) -> bool:
    """Whether the proxy needs ``patched``'s TorchFunctionMode (which intercepts every torch call of every
    step): one forward of a gray image, patched, counts its functional calls of the selected kinds
    (``F.relu``, ``F.gelu``, ``F.max_pool2d``, ...).
    Not needed when it made none and the patch swapped modules; needed otherwise (e.g. a model without
    rectifier modules keeps today's behaviour). ValueError with ``compile=True`` when it made any."""
    if config.method == "relu":
        return False
    x = torch.zeros(1, spec.channels, *spec.size, device=device)
    with torch.no_grad(), _patch(proxy, config, config.slope) as record:
        proxy(x)
    if config.compile and record.functional_calls:
        kinds = [k for k in config.kinds if record.calls_by_kind.get(k)]
        raise ValueError(f"compile=True: the model's forward calls {' and '.join(_FUNCTIONS[k] for k in kinds)}, "
                         "which cannot be rerouted to their proxies inside a compiled forward; use modules "
                         "(nn.ReLU, nn.GELU, nn.MaxPool2d, ...) or compile=False")
    return record.functional_calls > 0 or (record.modules == 0 and not config.compile)


def _out_of_place(proxy: nn.Module) -> None:
    """Make the proxy copy's rectifier and smooth activation modules out of place: an in-place proxy
    (``mark_dirty``) breaks torch.compile's graph. Same values; the original network is not touched."""
    for module in proxy.modules():
        if isinstance(module, RECTIFIER_MODULES + SMOOTH_MODULES) and hasattr(module, "inplace"):
            module.inplace = False


@contextlib.contextmanager
def _proxy_forward(proxy: nn.Module, layers: frozenset[str], config: RenderConfig):
    """A function (images, model input) -> capture of the patched proxy for the whole rendering. Hooks are
    registered once (compiled with ``config.compile``); with a slope schedule they are registered per call,
    because each step swaps the proxy's rectifier modules."""
    if config.slope_schedule != "constant":
        yield lambda images, model_input: run_and_capture(proxy, images, model_input, layers)
        return
    with Capturer(proxy, layers) as capturer:
        if config.compile:
            capturer.forward = torch.compile(capturer.forward, dynamic=False, mode=config.compile_mode)
        yield capturer


def _score(capture_original: Capturer, to_input, objectives: Sequence[Objective],
           x: Tensor) -> tuple[Tensor, Tensor]:
    """ORIGINAL network in float32: (objective value per image, predicted class per image), no gradient."""
    with torch.no_grad():
        capture = capture_original(x, to_input(x))
        return batch_scores(objectives, capture), capture[OUTPUT].flatten(1).argmax(1)


def _views(objectives: Sequence[Objective], images: Tensor, views: int) -> tuple[list[Objective], Tensor]:
    """Objectives and images repeated for ``views`` model inputs per image (row b * views + v is image b)."""
    if views == 1:
        return list(objectives), images
    repeated = [o for o in objectives for _ in range(views)]
    if any(INPUT in o.layers for o in objectives):  # image penalties read the images
        return repeated, images.repeat_interleave(views, 0)
    return repeated, images[:1].expand(views * len(images), *images.shape[1:])  # unread: a view, no copy


def _ascent_value(forward, full, to_input, reg: Regularization, x: Tensor, u_augment: Tensor,
                  model_size: tuple[int, int]) -> Tensor:
    """(B,) objective values of the proxy (``forward``: see :func:`_proxy_forward`; through the input
    transforms; mean over views)."""
    seen = reg.augment.apply(x, u_augment) if reg.augment is not None else x
    views = seen.shape[0] // x.shape[0]
    objectives, images = _views(full, x, views)
    capture = forward(images, to_input(_resize(seen, model_size)))
    return batch_scores(objectives, capture).float().view(x.shape[0], views).mean(1)


def _layers(objectives: Sequence[Objective]) -> frozenset[str]:
    return frozenset().union(*(o.layers for o in objectives))


def _render_batch(score_original, forward, proxy, spec, objectives, seeds, config, device, bar,
                  functional) -> dict:
    penalties = config.regularization.penalties()
    full = [sum([o, *penalties]) if penalties else o for o in objectives]
    generators = image_generators(seeds)
    reg, param = config.regularization, config.parametrization
    base_size = tuple(config.image_size or spec.size)
    p = param.init(spec, seeds, base_size, config.init_sigma, device, start=config.init_image)
    trace, trace_steps, step_index = [], [], 0
    stepper = Stepper(config.step_rule, p)
    to_input, score_input = _normalizer(spec, p, config.channels_last), _normalizer(spec, p)
    score = lambda q, size: _score(score_original, score_input, objectives, _resize(param.image(q, size), spec.size))
    uniforms = all_uniforms(reg.n_random, generators, sum(o.steps for o in config.schedule()), device, p.dtype)
    size, alpha = base_size, None
    for octave in config.schedule():
        if param.pixel_space:
            size = tuple(max(1, round(octave.scale * s)) for s in base_size)
            p = _resize(p, size).clamp(-1, 1)
            alpha = None if alpha is None else _resize(alpha, size)
            if stepper.moment1 is not None and stepper.moment1.shape != p.shape:
                stepper = Stepper(config.step_rule, p)
        lr = config.step_size(octave, p[0].numel())
        for _ in range(octave.steps):
            if step_index % config.trace_every == 0:
                trace.append(score(p, size)[0])
                trace_steps.append(step_index)
            u_augment, u_after = _split(uniforms[step_index], reg)
            p = p.detach().requires_grad_(True)
            with _patched_for_step(proxy, config, step_index, functional), _autocast(config, device):
                x = param.image(p, size)
                value = _ascent_value(forward, full, to_input, reg, x, u_augment, spec.size)
                if config.transparency:
                    g, g_image = torch.autograd.grad(value.sum(), (p, x))
                    alpha = g_image.abs() if alpha is None else alpha + g_image.abs()
                else:
                    (g,) = torch.autograd.grad(value.sum(), p)
            step = stepper.update(reg.scheme.filter_update(g), lr)
            with torch.no_grad():
                p = p + step
                if param.pixel_space:
                    p = reg.scheme.filter_image(p)
                    if reg.after_step is not None:
                        p = reg.after_step.apply(p, u_after)
                    p = p.clamp(-1, 1)
            step_index += 1
            bar.update(len(seeds))
    p = p.detach()
    if param.pixel_space:
        p, size = _resize(p, base_size).clamp(-1, 1), base_size
        alpha = None if alpha is None else _resize(alpha, base_size)
    activation, predicted = score(p, size)
    trace.append(activation)
    trace_steps.append(step_index)
    with torch.no_grad():
        images = param.image(p, size)
    return {"images": images.cpu(), "activation": activation.cpu(), "predicted": predicted.cpu(),
            "trace": torch.stack(trace, 1).cpu(), "trace_steps": trace_steps,
            "zero": stepper.zero.cpu(), "nonfinite": stepper.nonfinite.cpu(),
            "transparency": None if alpha is None else alpha.float().cpu()}


def bytes_per_image(proxy: nn.Module, spec: InputSpec, layers: frozenset[str], config: RenderConfig,
                    device) -> int:
    """Estimated memory of one image in a rendering step: the tensors autograd saves for the backward pass
    of one model input at the largest octave (distinct storages, measured) times the views per image, plus
    ten image-sized buffers (x, its gradient, the update, Adam's moments, transform outputs)."""
    scale = max(o.scale for o in config.schedule())
    size = tuple(max(1, round(scale * s)) for s in spec.size)
    image = tuple(max(1, round(scale * s)) for s in (config.image_size or spec.size))
    x = torch.zeros(1, spec.channels, *size, device=device, requires_grad=True)
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run_and_capture(proxy, x, spec.to_model_input(x), layers)
    views = config.regularization.views
    return views * sum(storages.values()) + 10 * spec.channels * image[0] * image[1] * x.element_size()


def images_per_batch(proxy, spec, layers, config: RenderConfig, device) -> int:
    """``config.batch_size``, lowered to fit ``config.memory_mb`` when that is given (at least 1)."""
    if config.memory_mb is None:
        return config.batch_size
    fit = int(config.memory_mb * 2**20 // bytes_per_image(proxy, spec, layers, config, device))
    return max(1, min(config.batch_size, fit))


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def render(model: nn.Module, spec: InputSpec, objectives: Sequence[Objective], seeds: Sequence[int],
           config: RenderConfig | None = None, device=None) -> RenderResult:
    """Render image i for ``objectives[i]`` from ``seeds[i]`` (equal lengths), in batches of
    ``config.batch_size``; returns a :class:`RenderResult`. ``model`` is the ORIGINAL network, in [-1, 1]
    terms through ``spec``; the device defaults to the model's."""
    config = config or RenderConfig()
    if len(objectives) != len(seeds):
        raise ValueError(f"{len(objectives)} objectives but {len(seeds)} seeds: give one seed per objective")
    if not objectives:
        raise ValueError("nothing to render: no objectives")
    check_layers(model, objectives)
    device = device or next(iter(model.parameters()), torch.empty(0)).device
    start = time.perf_counter()
    total = sum(o.steps for o in config.schedule()) * len(objectives)
    layers = _layers([*objectives, *config.regularization.penalties()])
    parts = []
    cpu_exact = config.deterministic and torch.device(device).type == "cpu"
    with frozen_eval(model), deterministic_cpu(cpu_exact):
        proxy = model if config.method == "relu" else proxy_network(model)  # a copy of the model in eval mode
        if config.compile and proxy is not model:
            _out_of_place(proxy)
        functional = _functional(proxy, spec, config, device)
        whole_run = _patch(proxy, config, config.slope, functional) if config.slope_schedule == "constant" \
            else contextlib.nullcontext()  # a schedule patches each step (see _patched_for_step)
        with whole_run, _proxy_forward(proxy, layers, config) as forward, \
                Capturer(model, layers | {OUTPUT}) as score_original, \
                tqdm(total=total, desc=f"{config.method} s={config.slope:g}", unit="img-step",
                     disable=not config.progress, leave=False) as bar:
            batch = min(len(objectives), images_per_batch(proxy, spec, layers, config, device))
            scale = max(o.scale for o in config.schedule())
            values = batch * spec.channels * round(scale * spec.size[0]) * round(scale * spec.size[1])
            with cpu_threads(device, values):
                for rows in _chunks(len(objectives), batch):
                    parts.append(_render_batch(score_original, forward, proxy, spec, objectives[rows], seeds[rows],
                                               config, device, bar, functional))
    cat = lambda key: torch.cat([p[key] for p in parts])
    return RenderResult(images=cat("images"), objectives=[o.name for o in objectives], seeds=list(seeds),
                        activation=cat("activation"), predicted=cat("predicted"), trace=cat("trace"),
                        trace_steps=parts[0]["trace_steps"], zero_gradient_steps=cat("zero"),
                        nonfinite_gradient_steps=cat("nonfinite"), seconds=time.perf_counter() - start,
                        config=config, batch_size=batch,
                        transparency=None if parts[0]["transparency"] is None else cat("transparency"))
