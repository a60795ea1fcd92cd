"""Named regularization recipes and the parsing of the command line's regularization options.

- ``none``: plain normalized gradient ascent.
- ``paper``: the ProxyGrad paper's "weak blur and small rotations after each iteration" (Section 5). The
  paper gives no numbers; we use a Gaussian blur of std 0.5 px (3x3 kernel) and a rotation uniform in
  [-1, 1] degrees (reflection padding) applied to the image after every step.
- ``lucent``: Lucent's standard input transforms (pad, jitter, scale, rotation, jitter; see peer_transforms.py).
- ``maco``: MACO's input views: 6 random crops of 0.20-0.25 of the image side with a little noise.
The last two only transform the model's input, so they work with every parametrization (recipes.py).
"""
from __future__ import annotations

from .config import Regularization
from .peer_transforms import LucentStandard, MacoCrops
from .schemes import Scheme
from .transforms import Blur, Compose, Jitter, Rotate, Scale, Transform

PRESETS = ("none", "paper", "lucent", "maco")


def preset(name: str, model_size: tuple[int, int] | None = None) -> Regularization:
    """The regularization called ``name`` (one of PRESETS); ValueError listing them otherwise.
    ``model_size`` (H, W): the size of the model's input views (lucent, maco; None: the image's size)."""
    if name == "none":
        return Regularization()
    if name == "paper":
        return Regularization(after_step=Compose([Blur(sigma=0.5, size=3), Rotate(degrees=1.0)]))
    if name == "lucent":
        return Regularization(augment=LucentStandard(size=model_size))
    if name == "maco":
        return Regularization(augment=MacoCrops(size=model_size))
    raise ValueError(f"unknown regularization preset {name!r}; valid: {', '.join(PRESETS)}")


def build(name: str = "none", *, model_size: tuple[int, int] | None = None, jitter: int = 0, scale: tuple[float, float] | None = None, rotate: float = 0.0,
          blur: float = 0.0, scheme: str = "none", tv: float = 0.0, l2: float = 0.0) -> Regularization:
    """A preset plus extra terms: ``jitter`` (px), ``scale`` (low, high) and ``rotate`` (degrees) transform
    the model's input (transformation robustness); ``blur`` (std, px) blurs the image after each step;
    ``scheme`` is a fluid/elastic scheme (see ``Scheme.parse``); ``tv`` and ``l2`` weight penalties."""
    base = preset(name, model_size)
    augment: list[Transform] = [t for t in (base.augment,) if t is not None]
    if (jitter or scale is not None or rotate) and base.views > 1:
        raise ValueError(f"preset {name!r} makes several views per image; add no jitter, scale or rotation to it")
    if jitter:
        augment.append(Jitter(int(jitter)))
    if scale is not None:
        augment.append(Scale(*scale))
    if rotate:
        augment.append(Rotate(float(rotate)))
    after = [t for t in (base.after_step,) if t is not None]
    if blur:
        after.append(Blur(float(blur)))
    for weight, label in ((tv, "tv"), (l2, "l2")):
        if weight < 0:
            raise ValueError(f"{label} weight must be >= 0, got {weight}")
    return Regularization(augment=_compose(augment), after_step=_compose(after), scheme=Scheme.parse(scheme),
                          tv=base.tv + tv, l2=base.l2 + l2)


def _compose(transforms: list[Transform]) -> Transform | None:
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else Compose(transforms)
