"""Tracing networks into piecewise-linear programs: the program computes exactly what PyTorch computes."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from proxygrad.exact import trace
from proxygrad.exact.network import Affine, MaxPool, Rectifier
from proxygrad.models.digits import DigitsResNet


def _randomize_batchnorm(model):
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=generator))
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=generator))
    return model.eval()


class Functional(nn.Module):
    """Functional rectifiers and pooling, a constant add, average pooling and a flatten method."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 2 * 3, 2)

    def forward(self, x):
        y = F.max_pool2d(F.leaky_relu(self.conv(x), 0.2), 2, padding=(0, 1))
        y = F.avg_pool2d(y + 0.5, (1, 1))
        return self.fc(F.relu(y).flatten(1))


def _models():
    torch.manual_seed(0)
    return {
        "resnet (BN, residual adds, adaptive average pooling)": (_randomize_batchnorm(DigitsResNet((3, 4))), (1, 8, 8)),
        "cnn (BN, max pooling with padding)": (_randomize_batchnorm(nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(),
            nn.Linear(4 * 4 * 4, 5))), (1, 8, 8)),
        "functional": (Functional().eval(), (1, 4, 4)),
        "mlp (BatchNorm1d, LeakyReLU)": (_randomize_batchnorm(nn.Sequential(
            nn.Linear(3, 6), nn.BatchNorm1d(6), nn.LeakyReLU(0.05), nn.Dropout(0.5), nn.Linear(6, 2))), (3,)),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_program_equals_the_networks_float64_forward(name):
    model, shape = _models()[name]
    net = trace(model, shape)
    x = torch.rand(7, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        expected = model.double()(x).numpy()
    assert np.allclose(net(x.numpy().reshape(7, -1)), expected, atol=1e-12, rtol=1e-12)
    assert np.allclose(net(x[0].numpy().ravel()), expected[0], atol=1e-12)


def test_affine_layers_are_measured_exactly():
    layer = nn.Linear(4, 3).double()
    (op,) = trace(nn.Sequential(layer), (4,)).operations
    assert isinstance(op, Affine)
    assert np.array_equal(op.weight, layer.weight.detach().numpy())
    assert np.array_equal(op.bias, layer.bias.detach().numpy())


def test_operations_are_recognized():
    model, shape = _models()["cnn (BN, max pooling with padding)"]
    kinds = [type(op) for op in trace(model, shape).operations]
    assert kinds == [Affine, Affine, Rectifier, MaxPool, Affine, Affine]  # conv, BN, ReLU, pool, flatten, fc
    windows = trace(model, shape).operations[3].windows
    assert windows.shape == (4 * 4 * 4, 9) and (windows == -1).any()  # padding marked -1


class Branchy(nn.Module):
    def forward(self, x):
        return x if x.sum() > 0 else -x


@pytest.mark.parametrize("model,shape,match", [
    (nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), (2,), "Sigmoid"),
    (nn.Sequential(nn.Linear(2, 2), nn.GELU()), (2,), "GELU"),
    (Branchy(), (2,), "control flow"),
    (nn.Sequential(nn.Linear(3, 2)), (2,), "does not run on inputs"),
    (nn.Sequential(nn.Linear(3, 2)), (0,), "input_shape"),
])
def test_unsupported_networks_are_clear_errors(model, shape, match):
    with pytest.raises(ValueError, match=match):
        trace(model, shape)


def test_a_converted_model_is_traced_by_its_forward():
    """convert() keeps the forward, so the program (and so the exact maximum) of a converted model is the
    original's: the ProxyGrad rectifier enters with its forward slope, not its backward one."""
    from proxygrad import convert

    torch.manual_seed(0)
    original = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.LeakyReLU(0.1), nn.Linear(5, 2))
    converted = copy.deepcopy(original)
    convert(converted, "proxygrad", 0.3)
    ops = trace(converted, (4,)).operations
    assert [op.slope for op in ops if isinstance(op, Rectifier)] == [0.0, 0.1]
    x = np.random.default_rng(0).uniform(-1, 1, (7, 4))
    assert np.allclose(trace(converted, (4,))(x), trace(original, (4,))(x))
