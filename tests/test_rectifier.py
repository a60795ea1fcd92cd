"""ProxyGradReLU against PyTorch's own ReLU / Leaky ReLU, and the paper's Table 2."""
import warnings

import pytest
import torch
import torch.nn.functional as F

import proxygrad
from proxygrad.surrogates import rectifier
from proxygrad.surrogates.reference import PaperProxyGradReLU

SLOPE_PAIRS = [(0.0, 0.2), (0.0, 0.05), (0.1, 0.5), (0.01, 0.01), (0.0, 0.0)]


def _input(dtype, channels_last, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64).to(dtype)
    x[0, 0, 0, :3] = 0.0  # exact zeros
    x[1, 2] = -0.0
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _torch_leaky_grad(x, slope, upstream):
    xr = x.detach().clone().requires_grad_(True)
    F.leaky_relu(xr, slope).backward(upstream)
    return xr.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("forward_slope,backward_slope", SLOPE_PAIRS)
def test_forward_and_backward_match_torch(dtype, channels_last, inplace, forward_slope, backward_slope):
    x = _input(dtype, channels_last)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    leaf = x.clone().requires_grad_(True)
    act = proxygrad.ProxyGradReLU(backward_slope, forward_slope, inplace=inplace)
    # In-place needs a non-leaf input, as for torch's own in-place ReLU.
    y = act(leaf * 1 if inplace else leaf)
    expected = F.relu(x) if forward_slope == 0 else F.leaky_relu(x, forward_slope)
    assert torch.equal(y, expected)
    y.backward(upstream)
    # Including exact zeros: torch's leaky_relu backward uses the slope at x == 0, and so do we.
    assert torch.equal(leaf.grad, _torch_leaky_grad(x, backward_slope, upstream))


def test_value_at_zero_is_backward_slope():
    x = torch.zeros(4, requires_grad=True)
    proxygrad.proxygrad_relu(x, 0.3).sum().backward()
    assert torch.equal(x.grad, torch.full((4,), 0.3))


def test_table2_worked_example():
    """Paper, Table 2, 'ReLU with ProxyGrad': forward sparse, backward R_l = max((f > 0), s) * R_(l+1).

    The printed BP table has two sign typos: at (1,0) and (2,0) the upstream gradient is +1 and +2 and the
    input is negative, so the table's own formula gives +s and +2s where it prints -s and -2s (its plain ReLU
    row, with the same upstream gradient, is consistent). We follow the formula and check all other entries.
    """
    s = 0.1
    f = torch.tensor([[3., 2., -1.], [-1., 1., 3.], [-2., -3., 4.]], dtype=torch.float64, requires_grad=True)
    upstream = torch.tensor([[1., -1., -2.], [1., 2., 3.], [2., -1., -3.]], dtype=torch.float64)
    y = proxygrad.ProxyGradReLU(backward_slope=s)(f)
    assert torch.equal(y, torch.tensor([[3., 2., 0.], [0., 1., 3.], [0., 0., 4.]], dtype=torch.float64))
    y.backward(upstream)
    printed = torch.tensor([[1., -1., -2 * s], [-s, 2., 3.], [-2 * s, -s, -3.]], dtype=torch.float64)
    typos = torch.zeros(3, 3, dtype=torch.bool)
    typos[1, 0] = typos[2, 0] = True
    assert torch.equal(f.grad[~typos], printed[~typos])
    assert torch.equal(f.grad[typos], -printed[typos])
    relu_row = torch.tensor([[1., -1., 0.], [0., 2., 3.], [0., 0., -3.]], dtype=torch.float64)
    assert torch.equal(torch.where(f.grad.abs() < 1, 0.0, f.grad), relu_row)


@pytest.mark.parametrize("slope", [0.01, 0.3, 1.0])
def test_gradcheck_when_slopes_agree(slope):
    """With equal slopes the rectifier is a true Leaky ReLU, so its gradient is the numerical one."""
    x = torch.randn(20, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-3, x + 0.01, x).requires_grad_(True)  # keep away from the kink
    assert torch.autograd.gradcheck(lambda t: proxygrad.proxygrad_relu(t, slope, slope), (x,))


def test_relu6_proxy():
    x = torch.tensor([-2.0, 0.0, 3.0, 6.0, 8.0], requires_grad=True)
    y = proxygrad.ProxyGradReLU(0.2, upper=6.0)(x)
    assert torch.equal(y, F.relu6(x.detach()))
    y.sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.2, 0.2, 1.0, 0.2, 0.2]))


def test_leaky_relu6_forward_is_continuous_and_slope_outside():
    x = torch.tensor([-2.0, 3.0, 8.0], dtype=torch.float64, requires_grad=True)
    y = proxygrad.ProxyGradReLU(0.1, forward_slope=0.1, upper=6.0)(x)
    assert torch.allclose(y, torch.tensor([-0.2, 3.0, 6.2], dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda t: proxygrad.ProxyGradReLU(0.1, 0.1, upper=6.0)(t), (x,))


def test_incoming_gradient_not_mutated_unlike_paper_reference():
    x = torch.randn(100)
    upstream = torch.randn(100)
    kept = upstream.clone()
    a = x.clone().requires_grad_(True)
    proxygrad.proxygrad_relu(a, 0.2).backward(upstream)
    assert torch.equal(upstream, kept)
    b = x.clone().requires_grad_(True)
    PaperProxyGradReLU(0.2)(b).backward(upstream)
    assert not torch.equal(upstream, kept), "the paper's reference mutates the upstream gradient"
    assert torch.allclose(a.grad, b.grad)


def _saved(fn, x):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn(x)
    return saved


def test_saves_only_the_output():
    x = torch.randn(64, 64, requires_grad=True)
    pre = x * 1
    saved = _saved(lambda t: proxygrad.proxygrad_relu(t, 0.2), pre)
    assert len(saved) == 1 and saved[0].dtype == pre.dtype
    relu_saved = _saved(torch.relu, pre)
    assert sum(t.nbytes for t in saved) == sum(t.nbytes for t in relu_saved)


def test_inplace_marks_dirty_and_shares_storage():
    x = torch.randn(10, requires_grad=True)
    h = x * 2
    y = proxygrad.ProxyGradReLU(0.2, inplace=True)(h)
    assert y.data_ptr() == h.data_ptr()
    y.sum().backward()
    assert torch.allclose(x.grad, 2 * torch.where(x > 0, 1.0, 0.2))


def test_inplace_on_leaf_is_refused_like_torch():
    x = torch.randn(5, requires_grad=True)
    with pytest.raises(RuntimeError):
        proxygrad.ProxyGradReLU(0.2, inplace=True)(x)


def test_autocast_bf16_keeps_dtype_and_gradient():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        y = proxygrad.proxygrad_relu(h, 0.2)
        assert y.dtype == torch.bfloat16
        expected = torch.relu(h)
    assert torch.equal(y, expected)
    y.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_torch_compile_fullgraph_without_graph_breaks():
    act = proxygrad.ProxyGradReLU(0.2)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), act, torch.nn.Linear(8, 1))
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    x = torch.randn(4, 8)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    compiled(a).sum().backward()
    net(b).sum().backward()
    assert torch.allclose(a.grad, b.grad)
    explanation = torch._dynamo.explain(net)(x)
    assert explanation.graph_break_count == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, "abc"])
def test_bad_slopes_raise_value_error(bad):
    with pytest.raises(ValueError, match="slope"):
        proxygrad.ProxyGradReLU(backward_slope=bad)
    with pytest.raises(ValueError, match="slope"):
        proxygrad.ProxyGradReLU(backward_slope=0.1, forward_slope=bad)


def test_slope_above_one_warns_once(monkeypatch):
    monkeypatch.setattr(rectifier, "_warned_steep", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proxygrad.ProxyGradReLU(backward_slope=1.5)
        proxygrad.ProxyGradReLU(backward_slope=2.0)
    assert len([w for w in caught if "above 1" in str(w.message)]) == 1
