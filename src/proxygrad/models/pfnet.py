"""PFNet18: a ResNet18 whose 3x3 convolutions are FIXED depthwise edge and line filters (Linse, Barth,
Martinetz, "Convolutional Neural Networks Do Work with Pre-Defined Filters", IJCNN 2023).

Only 1x1 convolutions, BatchNorm and the linear head learn: 1,464,518 trainable parameters for 102 classes
(ResNet18: about 11.2 M). Layout (see ``shared/specs/pfnet18.md``):

- Pre-defined filter module (:class:`PFM`): fixed depthwise 3x3 (each input channel -> ``f`` channels, kernel
  ``i mod 16`` for intermediate channel ``i``; carries the stride) -> BN -> ReLU -> 1x1 conv -> BN.
- Stem: PFM(3 -> 64, f=16, stride 2) -> ReLU -> max pool 3/2 (``small_input=True``: stride 1, no pool).
- ``layer1``..``layer4``: two :class:`PFBlock` each, widths 64, 128, 256, 512, strides 1, 2, 2, 2.
- Downsampling shortcut: fixed 3x3 Gaussian blur (sigma 0.75) -> strided 1x1 conv -> BN.
- Head: global average pool -> ``fc``.

Every rectifier is its own ``nn.ReLU`` module, so ``proxygrad.patched``/``convert`` change all of them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

EDGE_SIGMA = 0.9
LINE_SIGMA = 0.45
BLUR_SIGMA = 0.75
ORIENTATIONS = (0, 45, 90, 135)  # degrees; the grid's y axis points down (row 0 is y = -1)


def _grid() -> tuple[Tensor, Tensor]:
    """x (columns) and y (rows) of a 3x3 grid, each (3, 3) in {-1, 0, 1}, float64."""
    y, x = torch.meshgrid(torch.arange(-1.0, 2.0, dtype=torch.float64),
                          torch.arange(-1.0, 2.0, dtype=torch.float64), indexing="ij")
    return x, y


def _zero_mean_unit_l1(kernel: Tensor) -> Tensor:
    kernel = kernel - kernel.mean()
    return kernel / kernel.abs().sum()


def edge_kernel(degrees: float) -> Tensor:
    """The "uneven" 3x3 kernel of orientation ``degrees``: sign(c) (1 - exp(-c^2 / (2 0.9^2))) for the
    projection c of each grid point on the orientation; zero mean, L1 norm 1. float64 (3, 3)."""
    x, y = _grid()
    phi = math.radians(degrees)
    c = x * math.cos(phi) + y * math.sin(phi)
    return _zero_mean_unit_l1(torch.sign(c) * (1 - torch.exp(-c ** 2 / (2 * EDGE_SIGMA ** 2))))


def line_kernel(degrees: float) -> Tensor:
    """The "even" 3x3 kernel of orientation ``degrees``: 2 exp(-c^2 / (2 0.45^2)) for the distance c of each grid
    point across the line; zero mean, L1 norm 1. float64 (3, 3)."""
    x, y = _grid()
    phi = math.radians(degrees)
    c = x * math.cos(phi) + y * math.sin(phi)
    return _zero_mean_unit_l1(2 * torch.exp(-c ** 2 / (2 * LINE_SIGMA ** 2)))


def predefined_kernels() -> Tensor:
    """The 16 fixed kernels (16, 3, 3) float32 in the order -U0, +U0, -U45, +U45, ..., -E135, +E135."""
    kernels = []
    for make in (edge_kernel, line_kernel):
        for degrees in ORIENTATIONS:
            k = make(degrees)
            kernels += [-k, k]
    return torch.stack(kernels).float()


def gaussian_kernel(sigma: float = BLUR_SIGMA) -> Tensor:
    """Normalized 3x3 Gaussian (sum 1) of standard deviation ``sigma`` pixels, float32 (3, 3)."""
    x, y = _grid()
    g = torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).float()


class FixedDepthwise(nn.Module):
    """Depthwise 3x3 convolution with constant kernels (a buffer, not a parameter), padding 1, no bias.

    Input (B, n_in, H, W) -> (B, n_in * f, H', W'); output channel ``i`` (of input channel ``i // f``) uses
    ``kernels[i % len(kernels)]``.
    """

    def __init__(self, n_in: int, f: int, kernels: Tensor, stride: int = 1):
        super().__init__()
        n_out = n_in * f
        index = torch.arange(n_out) % len(kernels)
        self.register_buffer("weight", kernels[index].unsqueeze(1).clone(), persistent=False)
        self.n_in, self.f, self.stride = n_in, f, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), stride=self.stride, padding=1, groups=self.n_in)

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_in * self.f}, stride={self.stride}, fixed"


class PFM(nn.Sequential):
    """Pre-defined filter module: fixed depthwise 3x3 (stride here) -> BN -> ReLU -> 1x1 conv -> BN."""

    def __init__(self, n_in: int, n_out: int, f: int = 1, stride: int = 1):
        super().__init__()
        self.depthwise = FixedDepthwise(n_in, f, predefined_kernels(), stride)
        self.bn1 = nn.BatchNorm2d(n_in * f)
        self.relu = nn.ReLU()
        self.pointwise = nn.Conv2d(n_in * f, n_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)


class PFBlock(nn.Module):
    """Residual block: PFM (stride) -> ReLU -> PFM -> + shortcut -> ReLU. The shortcut of a block that changes
    size is blur -> strided 1x1 conv -> BN; otherwise identity."""

    def __init__(self, n_in: int, n_out: int, stride: int = 1):
        super().__init__()
        self.pfm1 = PFM(n_in, n_out, stride=stride)
        self.relu1 = nn.ReLU()
        self.pfm2 = PFM(n_out, n_out)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(FixedDepthwise(n_in, 1, gaussian_kernel()[None]),
                                          nn.Conv2d(n_in, n_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.relu2(self.pfm2(self.relu1(self.pfm1(x))) + self.shortcut(x))


class PFNet18(nn.Module):
    """PFNet18 for RGB images (B, 3, H, W) -> logits (B, num_classes); see the module docstring.

    Args:
        num_classes: outputs of the linear head.
        small_input: for CIFAR-sized images: stem stride 1 and no max pool.
        in_channels: input channels (3 for RGB).
    """

    def __init__(self, num_classes: int = 1000, *, small_input: bool = False, in_channels: int = 3):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.stem = PFM(in_channels, 64, f=16, stride=1 if small_input else 2)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, stride=2, padding=1)
        widths, strides, n_in = (64, 128, 256, 512), (1, 2, 2, 2), 64
        for i, (width, stride) in enumerate(zip(widths, strides), start=1):
            setattr(self, f"layer{i}", nn.Sequential(PFBlock(n_in, width, stride), PFBlock(width, width)))
            n_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # the trainable 1x1 convolutions (fixed ones are FixedDepthwise)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.stem(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def pfnet18(*, num_classes: int = 1000, small_input: bool = False) -> PFNet18:
    """A randomly initialized :class:`PFNet18` (Kaiming normal 1x1 convolutions, BN weight 1 / bias 0)."""
    return PFNet18(num_classes, small_input=small_input)
