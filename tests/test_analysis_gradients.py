"""proxygrad.analysis.gradients: Appendix 11.3's closed forms, the gradient probe, and the paper's Table 5 and
Figure 4 claims on a small configuration."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import integrate

from proxygrad.analysis.gradients import (batchnorm_names, leaky_relu_gaussian_mean, leaky_relu_gaussian_variance,
                                          probe, resnet18)
from proxygrad.models import digits_data

SLOPES = (0.0, 0.01, 0.1, 0.3, 0.5, 1.0)


@pytest.mark.parametrize("slope", SLOPES)
def test_closed_forms_match_numerical_integration(slope):
    def density(x):
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def leaky(x):
        return x if x > 0 else slope * x

    mean = sum(integrate.quad(lambda x: leaky(x) * density(x), a, b)[0] for a, b in ((-np.inf, 0), (0, np.inf)))
    second = sum(integrate.quad(lambda x: leaky(x) ** 2 * density(x), a, b)[0] for a, b in ((-np.inf, 0), (0, np.inf)))
    assert leaky_relu_gaussian_mean(slope) == pytest.approx(mean, abs=1e-10)
    assert leaky_relu_gaussian_variance(slope) == pytest.approx(second - mean ** 2, abs=1e-10)


def test_closed_forms_match_monte_carlo():
    n = 2_000_000
    x = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for slope in SLOPES:
        y = F.leaky_relu(x, slope)
        var = leaky_relu_gaussian_variance(slope)
        # within 5 standard errors of the sample mean and of the sample variance (4th moment of y <= 3)
        assert abs(y.mean().item() - leaky_relu_gaussian_mean(slope)) < 5 * math.sqrt(var / n)
        assert abs(y.var().item() - var) < 5 * math.sqrt(3 / n)


def test_closed_forms_take_arrays_and_the_variance_grows_with_the_slope():
    s = np.linspace(0, 1, 201)
    assert np.allclose(leaky_relu_gaussian_mean(s), [leaky_relu_gaussian_mean(float(v)) for v in s])
    assert isinstance(leaky_relu_gaussian_variance(0.2), float)
    assert np.all(np.diff(leaky_relu_gaussian_variance(s)) > 0)
    assert leaky_relu_gaussian_variance(0.0) == pytest.approx(0.5 - 1 / (2 * math.pi))  # ReLU
    assert leaky_relu_gaussian_variance(1.0) == pytest.approx(1.0)  # identity
    assert leaky_relu_gaussian_mean(1.0) == 0.0


def test_resnet18_without_batchnorm_keeps_the_convolution_weights():
    torch.manual_seed(3)
    with_bn = resnet18(10, batchnorm=True)
    torch.manual_seed(3)
    without = resnet18(10, batchnorm=False)
    assert len(batchnorm_names(with_bn)) == 20 and batchnorm_names(without) == []
    assert sum(isinstance(m, nn.Identity) for m in without.modules()) == 20
    convs = [n for n, m in with_bn.named_modules() if isinstance(m, nn.Conv2d)]
    for name in convs:
        assert torch.equal(with_bn.get_submodule(name).weight, without.get_submodule(name).weight)


def _inputs(batch=4, size=16):
    images, labels = digits_data("test", size)
    return images[:batch].expand(-1, 3, -1, -1).contiguous(), labels[:batch]


def _reference_gradients(model, images, labels, positions):
    """dL/d output via a zero tensor added to each output (a different mechanism from probe's), float64."""
    deltas, hooks = {}, []

    def add_delta(name):
        def hook(module, args, output):
            deltas[name] = torch.zeros_like(output, requires_grad=True)
            return output + deltas[name]
        return hook

    for name in positions:
        hooks.append(model.get_submodule(name).register_forward_hook(add_delta(name)))
    loss = F.cross_entropy(model(images), labels)
    grads = torch.autograd.grad(loss, [deltas[n] for n in positions])
    for hook in hooks:
        hook.remove()
    return {n: g.abs().mean().item() for n, g in zip(positions, grads)}


@pytest.mark.parametrize("batchnorm", [True, False])
def test_probe_matches_an_independent_gradient_computation(batchnorm):
    # layer1.0.conv2 without BatchNorm is followed by the block's in-place ``out += identity``.
    positions = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer3.1.conv2"]
    torch.manual_seed(0)
    model = resnet18(10, batchnorm).double().train()
    images, labels = _inputs()
    images = images.double()
    for slope, mode in ((0.0, "relu"), (0.2, "leaky")):
        found = probe(model, images, labels, positions, mode=mode, slope=slope)
        reference_model = resnet18(10, batchnorm).double().train()
        reference_model.load_state_dict(model.state_dict())
        for parent in reference_model.modules():  # torch's own Leaky ReLU, not proxygrad's patching
            for name, child in parent.named_children():
                if isinstance(child, nn.ReLU) and mode == "leaky":
                    setattr(parent, name, nn.LeakyReLU(slope))
        expected = _reference_gradients(reference_model, images, labels, positions)
        for name in positions:
            assert found.gradients[name] == pytest.approx(expected[name], rel=1e-9), (mode, name)


def test_probe_logit_gradient_and_batchnorm_statistics_follow_their_formulas():
    torch.manual_seed(1)
    model = resnet18(10).double().train()
    images, labels = _inputs(batch=6)
    images = images.double()
    result = probe(model, images, labels, ["fc"], mode="proxygrad", slope=0.3)
    with torch.no_grad():
        logits = resnet18(10).double().train()
        logits.load_state_dict(model.state_dict())
        logits = logits(images)
        # dL/dlogits of the mean cross-entropy: (softmax - one-hot) / B
        expected = (logits.softmax(1) - F.one_hot(labels, 10)).abs().mean().item() / len(labels)
        conv = model.conv1(images)
        channel_std = conv.transpose(0, 1).reshape(conv.shape[1], -1).std(1).mean().item()
    assert result.gradients["fc"] == pytest.approx(expected, rel=1e-9)
    assert result.bn_input_std["bn1"] == pytest.approx(channel_std, rel=1e-9)
    assert set(result.bn_input_std) == set(batchnorm_names(model))
    # ProxyGrad keeps ReLU's forward: same loss as relu; Leaky ReLU changes it.
    assert result.loss == probe(model, images, labels, ["fc"]).loss
    assert result.loss != probe(model, images, labels, ["fc"], mode="leaky", slope=0.3).loss


def test_probe_rejects_unknown_positions_and_modes():
    model = resnet18(10)
    images, labels = _inputs()
    with pytest.raises(ValueError, match="layer1.0.conv1"):
        probe(model, images, labels, ["layer9.conv1"])
    with pytest.raises(ValueError, match="mode"):
        probe(model, images, labels, ["conv1"], mode="gelu")


def _fresh_probe(model, state, x, y, mode, slope):
    model.load_state_dict(state)  # BatchNorm running statistics restart for each method
    return probe(model, x, y, ["layer1.0.conv1"], mode, slope)


def test_table5_and_figure4_directions_on_small_resnets():
    """Paper Section 7: with BatchNorm, ProxyGrad's gradient grows and Leaky ReLU's shrinks with the slope;
    without BatchNorm both grow. Appendix 11.3 / Figure 4: the inputs of BatchNorm layers (all but the first,
    which sees only the image) spread more for steeper Leaky ReLUs. Checked per network on 2 random ResNet18s
    (held for all of 10 seeds tried at this size)."""
    images, labels = digits_data("all", 32)
    images = images.expand(-1, 3, -1, -1)
    for seed in range(2):
        index = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:8]
        x, y = images[index].contiguous(), labels[index]
        for batchnorm in (True, False):
            torch.manual_seed(seed)
            model = resnet18(10, batchnorm).train()
            state = {k: v.clone() for k, v in model.state_dict().items()}
            relu, leaky1, leaky3, proxy1, proxy3 = (
                _fresh_probe(model, state, x, y, mode, slope)
                for mode, slope in (("relu", 0.0), ("leaky", 0.1), ("leaky", 0.3), ("proxygrad", 0.1),
                                    ("proxygrad", 0.3)))
            g = {k: p.gradients["layer1.0.conv1"] for k, p in
                 {"relu": relu, "l1": leaky1, "l3": leaky3, "p1": proxy1, "p3": proxy3}.items()}
            if batchnorm:
                assert g["p3"] > g["p1"] > g["relu"] > g["l1"] > g["l3"], g
                for layer in relu.bn_input_std:
                    stds = [p.bn_input_std[layer] for p in (relu, leaky1, leaky3)]
                    if layer == "bn1":
                        assert stds[0] == stds[1] == stds[2]
                    else:
                        assert stds[0] < stds[1] < stds[2], (layer, stds)
            else:
                assert g["p3"] > g["relu"] and g["l3"] > g["relu"], g
