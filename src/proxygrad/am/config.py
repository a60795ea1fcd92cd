"""Settings of a rendering: :class:`Octave`, :class:`Regularization` and :class:`RenderConfig` (checked on
construction, before any work), with the choices and default step sizes they use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor

from ..surrogates import MODES, pooling
from ..surrogates.patch import check_kinds, check_settings
from ..surrogates.rectifier import check_slope
from .objectives import ImagePenalty, Objective
from .parametrizations import Pixel, parametrization
from .penalties import l2, total_variation
from .schemes import Scheme
from .transforms import Transform

PAPER_LR, PAPER_NUMEL = 25.0, 3 * 224 * 224
STEP_RULES = ("normalized", "plain", "adam", "nadam")
DEFAULT_LR = {"plain": 1.0, "adam": 0.05, "nadam": 1.0}
SLOPE_SCHEDULES = ("constant", "linear-to-zero")
PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
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
    lowers it to what an estimate of the memory per image allows (see ``render.images_per_batch``).
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
    shape compiles once, later batches of a seen shape reuse it); a mode name instead of True picks
    torch.compile's mode ("reduce-overhead" adds CUDA graphs on a GPU). It needs a constant slope (a schedule
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
    compile: bool | str = False
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
        if isinstance(self.compile, str) and self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be True, False or a torch.compile mode {COMPILE_MODES}, "
                             f"got {self.compile!r}")
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
        kinds = check_kinds(self.kinds)
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
        settings = check_settings(self.method, self.slope, kinds=kinds, temperature=self.temperature,
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

    @property
    def compile_mode(self) -> str | None:
        """torch.compile's mode ("reduce-overhead": CUDA graphs), or None when not compiling."""
        if not self.compile:
            return None
        return "default" if self.compile is True else self.compile

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
