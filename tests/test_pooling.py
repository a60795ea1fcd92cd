"""Max-pooling proxy against torch's max_pool2d, a hand-computed example and a loop-by-loop reference."""
import itertools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from proxygrad.surrogates.pooling import ProxyMaxPool2d, proxy_max_pool2d

# (kernel, stride, padding, dilation, ceil_mode): disjoint, overlapping, padded, dilated, ceil, rectangular.
GEOMETRIES = [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False),
              ((2, 3), (1, 2), (1, 1), 1, True), (2, 3, 0, 1, True), (3, 2, 0, 1, False)]


def _grad(fn, x, upstream):
    leaf = x.clone().requires_grad_(True)
    out = fn(leaf)
    out.backward(upstream)
    return out.detach(), leaf.grad


def reference_gradient(x, upstream, geometry, variant, temperature=1.0, share=0.0):
    """Loop over every output position and its window (independent of unfold/fold); x (C, H, W) float64."""
    kernel, stride, padding, dilation, _ = geometry
    pair = lambda v: (v, v) if isinstance(v, int) else v
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel, stride, padding, dilation))
    channels, height, width = x.shape
    grad = torch.zeros_like(x)
    for c, i, j in itertools.product(range(channels), range(upstream.shape[1]), range(upstream.shape[2])):
        cells = [(i * sh - ph + a * dh, j * sw - pw + b * dw) for a in range(kh) for b in range(kw)]
        cells = [(r, q) for r, q in cells if 0 <= r < height and 0 <= q < width]
        values = [x[c, r, q].item() for r, q in cells]
        if variant == "softmax":
            top = max(values)
            exps = [math.exp((v - top) / temperature) for v in values]
            weights = [e / sum(exps) for e in exps]
        else:
            winner = values.index(max(values))  # torch takes the first maximum in scan order
            weights = [1.0 if n == winner else share for n in range(len(values))]
        for (r, q), w in zip(cells, weights):
            grad[c, r, q] += w * upstream[c, i, j]
    return grad


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("variant,params", [("softmax", {"temperature": 0.7}), ("share", {"share": 0.3})])
def test_backward_matches_loop_reference(geometry, variant, params):
    x = torch.randn(2, 6, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[0, :2, :2] = 0.0  # zeros and ties
    kernel, stride, padding, dilation, ceil_mode = geometry
    fn = lambda t: proxy_max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, variant=variant, **params)
    out = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    proxy_out, grad = _grad(fn, x, upstream)
    assert torch.equal(proxy_out, out)
    expected = reference_gradient(x, upstream, geometry, variant, params.get("temperature", 1.0),
                                  params.get("share", 0.0))
    assert torch.allclose(grad, expected, rtol=1e-12, atol=1e-12)


def test_hand_computed_example():
    """One 2x2 window [[1, 3], [0, -2]] and one [[-1, 0], [-1, -4]] (kernel 2, stride 2), upstream (2, -1)."""
    x = torch.tensor([[[1.0, 3.0, -1.0, 0.0], [0.0, -2.0, -1.0, -4.0]]], dtype=torch.float64)
    upstream = torch.tensor([[[2.0, -1.0]]], dtype=torch.float64)
    out, grad = _grad(lambda t: proxy_max_pool2d(t, 2, variant="share", share=0.25), x, upstream)
    assert out.tolist() == [[[3.0, 0.0]]]
    assert grad.tolist() == [[[0.5, 2.0, -0.25, -1.0], [0.5, 0.5, -0.25, -0.25]]]
    _, grad = _grad(lambda t: proxy_max_pool2d(t, 2, variant="softmax", temperature=1.0), x, upstream)
    left = torch.tensor([1.0, 3.0, 0.0, -2.0], dtype=torch.float64).exp()
    right = torch.tensor([-1.0, 0.0, -1.0, -4.0], dtype=torch.float64).exp()
    left, right = 2 * left / left.sum(), -right / right.sum()
    expected = [[[left[0], left[1], right[0], right[1]], [left[2], left[3], right[2], right[3]]]]
    assert torch.allclose(grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-14)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_share_zero_is_torchs_own_gradient(geometry):
    kernel, stride, padding, dilation, ceil_mode = geometry
    x = torch.randn(2, 3, 9, 8, generator=torch.Generator().manual_seed(3))
    x[:, :, :3, :3] = 0.0  # ties: the same winner as torch
    upstream = torch.randn(F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode).shape)
    ref_out, ref = _grad(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode), x, upstream)
    out, grad = _grad(lambda t: proxy_max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, variant="share",
                                                 share=0.0), x, upstream)
    assert torch.equal(out, ref_out) and torch.equal(grad, ref)


def test_softmax_limits_are_max_and_average_pooling_gradients():
    x = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    upstream = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    _, max_grad = _grad(lambda t: F.max_pool2d(t, 2), x, upstream)
    _, avg_grad = _grad(lambda t: F.avg_pool2d(t, 2), x, upstream)
    _, cold = _grad(lambda t: proxy_max_pool2d(t, 2, variant="softmax", temperature=1e-6), x, upstream)
    _, hot = _grad(lambda t: proxy_max_pool2d(t, 2, variant="softmax", temperature=1e9), x, upstream)
    assert torch.allclose(cold, max_grad, atol=1e-12) and torch.allclose(hot, avg_grad, atol=1e-8)


def test_softmax_is_the_gradient_of_the_smooth_maximum():
    """dx = d/dx sum_W dy_W * t * logsumexp(x_W / t), with the windows from unfold and autograd."""
    t = 0.4
    x = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    upstream = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    windows = F.unfold(leaf.reshape(6, 1, 7, 7), 3, stride=2).reshape(2, 3, 9, 9)
    smooth_max = t * torch.logsumexp(windows / t, dim=2)
    (smooth_max * upstream.reshape(2, 3, 9)).sum().backward()
    _, grad = _grad(lambda v: proxy_max_pool2d(v, 3, 2, variant="softmax", temperature=t), x, upstream)
    assert torch.allclose(grad, leaf.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("variant", ["softmax", "share"])
def test_forward_bit_identical_with_indices_and_channels_last(dtype, variant):
    x = torch.randn(2, 4, 9, 9, generator=torch.Generator().manual_seed(6)).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    module = nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)
    proxy = ProxyMaxPool2d.like(module, variant=variant, temperature=0.5, share=0.1)
    (y, idx), (y0, idx0) = proxy(x), module(x)
    assert torch.equal(y, y0) and torch.equal(idx, idx0) and y.dtype == dtype
    upstream = torch.randn(y.shape).to(dtype)
    _, grad_cl = _grad(lambda t: proxy(t)[0], x, upstream)
    _, grad = _grad(lambda t: proxy(t)[0], x.contiguous(), upstream)
    assert grad_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(grad_cl, grad) and grad.dtype == dtype


def test_autocast_bf16():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(1, 2, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        reference = F.max_pool2d(h, 2)
        leaf = h.detach().requires_grad_(True)
        out = proxy_max_pool2d(leaf, 2, variant="share", share=0.5)
    assert out.dtype == torch.bfloat16 and torch.equal(out, reference)
    out.float().sum().backward()
    winners = torch.zeros_like(h, dtype=torch.float32).flatten(2)
    winners.scatter_(2, F.max_pool2d(h, 2, return_indices=True)[1].flatten(2), 1.0)
    assert torch.equal(leaf.grad.float(), 0.5 + 0.5 * winners.view_as(h))


def test_saved_tensors_no_more_than_torch():
    def saved(fn):
        sizes = []

        def pack(t):
            sizes.append(t.untyped_storage().nbytes())
            return t
        x = torch.randn(4, 8, 16, 16, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x * 1)
        return sum(sizes)

    theirs = saved(lambda t: F.max_pool2d(t, 2))
    assert saved(lambda t: proxy_max_pool2d(t, 2, variant="softmax")) < theirs
    assert saved(lambda t: proxy_max_pool2d(t, 2, variant="share")) < theirs


@pytest.mark.parametrize("kwargs,match", [({"variant": "avg"}, "variant"), ({"temperature": 0.0}, "temperature"),
                                          ({"temperature": float("inf")}, "temperature"),
                                          ({"share": -0.5}, "share")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        proxy_max_pool2d(torch.zeros(1, 1, 4, 4), 2, **kwargs)
    with pytest.raises(ValueError, match="input"):
        proxy_max_pool2d(torch.zeros(4, 4), 2)
