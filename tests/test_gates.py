"""The field's backward surrogates for rectifiers (redirected, redirected-captum, softgate, guided)."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import proxygrad
from proxygrad.surrogates import MODES, NOT_ASCENT, RULES, GateReLU, gate_relu, is_ascent
from proxygrad.surrogates.gates import soft_gate


def _grad(z, g, rule, **kwargs):
    """d/dz of <g, gate_relu(z)>, in float64; z and g given as nested lists."""
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    gate_relu(z, rule, **kwargs).backward(torch.tensor(g, dtype=torch.float64))
    return z.grad


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


def _same(a, b):
    """Equal up to the rounding of one multiplication (hand-written 0.3 vs 0.1 * 3)."""
    return torch.allclose(a, b, rtol=1e-15, atol=0)


# ---- hard rules against hand-computed values: image 0 has an all-zero ordinary gradient, image 1 not ------
RELU_Z = [[[-1.0, 2.0, -3.0], [0.5, 0.0, 0.0]], [[-1.0, 2.0, -3.0], [0.5, 1.0, -2.0]]]
RELU_G = [[[1.0, 0.0, -2.0], [0.0, 3.0, -4.0]], [[1.0, 5.0, -2.0], [-1.0, 0.0, 7.0]]]
RELU_EXPECTED = {
    # image 0: g where inside, or below with g > 0 (z = 0 counts as below); image 1: g * 1[z > 0]
    "redirected": [[[1, 0, 0], [0, 3, 0]], [[0, 5, 0], [-1, 0, 0]]],
    "redirected-captum": [[[0.1, 0, -0.2], [0, 0.3, -0.4]], [[0, 5, 0], [-1, 0, 0]]],
    "guided": [[[0, 0, 0], [0, 0, 0]], [[0, 5, 0], [0, 0, 0]]],
}

RELU6_Z = [[-1.0, 7.0, 8.0, 3.0, 6.0, -2.0], [-1.0, 7.0, 8.0, 3.0, 6.0, -2.0]]
RELU6_G = [[2.0, -1.0, 3.0, 0.0, -5.0, -1.0], [2.0, -1.0, 3.0, 4.0, -5.0, -1.0]]
RELU6_EXPECTED = {
    # image 0: below with g > 0 and above (z >= 6) with g < 0 move z back into (0, 6)
    "redirected": [[2, -1, 0, 0, -5, 0], [0, 0, 0, 4, 0, 0]],
    "redirected-captum": [[0.2, -0.1, 0.3, 0, -0.5, -0.1], [0, 0, 0, 4, 0, 0]],
    "guided": [[0, 0, 0, 0, 0, 0], [0, 0, 0, 4, 0, 0]],
}

LEAKY_Z = [[-1.0, 2.0, -3.0, 0.5], [-1.0, 2.0, -3.0, 0.5]]
LEAKY_G = [[0.0, 0.0, 0.0, 0.0], [1.0, 5.0, -2.0, -1.0]]
LEAKY_EXPECTED = {  # a = 0.1: the ordinary gradient g * (1 or a); it is zero only where g is
    "redirected": [[0, 0, 0, 0], [0.1, 5, -0.2, -1]],
    "redirected-captum": [[0, 0, 0, 0], [0.1, 5, -0.2, -1]],
    "guided": [[0, 0, 0, 0], [0.1, 5, 0, 0]],
}


@pytest.mark.parametrize("rule", ["redirected", "redirected-captum", "guided"])
def test_hard_rules_relu_hand_computed(rule):
    assert _same(_grad(RELU_Z, RELU_G, rule), _t(RELU_EXPECTED[rule]))


@pytest.mark.parametrize("rule", ["redirected", "redirected-captum", "guided"])
def test_hard_rules_relu6_hand_computed(rule):
    assert _same(_grad(RELU6_Z, RELU6_G, rule, upper=6.0), _t(RELU6_EXPECTED[rule]))


@pytest.mark.parametrize("rule", ["redirected", "redirected-captum", "guided"])
def test_hard_rules_leaky_hand_computed(rule):
    assert _same(_grad(LEAKY_Z, LEAKY_G, rule, forward_slope=0.1), _t(LEAKY_EXPECTED[rule]))


LEAKY6_EXPECTED = {  # a = 0.1, ReLU6: outside means z <= 0 or z >= 6; every image has a nonzero ordinary gradient
    "redirected": [[0.2, -0.1, 0.3, 0, -0.5, -0.1], [0.2, -0.1, 0.3, 4, -0.5, -0.1]],
    "redirected-captum": [[0.2, -0.1, 0.3, 0, -0.5, -0.1], [0.2, -0.1, 0.3, 4, -0.5, -0.1]],
    "guided": [[0.2, 0, 0.3, 0, 0, 0], [0.2, 0, 0.3, 4, 0, 0]],
}


@pytest.mark.parametrize("rule", ["redirected", "redirected-captum", "guided"])
def test_hard_rules_leaky_relu6_hand_computed(rule):
    grad = _grad(RELU6_Z, RELU6_G, rule, forward_slope=0.1, upper=6.0)
    assert _same(grad, _t(LEAKY6_EXPECTED[rule]))


def test_fallback_is_per_image_not_per_batch():
    # Swapping the two images swaps the results: each image's rule depends on itself only.
    swapped = _grad(RELU_Z[::-1], RELU_G[::-1], "redirected")
    assert torch.equal(swapped, _t(RELU_EXPECTED["redirected"][::-1]))
    # Image 1 alone keeps its ordinary gradient; image 0 alone falls back.
    assert torch.equal(_grad(RELU_Z[1:], RELU_G[1:], "redirected"), _t(RELU_EXPECTED["redirected"][1:]))
    # A scalar is one image: dead (z < 0), and g > 0 would raise it.
    assert _grad(-1.0, 2.0, "redirected").item() == 2.0 and _grad(-1.0, -2.0, "redirected").item() == 0.0


def test_guided_equals_ordinary_gradient_of_positive_part():
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    leaf = z.clone().requires_grad_(True)
    F.relu(leaf).backward(g.clamp(min=0))  # torch's own ReLU backward of the positive signals
    assert torch.equal(_grad(z.tolist(), g.tolist(), "guided"), leaf.grad)


# ---- softgate --------------------------------------------------------------------------------------------
Z = [-7.0, -2.5, -0.3, 0.0, 0.2, 1.0, 3.0, 5.9, 6.0, 6.4, 9.0]


def _sigma(v):
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("t", [0.3, 1.0, 2.5])
def test_softgate_relu_is_sigmoid(t):
    g = [0.5 - 0.1 * i for i in range(len(Z))]
    grad = _grad(Z, g, "softgate", temperature=t)
    assert torch.equal(grad, _t(g) * torch.sigmoid(_t(Z) / t))
    by_hand = _t([gi * _sigma(zi / t) for zi, gi in zip(Z, g)])
    assert torch.allclose(grad, by_hand, rtol=1e-14, atol=0)


@pytest.mark.parametrize("a", [0.01, 0.2])
def test_softgate_leaky(a):
    t = 0.7
    grad = _grad(Z, [1.0] * len(Z), "softgate", temperature=t, forward_slope=a)
    assert torch.allclose(grad, _t([a + (1 - a) * _sigma(z / t) for z in Z]), rtol=1e-14, atol=0)


def test_softgate_relu6_is_derivative_of_softplus_relu6():
    t = 0.8
    grad = _grad(Z, [1.0] * len(Z), "softgate", temperature=t, upper=6.0)
    assert torch.allclose(grad, _t([_sigma(z / t) - _sigma((z - 6) / t) for z in Z]), rtol=1e-13, atol=1e-16)
    # t softplus(z / t) - t softplus((z - 6) / t): a smooth ReLU6; its derivative by torch's autograd
    z = _t(Z).requires_grad_(True)
    smooth = F.softplus(z, beta=1 / t, threshold=1e6) - F.softplus(z - 6, beta=1 / t, threshold=1e6)
    smooth.sum().backward()
    assert torch.allclose(grad, z.grad, rtol=1e-12, atol=1e-15)
    assert grad[Z.index(0.0)].item() == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("upper,a", [(None, 0.0), (None, 0.1), (6.0, 0.0), (6.0, 0.1)])
def test_softgate_approaches_the_hard_gate_as_t_goes_to_zero(upper, a):
    z = _t([v for v in Z if v not in (0.0, 6.0)])
    inside = (z > 0) & (z < (upper or math.inf))
    hard = torch.full_like(z, a).masked_fill(inside, 1.0)
    errors = [(soft_gate(z, t, a, upper) - hard).abs().max().item() for t in (1.0, 0.1, 0.01, 1e-3)]
    assert errors[0] > 0.1 and all(e1 >= e2 for e1, e2 in zip(errors, errors[1:]))
    assert errors[-1] < 1e-15  # 0 up to rounding: sigmoid(+-z / t) is within exp(-60) of 1 or 0


def test_softgate_inplace_keeps_its_input():
    z = _t(Z)
    expected = torch.sigmoid(z / 0.5)
    leaf = z.clone().requires_grad_(True)
    y = gate_relu(leaf * 1, "softgate", temperature=0.5, inplace=True)
    y.backward(torch.ones_like(y))
    assert torch.equal(y, F.relu(z)) and torch.equal(leaf.grad, expected)


# ---- forward: bit-identical to the replaced rectifier ----------------------------------------------------
RECTIFIERS = [nn.ReLU(), nn.LeakyReLU(0.2), nn.ReLU6(), nn.ReLU(inplace=True), nn.ReLU6(inplace=True)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("module", RECTIFIERS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_module_forward_bit_identical_and_inplace_same_gradient(rule, module, dtype):
    x = (torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(2)) * 5).to(dtype)
    x[0] = -x[0].abs()  # image 0: every unit at or below 0
    expected = module(x.clone())
    gate = GateReLU.like(module, rule, temperature=0.5)
    grads = []
    for inplace in (False, True):
        gate.inplace = inplace
        leaf = x.clone().requires_grad_(True)
        y = gate(leaf * 1)
        assert torch.equal(y, expected) and y.dtype == dtype
        y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape).to(dtype))
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])


class Mixed(nn.Module):
    """Rectifier modules and every functional form; ``rule`` set: the explicit gate_relu twin."""

    def __init__(self, rule=None, temperature=1.0):
        super().__init__()
        torch.manual_seed(0)
        self.lin1, self.lin2 = nn.Linear(4, 8), nn.Linear(8, 3)
        self.relu, self.leaky, self.relu6 = nn.ReLU(), nn.LeakyReLU(0.1), nn.ReLU6(inplace=True)
        self.rule, self.temperature = rule, temperature

    def act(self, h, slope=0.0, inplace=False, upper=None):
        return gate_relu(h, self.rule, self.temperature, slope, inplace, upper)

    def forward(self, x):
        h = self.lin1(x) * 4
        if self.rule is None:
            parts = [self.relu(h), self.leaky(h), self.relu6(h * 1), F.relu(h - 1), torch.relu(h + 1), (h * 2).relu(),
                     F.relu_(h * 1), torch.relu_(h - 2), F.leaky_relu(h, 0.3), F.leaky_relu_(h * 1, 0.05),
                     F.relu6(h + 3), F.relu(h * 1, inplace=True)]
        else:
            act = self.act
            parts = [act(h), act(h, 0.1), act(h * 1, 0.0, True, 6.0), act(h - 1), act(h + 1), act(h * 2),
                     act(h * 1, 0.0, True), act(h - 2, 0.0, True), act(h, 0.3), act(h * 1, 0.05, True),
                     act(h + 3, upper=6.0), act(h * 1, 0.0, True)]
        return self.lin2(sum(parts))


def _out_and_grad(model, x):
    leaf = x.clone().requires_grad_(True)
    out = model(leaf)
    out[:, 1].sum().backward()
    return out.detach(), leaf.grad


@pytest.mark.parametrize("rule", RULES)
def test_patched_modules_and_functional_calls_match_the_explicit_twin(rule):
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    model = Mixed()
    out_plain, grad_plain = _out_and_grad(model, x)
    with proxygrad.patched(model, rule, temperature=0.4) as record:
        out, grad = _out_and_grad(model, x)
        assert all(type(m) is GateReLU for m in (model.relu, model.leaky, model.relu6))
        assert model.leaky.forward_slope == 0.1 and model.relu6.upper == 6.0 and model.relu6.inplace
    assert record.modules == 3 and record.functional_calls == 9
    assert torch.equal(out, out_plain)
    _, grad_twin = _out_and_grad(Mixed(rule, 0.4), x)
    assert torch.equal(grad, grad_twin)
    if rule == "softgate":
        assert not torch.allclose(grad, grad_plain)
    # restored: the original modules and torch's own functional rectifiers
    assert (type(model.relu), type(model.leaky), type(model.relu6)) == (nn.ReLU, nn.LeakyReLU, nn.ReLU6)
    assert not model._forward_hooks and not model._forward_pre_hooks
    out_after, grad_after = _out_and_grad(model, x)
    assert torch.equal(out_after, out_plain) and torch.equal(grad_after, grad_plain)


def test_redirected_through_a_network_closed_form():
    """One hidden ReLU layer, objective sum_k w_k relu(W x + b)_k: d/dx = W^T (g * gate) with g = w."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(_t([[1, 0], [0, 1], [1, 1]]))
        net[0].bias.zero_()
        net[2].weight.copy_(_t([[2, -1, 3]]))
    x = _t([[-1.0, -2.0], [1.0, -2.0]]).requires_grad_(True)  # image 0: every unit dead; image 1: unit 0 alive
    with proxygrad.patched(net, "redirected"):
        net(x).sum().backward()
    W, g = net[0].weight.detach(), _t([2, -1, 3])
    gate0 = _t([1, 0, 1])  # dead image: units with g > 0
    gate1 = _t([1, 0, 0])  # ordinary: z = (1, -2, -1)
    assert torch.equal(x.grad, torch.stack([W.T @ (g * gate0), W.T @ (g * gate1)]))


def test_convert_uses_the_temperature():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU6(), nn.Linear(2, 2), nn.LeakyReLU(0.3))
    record = proxygrad.convert(net, "softgate", temperature=0.25)
    assert record.modules == 2 and all(type(net[i]) is GateReLU for i in (1, 3))
    assert (net[1].temperature, net[1].upper, net[3].forward_slope) == (0.25, 6.0, 0.3)


# ---- ascent marking and bad input ------------------------------------------------------------------------
def test_guided_is_marked_not_ascent():
    assert set(RULES) <= set(MODES) and NOT_ASCENT == ("guided",)
    assert [m for m in MODES if not is_ascent(m)] == ["guided"]
    with pytest.raises(ValueError, match="redirected-captum"):
        is_ascent("lucid")


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "lucid"}, "softgate"), ({"mode": "softgate", "temperature": 0.0}, "temperature"),
    ({"mode": "softgate", "temperature": -1.0}, "temperature"),
    ({"mode": "softgate", "temperature": float("nan")}, "temperature"),
    ({"mode": "redirected", "temperature": float("inf")}, "temperature"),
    ({"mode": "guided", "kinds": ("rectifiers", "pooling")}, "rectifiers only"),
    ({"mode": "softgate", "kinds": "all"}, "rectifiers only")])
def test_bad_arguments(kwargs, match):
    model = Mixed()
    with pytest.raises(ValueError, match=match):
        with proxygrad.patched(model, **kwargs):
            pass
    with pytest.raises(ValueError, match=match):
        proxygrad.convert(model, **kwargs)
    assert type(model.relu) is nn.ReLU and not model._forward_pre_hooks


def test_bad_arguments_of_the_gate_itself():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="redirected-captum"):
        gate_relu(x, "lucid")
    with pytest.raises(ValueError, match="temperature"):
        gate_relu(x, "softgate", temperature=float("nan"))
    with pytest.raises(ValueError, match="temperature"):
        GateReLU("softgate", temperature=-0.5)
    with pytest.raises(ValueError, match="forward_slope"):
        GateReLU("guided", forward_slope=-0.1)
    with pytest.raises(ValueError, match="upper"):
        GateReLU("guided", upper=0.0)
    with pytest.raises(ValueError, match="nn.ReLU"):
        GateReLU.like(nn.GELU(), "guided")
