"""The white-image problems of the paper's Section 3 and Table 1, with their exact optima.

Each problem is an ``nn.Module`` taking gray images x of shape (B, 1, H, W) in [-1, 1] and returning one score
per image, shape (B, 1), so every activation-maximization method runs on it unchanged (objective
``proxygrad.am.class_logit(0)``, input spec ``InputSpec(1, (H, W), (0.5,), (0.5,))``). Its rectifiers are
``nn.ReLU`` / ``nn.LeakyReLU`` modules, so ``proxygrad.patched`` can swap them.

With R_s the Leaky ReLU of slope s (R_0 = ReLU), 0 <= s < p < 1 (the paper: p = 0.2, s = 0.1):

- f1 = sum R_0(x)                        sparse gradients         max H*W at the white image
- f2 = sum R_s(x)                        race of patterns         max H*W at the white image
- f3 = sum R_s(x) + sum R_s(-p x)        local maxima             max H*W*(1 - s p) at the white image
  (one 1x1 convolution with the two weights 1 and -p on a single channel, as drawn in Table 1)
- convolution: sum R_s(k * x), k = [[0, 0, 0], [1, 0, -p], [0, 0, 0]], zero padding 1;
  output (i, j) is R_s(x[i, j-1] - p x[i, j+1]). Inside the image the white image is best (1 - p per pixel),
  but the last column enters only through -p x, so its optimum is black there (see :meth:`Convolution.optimum`).

All four are sums of convex functions (R_s is convex for 0 <= s <= 1), hence convex, so their maximum over
the box is attained at a vertex x in {-1, 1}^(H x W); this is what makes the optima below exact.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

PAPER_P, PAPER_SLOPE = 0.2, 0.1


def _check_size(height: int, width: int) -> None:
    if not all(isinstance(v, int) and v >= 1 for v in (height, width)):
        raise ValueError(f"height and width must be positive ints, got {height!r}, {width!r}")


def _check_slopes(slope: float, p: float | None = None) -> None:
    if not (math.isfinite(slope) and 0 <= slope < 1):
        raise ValueError(f"slope s must be in [0, 1), got {slope!r}")
    if p is not None and not (slope < p < 1):
        raise ValueError(f"p must satisfy s < p < 1 (the paper's 1 > p > s >= 0), got p={p!r}, s={slope!r}")


def _rectifier(slope: float) -> nn.Module:
    return nn.ReLU() if slope == 0 else nn.LeakyReLU(slope)


def leaky(z: float, slope: float) -> float:
    """R_s(z) for one number."""
    return z if z > 0 else slope * z


class WhiteImageProblem(nn.Module):
    """A score per image, (B, 1, H, W) in [-1, 1] -> (B, 1), with a known maximum over the box."""

    name = "problem"

    def optimum(self, height: int, width: int) -> float:
        """The exact maximum over [-1, 1]^(height x width)."""
        raise NotImplementedError

    def optimal_image(self, height: int, width: int) -> Tensor:
        """An image (1, height, width) in {-1, 1} where the maximum is attained."""
        _check_size(height, width)
        return torch.ones(1, height, width)


class SumReLU(WhiteImageProblem):
    """f1(x) = sum ReLU(x): sparse gradients (no gradient at negative pixels)."""

    name = "f1"

    def __init__(self):
        super().__init__()
        self.rectifier = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.rectifier(x).flatten(1).sum(1, keepdim=True)

    def optimum(self, height: int, width: int) -> float:
        _check_size(height, width)
        return float(height * width)


class SumLeakyReLU(WhiteImageProblem):
    """f2(x) = sum LReLU_s(x): the race of patterns (negative pixels rise s times slower)."""

    name = "f2"

    def __init__(self, slope: float = PAPER_SLOPE):
        super().__init__()
        _check_slopes(slope)
        self.slope = slope
        self.rectifier = _rectifier(slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.rectifier(x).flatten(1).sum(1, keepdim=True)

    def optimum(self, height: int, width: int) -> float:
        _check_size(height, width)
        return float(height * width)


class TwoWeights(WhiteImageProblem):
    """f3(x) = sum LReLU_s(x) + sum LReLU_s(-p x): a local maximum at every black pixel.

    Per pixel g(x) = (1 - s p) x for x > 0 and (s - p) x for x < 0: a local maximum p - s at x = -1 and the
    global one 1 - s p at x = 1 (the paper's Figure 1; :func:`single_pixel`).
    """

    name = "f3"

    def __init__(self, slope: float = PAPER_SLOPE, p: float = PAPER_P):
        super().__init__()
        _check_slopes(slope, p)
        self.slope, self.p = slope, p
        self.weights = nn.Conv2d(1, 2, 1, bias=False)
        with torch.no_grad():
            self.weights.weight.copy_(torch.tensor([1.0, -p]).view(2, 1, 1, 1))
        self.weights.requires_grad_(False)
        self.rectifier = _rectifier(slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.rectifier(self.weights(x)).flatten(1).sum(1, keepdim=True)

    def optimum(self, height: int, width: int) -> float:
        _check_size(height, width)
        return height * width * (1 - self.slope * self.p)


def single_pixel(x: Tensor, slope: float = PAPER_SLOPE, p: float = PAPER_P) -> Tensor:
    """f3 of a one-pixel image, elementwise: LReLU_s(x) + LReLU_s(-p x) (the paper's Figure 1)."""
    _check_slopes(slope, p)
    return torch.nn.functional.leaky_relu(x, slope) + torch.nn.functional.leaky_relu(-p * x, slope)


class Convolution(WhiteImageProblem):
    """sum LReLU_s(k * x) with k = [[0, 0, 0], [1, 0, -p], [0, 0, 0]] (cross-correlation, zero padding 1).

    Output (i, j) is R_s(x[i, j-1] - p x[i, j+1]) with x = 0 outside the image. Rows do not interact, so the
    optimum is H times the best row, found exactly by dynamic programming over rows x in {-1, 1}^W
    (:meth:`best_row`). For W >= 3 and the paper's p = 0.2, s = 0.1 the best row is white except its last
    pixel, which is black: that pixel only enters as -p x[j+1] of output j = W-2.
    """

    name = "conv"

    def __init__(self, slope: float = PAPER_SLOPE, p: float = PAPER_P):
        super().__init__()
        _check_slopes(slope, p)
        self.slope, self.p = slope, p
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, -p], [0.0, 0.0, 0.0]]).view(1, 1, 3, 3))
        self.conv.requires_grad_(False)
        self.rectifier = _rectifier(slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.rectifier(self.conv(x)).flatten(1).sum(1, keepdim=True)

    def best_row(self, width: int) -> tuple[float, list[int]]:
        """(max over rows r in {-1, 1}^width of sum_j R_s(r[j-1] - p r[j+1]), a maximizing row).

        Viterbi over states (r[j-1], r[j]); padding is 0. Ties prefer white pixels.
        """
        _check_size(1, width)
        pixel = lambda j: (1, -1) if 0 <= j < width else (0,)  # noqa: E731
        # state (r[j-1], r[j]) -> (score of the outputs before j, the row so far)
        states = {(0, v): (0.0, [v]) for v in pixel(0)}
        for j in range(width):
            following: dict[tuple[int, int], tuple[float, list[int]]] = {}
            for (before, here), (score, row) in states.items():
                for after in pixel(j + 1):
                    value = score + leaky(before - self.p * after, self.slope)
                    key = (here, after)
                    if key not in following or value > following[key][0] + 1e-12:
                        following[key] = (value, row + [after] if j + 1 < width else row)
            states = following
        return max(states.values(), key=lambda item: item[0])

    def optimum(self, height: int, width: int) -> float:
        _check_size(height, width)
        return height * self.best_row(width)[0]

    def optimal_image(self, height: int, width: int) -> Tensor:
        _check_size(height, width)
        row = torch.tensor(self.best_row(width)[1], dtype=torch.float32)
        return row.view(1, 1, width).expand(1, height, width).clone()


def table1(slope: float = PAPER_SLOPE, p: float = PAPER_P) -> dict[str, WhiteImageProblem]:
    """The four problems of Table 1 by name: f1, f2, f3, conv (f2, f3 and conv with Leaky ReLU slope s)."""
    return {"f1": SumReLU(), "f2": SumLeakyReLU(slope), "f3": TwoWeights(slope, p), "conv": Convolution(slope, p)}
