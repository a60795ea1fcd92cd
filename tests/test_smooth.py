"""Smooth-activation proxies against torch's own functions and hand-written closed-form derivatives."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from proxygrad.surrogates import smooth
from proxygrad.surrogates.smooth import SmoothProxy, proxy_derivative, smooth_proxy

# Points on both sides of 0, exactly 0, and where f' < 0 (GELU below -0.75, SiLU below -1.28, Mish below
# -1.19, Hardswish on [-3, -1.5)); away from Hardswish's kinks at +-3.
POINTS = [-5.0, -3.5, -2.5, -2.0, -1.5, -1.0, -0.5, -0.1, 0.0, 0.3, 1.0, 2.5, 4.0]
CASES = [("gelu", "none"), ("gelu", "tanh"), ("silu", None), ("mish", None), ("elu", 1.0), ("elu", 0.5),
         ("hardswish", None)]


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def closed_form_derivative(function, param, x):
    """f'(x) written out by hand (independent of torch's backward kernels)."""
    if function == "gelu" and param == "none":
        return 0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    if function == "gelu":
        c = math.sqrt(2 / math.pi)
        t = math.tanh(c * (x + 0.044715 * x ** 3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    if function == "silu":
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))
    if function == "mish":
        sp = math.log1p(math.exp(x))
        return math.tanh(sp) + x * _sigmoid(x) * (1 - math.tanh(sp) ** 2)
    if function == "elu":
        return 1.0 if x > 0 else param * math.exp(x)
    if x <= -3:
        return 0.0
    return 1.0 if x >= 3 else (2 * x + 3) / 6


def expected_proxy(function, param, variant, s, x):
    d = closed_form_derivative(function, param, x)
    if variant == "leaky":
        return 1.0 if x > 0 else s
    if x >= 0:
        return d
    return max(d, s) if variant == "floor" else d + s


def test_the_points_cover_negative_derivatives():
    for function, param in CASES:
        if function != "elu":
            assert min(closed_form_derivative(function, param, x) for x in POINTS) < 0, function


@pytest.mark.parametrize("function,param", CASES)
@pytest.mark.parametrize("variant", smooth.VARIANTS)
@pytest.mark.parametrize("s", [0.0, 0.05, 0.3])
def test_backward_is_the_documented_proxy_derivative(function, param, variant, s):
    x = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    upstream = torch.linspace(-2, 3, len(POINTS), dtype=torch.float64)
    y = smooth_proxy(x, function, variant, s, param)
    y.backward(upstream)
    expected = torch.tensor([expected_proxy(function, param, variant, s, v) for v in POINTS], dtype=torch.float64)
    assert torch.allclose(x.grad, upstream * expected, rtol=1e-10, atol=1e-12)
    assert torch.equal(y, smooth.original(x.detach(), function, param))


def test_hand_computed_gelu_values():
    """GELU'(-1) = Phi(-1) - phi(-1) = -0.0833 < 0: floor lifts it to s, add to s - 0.0833."""
    x = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    d = smooth.derivative(x, "gelu")
    assert d[0].item() == pytest.approx(-0.08331547058768, abs=1e-10) and d[1].item() == 0.5
    assert torch.allclose(proxy_derivative(x, "gelu", "floor", 0.2), torch.tensor([0.2, 0.5, d[2].item()],
                                                                                   dtype=torch.float64))
    assert proxy_derivative(x, "gelu", "add", 0.2)[0].item() == pytest.approx(0.2 - 0.08331547058768)
    assert proxy_derivative(x, "gelu", "leaky", 0.2).tolist() == [0.2, 0.2, 1.0]


@pytest.mark.parametrize("function,param", CASES)
def test_add_with_zero_slope_is_torchs_own_gradient(function, param):
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    x[0, 0, :2] = 0.0
    upstream = torch.randn_like(x)
    reference = x.clone().requires_grad_(True)
    smooth.original(reference, function, param).backward(upstream)
    proxy = x.clone().requires_grad_(True)
    smooth_proxy(proxy, function, "add", 0.0, param).backward(upstream)
    assert torch.allclose(proxy.grad, reference.grad, rtol=1e-14, atol=1e-15)


MODULES = [nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Mish(), nn.ELU(alpha=0.7), nn.Hardswish()]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: repr(m))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_bit_identical_and_channels_last(module, dtype, channels_last):
    x = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype) * 3
    x[0, 0, 0] = 0.0
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    proxy = SmoothProxy.like(module, "floor", 0.1)
    leaf = x.clone().requires_grad_(True)
    y = proxy(leaf)
    assert torch.equal(y, module(x))
    y.backward(torch.ones_like(y))
    expected = proxy_derivative(x, proxy.function, "floor", 0.1, proxy.param)
    assert torch.equal(leaf.grad, expected)
    assert leaf.grad.dtype == dtype


@pytest.mark.parametrize("module", [nn.SiLU(inplace=True), nn.Mish(inplace=True), nn.ELU(inplace=True),
                                    nn.Hardswish(inplace=True)], ids=lambda m: type(m).__name__)
def test_inplace(module):
    x = torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3
    leaf = x.clone().requires_grad_(True)
    proxy = SmoothProxy.like(module, "add", 0.2)
    assert proxy.inplace
    y = proxy(leaf * 1)
    assert torch.equal(y, module(x.clone()))
    y.sum().backward()
    assert torch.equal(leaf.grad, proxy_derivative(x, proxy.function, "add", 0.2, proxy.param))


def test_saves_only_the_input_like_torch():
    def saved_bytes(fn):
        sizes = []

        def pack(t):
            sizes.append(t.untyped_storage().nbytes())
            return t
        x = torch.randn(64, 64, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x * 1)
        return sum(sizes)

    for function in ("gelu", "silu", "mish", "hardswish"):
        ours = saved_bytes(lambda t, f=function: smooth_proxy(t, f, "floor", 0.1))
        theirs = saved_bytes(lambda t, f=function: smooth.original(t, f))
        assert ours == theirs == 64 * 64 * 4, function


def test_autocast_bf16():
    torch.manual_seed(0)
    layer = nn.Linear(6, 6)
    x = torch.randn(4, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = layer(x)
        reference = F.gelu(h)
        leaf = h.detach().requires_grad_(True)
        out = smooth_proxy(leaf, "gelu", "floor", 0.1)
    assert out.dtype == reference.dtype and torch.equal(out, reference)
    out.float().sum().backward()
    assert torch.equal(leaf.grad, proxy_derivative(h.detach(), "gelu", "floor", 0.1))


def test_timm_gelu_modules():
    timm_act = pytest.importorskip("timm.layers.activations")
    assert SmoothProxy.like(timm_act.GELU(), "add", 0.1).param == "none"
    assert SmoothProxy.like(timm_act.GELUTanh(), "add", 0.1).param == "tanh"


@pytest.mark.parametrize("kwargs,match", [({"function": "relu"}, "smooth activation"),
                                          ({"variant": "magic"}, "variant"), ({"slope": -0.1}, "slope"),
                                          ({"slope": float("nan")}, "slope"), ({"param": "cubic"}, "approximate")])
def test_bad_arguments(kwargs, match):
    args = {"function": "gelu", "variant": "floor", "slope": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        smooth_proxy(torch.zeros(2), **args)
    with pytest.raises(ValueError, match="not a smooth activation"):
        SmoothProxy.like(nn.ReLU())
