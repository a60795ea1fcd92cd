"""patched() / convert() on torchvision architectures, custom modules and functional calls."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import proxygrad
from proxygrad.surrogates.patch import RECTIFIER_MODULES

ARCHITECTURES = ["resnet18", "vgg11_bn", "densenet121", "mobilenet_v2", "alexnet", "googlenet"]


def _build(name):
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    return torchvision.models.get_model(name, num_classes=7, **kwargs).eval()


def _input_grad(model, x, unit=3):
    xi = x.clone().requires_grad_(True)
    out = model(xi)
    out[:, unit].sum().backward()
    return out.detach(), xi.grad


def _relative_difference(a, b):
    return ((a - b).norm() / b.norm()).item()


def _leaky_copy(model, slope):
    """An independent Leaky ReLU network: deep copy with every rectifier module replaced by torch's own."""
    import copy
    twin = copy.deepcopy(model)
    for parent in twin.modules():
        for name, child in parent._modules.items():
            if type(child) in (nn.ReLU, nn.LeakyReLU):
                parent._modules[name] = nn.LeakyReLU(slope)
    return twin


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_proxygrad_keeps_forward_changes_gradient_and_restores(name):
    model = _build(name)
    size = 64 if name != "alexnet" else 96
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    before = [(n, type(m)) for n, m in model.named_modules()]
    out_relu, grad_relu = _input_grad(model, x)
    with proxygrad.patched(model, mode="proxygrad", slope=0.3) as record:
        out_proxy, grad_proxy = _input_grad(model, x)
    assert record.changed > 0
    assert torch.allclose(out_proxy, out_relu, atol=1e-5, rtol=1e-5)
    assert _relative_difference(grad_proxy, grad_relu) > 1e-3
    assert [(n, type(m)) for n, m in model.named_modules()] == before
    out_after, grad_after = _input_grad(model, x)
    assert torch.equal(out_after, out_relu) and torch.equal(grad_after, grad_relu)


def test_functional_calls_are_counted_densenet():
    model = _build("densenet121")  # its dense layers call F.relu in forward
    with proxygrad.patched(model, mode="proxygrad", slope=0.2) as record:
        model(torch.randn(1, 3, 32, 32))
    assert record.modules > 0 and record.functional_calls > 0


def test_resnet_reused_relu_module_maps_to_one_replacement():
    model = _build("resnet18")
    block = model.layer1[0]  # BasicBlock applies self.relu twice
    with proxygrad.patched(model, mode="proxygrad", slope=0.2) as record:
        assert isinstance(block.relu, proxygrad.ProxyGradReLU) and block.relu.inplace
    assert "layer1.0.relu" in record.replaced
    assert type(block.relu) is nn.ReLU


def test_leaky_mode_equals_a_real_leaky_relu_network():
    model = _build("resnet18")
    twin = _leaky_copy(model, 0.1)
    x = torch.randn(2, 3, 48, 48)
    with proxygrad.patched(model, mode="leaky", slope=0.1):
        out, grad = _input_grad(model, x)
    out_twin, grad_twin = _input_grad(twin, x)
    assert torch.allclose(out, out_twin, atol=1e-6)
    assert torch.allclose(grad, grad_twin, atol=1e-6, rtol=1e-5)


def test_proxygrad_gradient_equals_leaky_gradient_at_the_relu_activations():
    """One hidden layer: the ProxyGrad gradient is the Leaky network's gradient with the ReLU's pattern."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 1))
    x = torch.randn(16, 5)
    w1, w2 = net[0].weight.detach(), net[2].weight.detach()
    pre = x @ w1.T + net[0].bias.detach()
    expected = (w2 * torch.where(pre > 0, 1.0, 0.25)) @ w1  # d/dx sum_j w2_j * lrelu'(pre_j) * pre_j
    with proxygrad.patched(net, mode="proxygrad", slope=0.25):
        _, grad = _input_grad(net, x, unit=0)
    assert torch.allclose(grad, expected, atol=1e-6)


class LeakyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 1)
        self.act = nn.LeakyReLU(0.05)

    def forward(self, x):
        return self.b(F.leaky_relu(self.act(self.a(x)), 0.02))


def test_networks_that_already_use_leaky_relu_keep_their_forward():
    net, x = LeakyNet(), torch.randn(3, 4)
    reference = net(x)
    with proxygrad.patched(net, mode="proxygrad", slope=0.4) as record:
        assert net.act.forward_slope == 0.05 and net.act.backward_slope == 0.4
        assert torch.equal(net(x), reference)
    assert record.functional_calls == 1
    with proxygrad.patched(net, mode="proxygrad", slope=0.4, forward_slope=0.0):
        assert torch.equal(net(x), net.b(F.relu(F.relu(net.a(x)))))


class PFBlock(nn.Module):
    """A PFNet18-style block: fixed depthwise filters, learned 1x1 combination, functional ReLU."""

    def __init__(self):
        super().__init__()
        self.depthwise = nn.Conv2d(3, 12, 3, padding=1, groups=3, bias=False).requires_grad_(False)
        self.pointwise = nn.Conv2d(12, 6, 1)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return torch.relu(self.bn(self.pointwise(self.depthwise(x)))).mean(dim=(2, 3))


def test_custom_module_with_only_functional_relu():
    net = PFBlock().eval()
    x = torch.randn(2, 3, 8, 8)
    out_relu, grad_relu = _input_grad(net, x, unit=1)
    with proxygrad.patched(net, mode="proxygrad", slope=0.5) as record:
        out, grad = _input_grad(net, x, unit=1)
    assert record.modules == 0 and record.functional_calls == 1
    assert torch.equal(out, out_relu) and not torch.allclose(grad, grad_relu)
    with pytest.raises(ValueError, match="patched"):
        proxygrad.convert(net, mode="proxygrad", slope=0.5)


def test_functional_mode_is_scoped_to_the_model_forward():
    net = PFBlock().eval()
    with proxygrad.patched(net, mode="proxygrad", slope=0.5) as record:
        x = torch.tensor([-1.0], requires_grad=True)
        torch.relu(x).sum().backward()  # outside the model: untouched
        assert x.grad.item() == 0.0
    assert record.functional_calls == 0


def test_restored_after_exception_also_inside_forward():
    model = _build("resnet18")
    hooks_before = (dict(model._forward_pre_hooks), dict(model._forward_hooks))
    with pytest.raises(KeyError):
        with proxygrad.patched(model, mode="leaky", slope=0.2):
            raise KeyError("inside")
    with pytest.raises(RuntimeError):
        with proxygrad.patched(model, mode="proxygrad", slope=0.2):
            model(torch.randn(1, 5, 32, 32))  # wrong channel count
    assert all(type(m) not in (proxygrad.ProxyGradReLU,) for m in model.modules())
    assert (dict(model._forward_pre_hooks), dict(model._forward_hooks)) == hooks_before
    x = torch.tensor([-1.0], requires_grad=True)
    torch.relu(x).sum().backward()
    assert x.grad.item() == 0.0  # no mode left active


def test_convert_is_permanent_and_counts():
    model = _build("vgg11_bn")
    n_relu = sum(type(m) is nn.ReLU for m in model.modules())
    record = proxygrad.convert(model, mode="proxygrad", slope=0.1)
    assert record.modules == n_relu
    assert not any(type(m) in RECTIFIER_MODULES for m in model.modules())


def test_relu_mode_is_the_original_network():
    model = _build("alexnet")
    with proxygrad.patched(model, mode="relu", slope=0.3) as record:
        assert record.changed == 0
        assert any(type(m) is nn.ReLU for m in model.modules())


def test_model_without_rectifiers_is_a_clear_error():
    net = nn.Sequential(nn.Linear(3, 3), nn.GELU())
    with pytest.raises(ValueError, match="no ReLU"):
        with proxygrad.patched(net, mode="proxygrad", slope=0.2):
            pass
    with pytest.raises(ValueError, match="no ReLU"):
        proxygrad.convert(net)


@pytest.mark.parametrize("kwargs,match", [({"mode": "fancy"}, "mode"), ({"slope": float("nan")}, "slope"),
                                          ({"slope": -1.0}, "slope"), ({"forward_slope": float("inf")}, "slope")])
def test_bad_arguments(kwargs, match):
    model = _build("alexnet")
    with pytest.raises(ValueError, match=match):
        with proxygrad.patched(model, **kwargs):
            pass
    assert all(type(m) is not proxygrad.ProxyGradReLU for m in model.modules())


def test_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        with proxygrad.patched(lambda x: x):
            pass
