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
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..models.spec import InputSpec
from ..surrogates import MODES, patched, pooling
from ..surrogates.patch import RECTIFIER_MODULES, SMOOTH_MODULES, _kinds, _validate
from ..surrogates.rectifier import check_slope
from .objectives import (
    INPUT,
    OUTPUT,
    Capturer,
    ImagePenalty,
    Objective,
    batch_scores,
    check_layers,
    run_and_capture,
)
from .parametrizations import Pixel, parametrization
from .penalties import l2, total_variation
from .schemes import Scheme
from .transforms import Transform

PAPER_LR, PAPER_NUMEL = 25.0, 3 * 224 * 224
STEP_RULES = ("normalized", "plain", "adam", "nadam")
DEFAULT_LR = {"plain": 1.0, "adam": 0.05, "nadam": 1.0}
SLOPE_SCHEDULES = ("constant", "linear-to-zero")
PRECISIONS = ("fp32", "bf16")
PROXY_OPTIONS = {"smooth_variant": "smooth", "smooth_slope": "smooth", "pool_variant": "pooling",
                 "pool_temperature": "pooling", "pool_share": "pooling"}  # RenderConfig field -> its kind


@dataclass(frozen=True)
class Octave:
    """Render ``steps`` steps at ``scale`` times the base size with step size ``lr`` (None: the default)."""

    scale: float
    steps: int
    lr: float | None = None


@dataclass
class Regularization:
    """What keeps the images natural. ``augment`` transforms the model's input (the gradient flows back
    through it); ``after_step`` transforms the iterate after each step; ``tv`` and ``l2`` weight penalties
    subtracted from the objective (total variation, squared L2 norm of x in [-1, 1])."""

    augment: Transform | None = None
    after_step: Transform | None = None
    scheme: Scheme = field(default_factory=Scheme.none)
    tv: float = 0.0
    l2: float = 0.0

    @property
    def n_random(self) -> int:
        return sum(t.n_random for t in (self.augment, self.after_step) if t is not None)

    @property
    def views(self) -> int:
        """How many model inputs ``augment`` makes of each image (MACO's crops: several)."""
        return getattr(self.augment, "views", 1)

    @property
    def acts_on_pixels(self) -> bool:
        """True when something changes the iterate itself (after-step transforms, a scheme's filters)."""
        return self.after_step is not None or self.scheme.fluid is not None or self.scheme.elastic is not None

    def penalties(self) -> list[Objective]:
        terms = []
        if self.tv:
            terms.append(ImagePenalty(total_variation, self.tv, "tv"))
        if self.l2:
            terms.append(ImagePenalty(l2, self.l2, "l2"))
        return terms


@dataclass
class RenderConfig:
    """Settings of one rendering. ``batch_size`` caps the images per batch; ``memory_mb``, when given,
    lowers it to what an estimate of the memory per image allows (see :func:`images_per_batch`).
    ``init_image`` (C, H, W) in [-1, 1] replaces the gray start (noise of std
    ``init_sigma`` is added to either). ``deterministic`` turns oneDNN and NNPACK off on the CPU while rendering, so
    that the images are bitwise reproducible and independent of the batch size (both pick batch-dependent
    algorithms). ``lr=None`` means the paper's 25 for 3x224x224, scaled by
    sqrt(C*H*W / (3*224*224)) so that the step per pixel matches (normalized rule); 1.0 (plain); 0.05 (adam);
    1.0 (nadam, MACO's). ``parametrization``: "pixel", "fourier", "maco" or such an object (parametrizations.py);
    the others than pixel take input transforms (``regularization.augment``) but no after-step transforms,
    schemes, octaves or start image. ``image_size`` (H, W) renders the parametrized image at another size than
    the model's (MACO's large buffer); the model sees the transformed views resized to its own size.
    ``temperature`` is the softgate surrogate's (method "softgate"). ``transparency=True`` also returns MACO's
    transparency map: the sum over steps of |d objective / d image| (what users show as an alpha channel).
    ``slope_schedule="linear-to-zero"`` anneals the slope of ``leaky``/``proxygrad`` linearly from ``slope`` at
    the first step to 0 at the last (over all octaves): for a ReLU network the last steps then follow the true
    gradient (for a Leaky ReLU network the end point 0 lies below the network's own slope).
    ``precision="bf16"`` runs the proxy's forward and backward under bfloat16 autocast (images, updates and
    every reported score stay float32, from the original network); ``channels_last`` feeds the model
    channels-last inputs (faster convolutions on GPUs). ``compile=True`` runs the proxy's forward (with its
    captured layers) through ``torch.compile`` (default mode, ``dynamic=False``: each new batch or octave
    shape compiles once, later batches of a seen shape reuse it). It needs a constant slope (a schedule
    re-patches the proxy at every step) and modules (functional calls such as ``F.relu`` or ``F.gelu`` cannot
    be rerouted inside a compiled forward); values agree with eager ones to rounding, not bitwise.
    ``kinds`` selects what the proxy changes, as ``patched(kinds=...)`` does: ``("rectifiers",)`` (default),
    ``"smooth"`` (GELU, SiLU, Mish, ELU, Hardswish), ``"pooling"`` (max pooling), ``"all"`` or a tuple of them;
    kinds other than rectifiers need method "proxygrad". Their settings ``smooth_variant``, ``smooth_slope``,
    ``pool_variant``, ``pool_temperature`` (softmax variant) and ``pool_share`` (share variant) default to None,
    meaning ``patched``'s defaults (docs/proxies.md); ``slope`` and its schedule stay the rectifiers'.
    With ``compile=True`` the proxy copy's in-place smooth modules run out of place (same values)."""

    method: str = "proxygrad"
    slope: float = 0.075
    steps: int = 500
    lr: float | None = None
    step_rule: str = "normalized"
    init_sigma: float = 0.1
    init_image: Tensor | None = None
    regularization: Regularization = field(default_factory=Regularization)
    octaves: tuple[Octave, ...] = ()
    batch_size: int = 64
    memory_mb: float | None = None
    trace_every: int = 10
    progress: bool = True
    deterministic: bool = True
    slope_schedule: str = "constant"
    precision: str = "fp32"
    channels_last: bool = False
    parametrization: object = field(default_factory=Pixel)
    image_size: tuple[int, int] | None = None
    temperature: float = 1.0
    compile: bool = False
    transparency: bool = False
    kinds: tuple[str, ...] | str = ("rectifiers",)
    smooth_variant: str | None = None
    smooth_slope: float | None = None
    pool_variant: str | None = None
    pool_temperature: float | None = None
    pool_share: float | None = None

    def __post_init__(self) -> None:
        if self.method not in MODES:
            raise ValueError(f"method must be one of {MODES}, got {self.method!r}")
        check_slope(self.slope, "slope")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        self._check_kinds()
        if self.slope_schedule not in SLOPE_SCHEDULES:
            raise ValueError(f"slope_schedule must be one of {SLOPE_SCHEDULES}, got {self.slope_schedule!r}")
        if self.slope_schedule != "constant" and self.method not in ("leaky", "proxygrad"):
            raise ValueError(f"slope_schedule={self.slope_schedule!r} needs method 'leaky' or 'proxygrad'")
        if self.compile and self.slope_schedule != "constant":
            raise ValueError(f"compile=True needs slope_schedule='constant': {self.slope_schedule!r} re-patches "
                             "the proxy at every step, which would recompile at every step")
        self._check_parametrization()
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.step_rule not in STEP_RULES:
            raise ValueError(f"step_rule must be one of {STEP_RULES}, got {self.step_rule!r}")
        if self.steps < 0 or self.batch_size < 1 or self.trace_every < 1:
            raise ValueError("steps must be >= 0, batch_size and trace_every >= 1")
        if self.memory_mb is not None and not self.memory_mb > 0:
            raise ValueError(f"memory_mb must be > 0, got {self.memory_mb}")
        if not (self.init_sigma >= 0 and math.isfinite(self.init_sigma)):
            raise ValueError(f"init_sigma must be finite and >= 0, got {self.init_sigma}")

    @property
    def proxy_options(self) -> dict:
        """The per-kind settings that were given (not None), as keywords of ``patched``."""
        return {name: getattr(self, name) for name in PROXY_OPTIONS if getattr(self, name) is not None}

    def _check_kinds(self) -> None:
        """``kinds`` and the per-kind settings, checked by ``patched``'s own validation; kinds as a tuple."""
        kinds = _kinds(self.kinds)
        if set(kinds) != {"rectifiers"} and self.method != "proxygrad":
            raise ValueError(f"kinds={kinds!r} needs method 'proxygrad': method {self.method!r} has no proxies "
                             "for smooth activations or pooling (use kinds=('rectifiers',))")
        for name, kind in PROXY_OPTIONS.items():
            if getattr(self, name) is not None and kind not in kinds:
                raise ValueError(f"{name} applies to kind {kind!r}, which kinds={kinds!r} does not select")
        variant = self.pool_variant or pooling.DEFAULT_VARIANT
        for name, needs in (("pool_temperature", "softmax"), ("pool_share", "share")):
            if getattr(self, name) is not None and variant != needs:
                raise ValueError(f"{name} is the {needs!r} pooling proxy's setting, not {variant!r}'s")
        if self.pool_temperature is not None:  # pooling's own message says "temperature": name the field
            try:
                pooling.check_proxy("softmax", self.pool_temperature, pooling.DEFAULT_SHARE)
            except ValueError as error:
                raise ValueError(f"pool_temperature: {error}") from None
        settings = _validate(nn.Module(), self.method, self.slope, kinds=kinds, temperature=self.temperature,
                             **self.proxy_options)
        self.kinds = settings.kinds
        for name in PROXY_OPTIONS:  # numbers as patched() uses them (e.g. an int slope as a float)
            if getattr(self, name) is not None:
                setattr(self, name, getattr(settings, name))

    def _check_parametrization(self) -> None:
        if isinstance(self.parametrization, str):
            self.parametrization = parametrization(self.parametrization)
        if self.image_size is not None:
            size = tuple(int(v) for v in self.image_size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"image_size must be (H, W) with H, W >= 1, got {self.image_size!r}")
            self.image_size = size
        if self.parametrization.pixel_space:
            return
        name = self.parametrization.name
        if self.regularization.acts_on_pixels:
            raise ValueError(f"parametrization {name!r} optimizes a spectrum: after-step transforms (blur, "
                             "rotation) and fluid/elastic schemes act on pixels; use input transforms instead "
                             "(e.g. the lucent recipe) or parametrization 'pixel'")
        if self.octaves:
            raise ValueError(f"octaves need parametrization 'pixel', not {name!r}")
        if self.init_image is not None:
            raise ValueError(f"a start image needs parametrization 'pixel', not {name!r}")

    def schedule(self) -> tuple[Octave, ...]:
        return self.octaves or (Octave(1.0, self.steps, self.lr),)

    def slope_at(self, step: int) -> float:
        """The slope used at step ``step`` (0-based, counted over all octaves)."""
        total = sum(o.steps for o in self.schedule())
        if self.slope_schedule == "constant" or total <= 1:
            return self.slope
        return self.slope * max(0.0, 1.0 - step / (total - 1))

    def step_size(self, octave: Octave, numel: int) -> float:
        lr = octave.lr if octave.lr is not None else self.lr
        if lr is not None:
            return lr
        if self.step_rule == "normalized":
            return PAPER_LR * math.sqrt(numel / PAPER_NUMEL)
        return DEFAULT_LR[self.step_rule]


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


class _FrozenEval:
    """Eval mode and no weight gradients during rendering; both restored on exit."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.training = self.model.training
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.model.eval().requires_grad_(False)

    def __exit__(self, *exc):
        self.model.train(self.training)
        for p, flag in self.flags:
            p.requires_grad_(flag)


SMALL_BATCH_VALUES = 2**18  # pixels x channels x images below which a CPU batch runs on one thread


@contextlib.contextmanager
def _cpu_threads(device, values: int):
    """One intra-op thread for small CPU batches: their ops are too short to share, and on a busy machine
    OpenMP threads waiting for each other made a 32x32 render 70 times slower. Restored on exit."""
    before = torch.get_num_threads()
    if torch.device(device).type == "cpu" and values < SMALL_BATCH_VALUES:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _onednn_off(off: bool):
    """Turn the CPU's batch-dependent convolution kernels off while rendering: oneDNN (without touching its
    TF32 flag, as torch.backends.mkldnn.flags does) and NNPACK (which torch picks for batches of 16 or more;
    slower here, and its results differ from those of smaller batches). Both restored on exit."""
    before = torch._C._get_mkldnn_enabled(), torch._C._get_nnpack_enabled()
    torch._C._set_mkldnn_enabled(before[0] and not off)
    torch._C._set_nnpack_enabled(before[1] and not off)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(before[0])
        torch._C._set_nnpack_enabled(before[1])


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear",
                                                                     align_corners=False)


def _split(u: Tensor, regularization: Regularization) -> tuple[Tensor, Tensor]:
    k = regularization.augment.n_random if regularization.augment is not None else 0
    return u[:, :k], u[:, k:]


class _Stepper:
    """Turns gradients into updates for one batch; counts zero and non-finite gradients per image."""

    def __init__(self, rule: str, x: Tensor):
        self.rule = rule
        self.zero = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        self.nonfinite = torch.zeros_like(self.zero)
        self.moment1 = torch.zeros_like(x) if rule in ("adam", "nadam") else None
        self.moment2 = torch.zeros_like(x) if rule in ("adam", "nadam") else None
        self.t, self.mu_product = 0, 1.0

    def update(self, g: Tensor, lr: float) -> Tensor:
        norm = g.flatten(1).norm(dim=1)
        finite = torch.isfinite(norm)
        zero = finite & (norm == 0)
        self.nonfinite += ~finite
        self.zero += zero
        ok = (finite & ~zero).view(-1, *([1] * (g.dim() - 1)))
        g = torch.where(ok, g, torch.zeros_like(g))
        if self.rule == "normalized":
            return lr * g / torch.where(ok, norm.view_as(ok), torch.ones_like(norm.view_as(ok)))
        if self.rule == "plain":
            return lr * g
        if self.rule == "nadam":
            return self._nadam(g, lr, ok)
        return self._adam(g, lr, ok)

    def _adam(self, g: Tensor, lr: float, ok: Tensor, betas=(0.9, 0.999), eps=1e-8) -> Tensor:
        self.t += 1
        self.moment1.lerp_(g, 1 - betas[0])
        self.moment2.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
        m_hat = self.moment1 / (1 - betas[0] ** self.t)
        v_hat = self.moment2 / (1 - betas[1] ** self.t)
        return torch.where(ok, lr * m_hat / (v_hat.sqrt() + eps), torch.zeros_like(g))

    def _nadam(self, g: Tensor, lr: float, ok: Tensor, betas=(0.9, 0.999), eps=1e-8,
               momentum_decay=4e-3) -> Tensor:
        """torch.optim.NAdam's update (Dozat 2016 with its momentum schedule), per image."""
        self.t += 1
        mu = betas[0] * (1 - 0.5 * 0.96 ** (self.t * momentum_decay))
        mu_next = betas[0] * (1 - 0.5 * 0.96 ** ((self.t + 1) * momentum_decay))
        self.mu_product *= mu
        self.moment1.lerp_(g, 1 - betas[0])
        self.moment2.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
        denom = (self.moment2 / (1 - betas[1] ** self.t)).sqrt() + eps
        step = (lr * (1 - mu) / (1 - self.mu_product)) * g / denom \
            + (lr * mu_next / (1 - self.mu_product * mu_next)) * self.moment1 / denom
        return torch.where(ok, step, torch.zeros_like(g))


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
            capturer.forward = torch.compile(capturer.forward, dynamic=False)
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
    stepper = _Stepper(config.step_rule, p)
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
                stepper = _Stepper(config.step_rule, p)
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
    with _FrozenEval(model), _onednn_off(cpu_exact):
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
            with _cpu_threads(device, values):
                for rows in _chunks(len(objectives), batch):
                    parts.append(_render_batch(score_original, forward, proxy, spec, objectives[rows], seeds[rows],
                                               config, device, bar, functional))
    cat = lambda key: torch.cat([p[key] for p in parts])
    return RenderResult(images=cat("images"), objectives=[o.name for o in objectives], seeds=list(seeds),
                        activation=cat("activation"), predicted=cat("predicted"), trace=cat("trace"),
                        trace_steps=parts[0]["trace_steps"], zero_gradient_steps=cat("zero"),
                        nonfinite_gradient_steps=cat("nonfinite"), seconds=time.perf_counter() - start,
                        config=config, batch_size=batch,
                        transparency=cat("transparency") if config.transparency and config.steps else None)
