"""The MILP's maximum: attained by the network, never beaten by sampling, equal to known optima."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from proxygrad.exact import maximize, trace
from proxygrad.models.digits import DigitsResNet
from proxygrad.problems import table1

from .test_exact_network import _randomize_batchnorm


def _check_attained(result, model, shape, output):
    """The returned input is in the box and the network reaches the MILP's value there (float64 forward)."""
    assert result.optimal and result.input.shape == shape
    assert np.all(np.abs(result.input) <= 1)
    with torch.no_grad():
        value = model.double()(torch.from_numpy(result.input)[None])[0, output].item()
    assert value == pytest.approx(result.value, abs=1e-9)
    assert result.milp_value == pytest.approx(value, rel=1e-6, abs=1e-6)
    assert result.bound == pytest.approx(value, rel=1e-5, abs=1e-6)


def _sampled_max(model, shape, output, n=20000, seed=0):
    x = torch.rand(n, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    corners = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=int(np.prod(shape)))), dtype=torch.float64)
    with torch.no_grad():
        values = model.double()(x)[:, output]
        if len(corners) <= 4096:
            values = torch.cat([values, model(corners.view(-1, *shape))[:, output]])
    return values.max().item()


def _mlp(act, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 12), act(), nn.Linear(12, 12), act(), nn.Linear(12, 3)).eval()


NETWORKS = {
    "mlp relu": (lambda: _mlp(nn.ReLU, 0), (4,)),
    "mlp leaky": (lambda: _mlp(lambda: nn.LeakyReLU(0.2), 1), (4,)),
    "cnn bn maxpool": (lambda: _randomize_batchnorm(nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(12, 3))), (1, 4, 4)),
    "cnn leaky maxpool": (lambda: _randomize_batchnorm(nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(8, 3))), (1, 4, 4)),
    "resnet (residual adds)": (lambda: _randomize_batchnorm(DigitsResNet((2,))), (1, 4, 4)),
}


@pytest.mark.parametrize("name,output", [(name, 0) for name in NETWORKS] + [("mlp relu", 2), ("mlp leaky", 1)])
def test_maximum_is_attained_and_never_below_sampling(name, output):
    make, shape = NETWORKS[name]
    torch.manual_seed(3)
    model = make()
    result = maximize(model, shape, output)
    _check_attained(result, model, shape, output)
    assert result.value >= _sampled_max(model, shape, output) - 1e-9


def test_max_pool_grid_search_in_three_dimensions():
    """Input (1, 1, 3) -> conv (4 channels, width 2) -> ReLU -> max over the 2 positions -> linear: the MILP
    beats every point of a 61^3 grid and the network reaches its value."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, (1, 2)), nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Flatten(),
                          nn.Linear(4, 1)).eval().double()
    axis = torch.linspace(-1, 1, 61, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis, axis).view(-1, 1, 1, 3)
    with torch.no_grad():
        best = model(grid).max().item()
    result = maximize(model, (1, 1, 3))
    _check_attained(result, model, (1, 1, 3), 0)
    assert result.value >= best - 1e-9


def test_signed_sum_of_window_maxima_has_the_closed_form_optimum():
    """sum_w c_w max(window w of x) over [-1, 1]^(4x4): each window is pushed to +1 (c_w > 0) or all of it to
    -1 (c_w < 0), so the maximum is sum |c_w|."""
    weights = torch.tensor([[1.5, -2.0, 0.5, -0.25]], dtype=torch.float64)
    model = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 1, bias=False)).double()
    model[2].weight.data.copy_(weights)
    result = maximize(model, (1, 4, 4))
    assert result.value == pytest.approx(weights.abs().sum().item())
    _check_attained(result, model, (1, 4, 4), 0)


def test_linear_model_over_any_box():
    """max of w.x + b over [low, high]^d is b + sum(w+ high + w- low)."""
    layer = nn.Linear(5, 1).double()
    w, b = layer.weight.detach().numpy()[0], layer.bias.item()
    for low, high in [(-1, 1), (0, 2), (-3, -1)]:
        expected = b + np.where(w > 0, w * high, w * low).sum()
        assert maximize(nn.Sequential(layer), (5,), low=low, high=high).value == pytest.approx(expected)


@pytest.mark.parametrize("size", [(1, 1), (3, 4), (6, 6)])
def test_white_image_problems_known_optima(size):
    for name, problem in table1().items():
        result = maximize(problem, (1, *size))
        assert result.optimal
        assert result.value == pytest.approx(problem.optimum(*size), abs=1e-5), name


def test_interval_and_lp_bounds_give_the_same_maximum():
    model, shape = NETWORKS["mlp relu"][0](), (4,)
    lp, interval = maximize(model, shape, 1, bounds="lp"), maximize(model, shape, 1, bounds="interval")
    assert lp.value == pytest.approx(interval.value, rel=1e-7)
    assert lp.unstable <= interval.unstable  # LP bounds decide at least as many units


def test_time_limit_reports_status_and_a_bound():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 10)).eval()
    result = maximize(model, (1, 8, 8), 0, bounds="interval", time_limit=0.2)
    assert not result.optimal and "time limit" in result.status.lower()
    assert result.best == result.bound
    if result.input is not None:
        assert result.bound >= result.value


@pytest.mark.parametrize("kwargs,match", [({"output": 3}, "out of range"), ({"bounds": "exact"}, "bounds"),
                                          ({"low": 1.0, "high": 1.0}, "low < high"),
                                          ({"time_limit": 0}, "time_limit")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        maximize(NETWORKS["mlp relu"][0](), (4,), **kwargs)


def test_traced_program_can_be_given_directly():
    model = NETWORKS["mlp leaky"][0]()
    assert maximize(trace(model, (4,)), output=2).value == pytest.approx(maximize(model, (4,), 2).value)
