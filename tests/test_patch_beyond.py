"""patched() / convert() with smooth activations and max pooling: per-kind selection, counts, exact restore."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import proxygrad
from proxygrad.surrogates.patch import KINDS, module_kind
from proxygrad.surrogates.pooling import ProxyMaxPool2d, proxy_max_pool2d
from proxygrad.surrogates.smooth import SmoothProxy, proxy_derivative, smooth_proxy


def _input_grad(model, x, unit=0):
    leaf = x.clone().requires_grad_(True)
    out = model(leaf)
    out[:, unit].sum().backward()
    return out.detach(), leaf.grad


class Mixed(nn.Module):
    """Every kind as a module (one GELU module called twice) and as a functional call."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.act, self.relu, self.pool = nn.GELU(), nn.ReLU(), nn.MaxPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        h = self.pool(self.relu(self.act(self.conv1(x))))                      # 8x8 -> 4x4
        h = self.act(self.conv2(h))
        h = F.silu(h) + F.mish(h) + F.elu(h, 0.5) + F.hardswish(h) + torch.relu(h)
        return self.fc(F.max_pool2d(h, 2).flatten(1))                           # 4x4 -> 2x2


class MixedTwin(Mixed):
    """The same network written with the proxies explicitly (the independent expectation)."""

    def __init__(self, source, s=0.2, variant="floor", t=0.5):
        super().__init__()
        self.load_state_dict(source.state_dict())
        self.s, self.variant, self.t = s, variant, t
        self.act = SmoothProxy("gelu", variant, s)
        self.relu = proxygrad.ProxyGradReLU(s)
        self.pool = ProxyMaxPool2d(2, variant="softmax", temperature=t)

    def forward(self, x):
        h = self.pool(self.relu(self.act(self.conv1(x))))
        h = self.act(self.conv2(h))
        sm = lambda f, p=None: smooth_proxy(h, f, self.variant, self.s, p)
        h = sm("silu") + sm("mish") + sm("elu", 0.5) + sm("hardswish") + proxygrad.proxygrad_relu(h, self.s)
        return self.fc(proxy_max_pool2d(h, 2, variant="softmax", temperature=self.t).flatten(1))


def _mixed():
    torch.manual_seed(0)
    return Mixed().eval(), torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(1))


def test_default_kinds_change_only_rectifiers():
    model, x = _mixed()
    with proxygrad.patched(model, slope=0.2) as record:
        assert type(model.act) is nn.GELU and type(model.pool) is nn.MaxPool2d
        assert isinstance(model.relu, proxygrad.ProxyGradReLU)
        model(x)
    assert record.kinds == ("rectifiers",)
    assert record.by_kind() == {"rectifiers": {"modules": 1, "functional_calls": 1}}


def test_per_kind_defaults_are_the_measured_ones_not_the_rectifier_slope():
    model, _ = _mixed()
    with proxygrad.patched(model, slope=0.3, kinds="all"):
        assert (model.act.variant, model.act.slope) == ("add", 0.05)
        assert (model.pool.variant, model.pool.temperature, model.pool.share) == ("softmax", 0.5, 0.2)
        assert model.relu.backward_slope == 0.3


def test_all_kinds_forward_identical_gradient_equals_explicit_twin_and_counts():
    model, x = _mixed()
    twin = MixedTwin(model, s=0.2, variant="floor", t=0.5).eval()
    out_orig, grad_orig = _input_grad(model, x)
    with proxygrad.patched(model, slope=0.2, kinds="all", smooth_variant="floor", smooth_slope=0.2,
                           pool_temperature=0.5) as record:
        out, grad = _input_grad(model, x)
    out_twin, grad_twin = _input_grad(twin, x)
    assert torch.equal(out, out_orig) and torch.equal(out_twin, out_orig)
    assert torch.equal(grad, grad_twin) and not torch.allclose(grad, grad_orig)
    assert record.kinds == KINDS
    assert record.by_kind() == {"rectifiers": {"modules": 1, "functional_calls": 1},
                                "smooth": {"modules": 1, "functional_calls": 4},
                                "pooling": {"modules": 1, "functional_calls": 1}}
    assert record.modules == 3 and record.functional_calls == 6
    assert sorted(record.replaced) == ["act", "pool", "relu"]
    assert type(model.act) is nn.GELU and type(model.pool) is nn.MaxPool2d and type(model.relu) is nn.ReLU
    assert torch.equal(_input_grad(model, x)[1], grad_orig)


def test_one_hidden_gelu_layer_closed_form():
    """d/dx w2 . gelu(W1 x + b) with the proxy: (w2 * g(pre)) @ W1, g the documented proxy derivative."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 9), nn.GELU(), nn.Linear(9, 1)).double()
    x = torch.randn(16, 5, dtype=torch.float64) * 2
    pre = net[0](x).detach()
    for variant in ("floor", "add", "leaky"):
        expected = (net[2].weight.detach() * proxy_derivative(pre, "gelu", variant, 0.15)) @ net[0].weight.detach()
        with proxygrad.patched(net, slope=0.3, kinds=("smooth",), smooth_variant=variant, smooth_slope=0.15):
            _, grad = _input_grad(net, x)
        assert torch.allclose(grad, expected, rtol=1e-12, atol=1e-14)


def test_pooling_share_on_resnet18_only_the_maxpool():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.randn(1, 3, 48, 48)
    out_orig, grad_orig = _input_grad(model, x)
    with proxygrad.patched(model, slope=0.5, kinds=("pooling",), pool_variant="share", pool_share=0.2) as record:
        assert model.maxpool.variant == "share" and model.maxpool.share == 0.2
        out, grad = _input_grad(model, x)
    assert record.by_kind() == {"pooling": {"modules": 1, "functional_calls": 0}}
    assert torch.equal(out, out_orig) and not torch.allclose(grad, grad_orig)
    with proxygrad.patched(model, kinds=("pooling",), pool_variant="share", pool_share=0.0):
        assert torch.equal(_input_grad(model, x)[1], grad_orig)  # share 0: max pooling's own gradient
    assert type(model.maxpool) is nn.MaxPool2d


def test_timm_modules_through_functional_calls():
    timm_act = pytest.importorskip("timm.layers.activations")
    from timm.layers.pool2d_same import (
        MaxPool2dSame,  # a subclass of nn.MaxPool2d that calls F.max_pool2d
    )

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), timm_act.GELU(), MaxPool2dSame(3, 2), nn.Flatten(),
                        nn.Linear(48, 2)).eval()
    x = torch.randn(2, 1, 9, 9)
    reference = net(x)
    with proxygrad.patched(net, slope=0.1, kinds=("smooth", "pooling")) as record:
        assert torch.equal(net(x), reference)
    assert record.by_kind() == {"smooth": {"modules": 1, "functional_calls": 0},
                                "pooling": {"modules": 0, "functional_calls": 1}}


def test_torch_max_pool2d_and_return_indices_are_intercepted():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 1)

        def forward(self, x):
            a = torch.max_pool2d(x, 2)
            b, _ = F.max_pool2d(x, 2, return_indices=True)
            return self.fc((a + b + F.max_pool2d_with_indices(x, 2)[0]).flatten(1))

    net, x = Net(), torch.randn(2, 1, 4, 4)
    reference = net(x)
    with proxygrad.patched(net, kinds="pooling", pool_variant="share", pool_share=1.0) as record:
        out, grad = _input_grad(net, x)
    assert torch.equal(out, reference) and record.calls_by_kind == {"pooling": 3}
    # share 1: every input of a window gets the window's whole gradient, three times (w of fc, 2x2 windows)
    expected = 3 * net.fc.weight.detach().view(1, 1, 2, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(grad, expected.expand_as(grad))


def test_functional_mode_is_scoped_to_the_model_forward():
    model, _ = _mixed()
    with proxygrad.patched(model, kinds="all") as record:
        v = torch.tensor([-3.0], requires_grad=True)
        F.silu(v).sum().backward()
        assert v.grad.item() < 0  # outside the model: SiLU's own derivative
        assert record.functional_calls == 0


def test_restored_after_exception_inside_forward():
    model, _ = _mixed()
    before = [(n, type(m)) for n, m in model.named_modules()]
    with pytest.raises(RuntimeError):
        with proxygrad.patched(model, kinds="all"):
            model(torch.randn(1, 5, 8, 8))
    assert [(n, type(m)) for n, m in model.named_modules()] == before
    assert not model._forward_pre_hooks and not model._forward_hooks


def test_convert_by_kind():
    model, x = _mixed()
    reference = model(x)
    record = proxygrad.convert(model, slope=0.1, kinds=("smooth", "pooling"), pool_variant="share")
    assert record.modules_by_kind == {"smooth": 1, "pooling": 1}
    assert isinstance(model.act, SmoothProxy) and isinstance(model.pool, ProxyMaxPool2d)
    assert type(model.relu) is nn.ReLU and torch.equal(model(x), reference)
    assert {module_kind(m) for m in model.modules()} == {None, "rectifiers"}


def test_convert_counts_a_reused_module_at_every_place():
    act = nn.SiLU()
    net = nn.Sequential(nn.Linear(2, 2), act, nn.Linear(2, 2), act)
    record = proxygrad.convert(copy.deepcopy(net), kinds="smooth")
    assert record.modules == 2


@pytest.mark.parametrize("kwargs,match", [({"kinds": ("smooth", "dropout")}, "kinds"), ({"kinds": ()}, "kinds"),
                                          ({"mode": "leaky", "kinds": ("smooth",)}, "rectifiers only"),
                                          ({"smooth_variant": "max"}, "smooth_variant"),
                                          ({"pool_variant": "avg"}, "variant"),
                                          ({"pool_temperature": -1.0}, "temperature"),
                                          ({"smooth_slope": float("nan")}, "smooth_slope")])
def test_bad_arguments(kwargs, match):
    model, _ = _mixed()
    with pytest.raises(ValueError, match=match):
        with proxygrad.patched(model, **kwargs):
            pass
    assert type(model.act) is nn.GELU


def test_nothing_of_the_selected_kinds_is_a_clear_error():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(ValueError, match="GELU, SiLU, Mish, ELU or Hardswish"):
        with proxygrad.patched(net, kinds=("smooth",)):
            pass
    with pytest.raises(ValueError, match="MaxPool2d modules to convert"):
        proxygrad.convert(net, kinds="pooling")
    with pytest.raises(ValueError, match="SmoothProxy"):
        with proxygrad.patched(nn.GELU(), kinds="smooth"):
            pass


def test_channels_last_and_autocast_keep_the_forward():
    model, x = _mixed()
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = model(x)
        with proxygrad.patched(model, kinds="all"):
            leaf = x.clone().requires_grad_(True)
            out = model(leaf)
            out.float().sum().backward()
    assert out.dtype == reference.dtype == torch.bfloat16 and torch.equal(out, reference)
    assert leaf.grad.is_contiguous(memory_format=torch.channels_last) and torch.isfinite(leaf.grad).all()
