"""2-D inputs: the maximum from the linear regions (regioncam) agrees with the MILP and with a dense grid."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from proxygrad.exact import maximize, maximize_2d, regions, trace
from proxygrad.exact.regions import partition

from .test_exact_network import _randomize_batchnorm


def _net(seed, act):
    torch.manual_seed(seed)
    return _randomize_batchnorm(nn.Sequential(nn.Linear(2, 12), act(), nn.Linear(12, 12), nn.BatchNorm1d(12), act(),
                                              nn.Linear(12, 3)))


@pytest.mark.parametrize("seed,act", [(0, nn.ReLU), (1, lambda: nn.LeakyReLU(0.1)), (2, nn.ReLU)])
def test_region_maximum_agrees_with_milp_and_beats_a_grid(seed, act):
    model = _net(seed, act).double()
    axis = torch.linspace(-1, 1, 301, dtype=torch.float64)
    with torch.no_grad():
        grid = model(torch.cartesian_prod(axis, axis))
    for output in range(2):
        found = maximize_2d(model, output)
        assert found.value == pytest.approx(maximize(model, (2,), output).value, abs=1e-6)
        assert found.value >= grid[:, output].max().item() - 1e-9
        with torch.no_grad():
            assert model(torch.from_numpy(found.input)[None])[0, output].item() == pytest.approx(found.value)


def test_region_counts_of_known_arrangements():
    """Hidden units with lines x = 0 and y = 0 cut the square into 4 regions; one more line x = 0.5 gives 6."""
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.0, 0.0, -0.5]))
    assert regions(nn.Sequential(layer, nn.ReLU(), nn.Linear(3, 1))).num_faces == 6
    assert regions(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))).num_faces == 1  # affine: one region


def test_partition_of_a_rectangle_by_hand():
    """Lines x = 0, y = 0, x = 0.5 cut [-1, 2] x [-0.5, 3] into columns of widths 1, 0.5, 1.5 and rows of
    heights 0.5, 3: 6 regions, areas width * height."""
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.0, 0.0, -0.5]))
    found = partition(nn.Sequential(layer, nn.ReLU(), nn.Linear(3, 1)), (-1.0, -0.5), (2.0, 3.0))
    assert found.faces == [1, 6, 6]
    areas = [abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) / 2
             for p in found.polygons()]
    assert sorted(areas) == pytest.approx(sorted(w * h for w in (1.0, 0.5, 1.5) for h in (0.5, 3.0)))
    corners = {(-1.0, -0.5), (2.0, -0.5), (-1.0, 3.0), (2.0, 3.0)}
    assert corners <= {tuple(v) for v in np.round(found.vertices, 6).tolist()}
    with torch.no_grad():  # regioncam's pre-activations at the vertices are the layer's own
        expected = layer(torch.from_numpy(found.vertices).float()).numpy()
    assert found.vertex_values(0) == pytest.approx(expected, abs=1e-5)


def test_bad_rectangles_and_outputs():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))
    for low, high in [((0.0, 0.0), (1.0, 0.0)), ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), ((0.0, np.inf), (1.0, 1.0))]:
        with pytest.raises(ValueError, match="low < high"):
            partition(model, low, high)
    with pytest.raises(ValueError, match="output 3 out of range"):
        maximize_2d(model, 3)


def test_other_squares():
    model = nn.Sequential(nn.Linear(2, 1)).double()
    w, b = model[0].weight.detach().numpy()[0], model[0].bias.item()
    found = maximize_2d(model, low=0.0, high=3.0)
    assert found.value == pytest.approx(b + np.where(w > 0, 3 * w, 0).sum())


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return x + torch.relu(self.layer(x))


@pytest.mark.parametrize("model,match", [
    (trace(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), (3,)), "2 inputs"),
    (nn.Sequential(nn.Linear(3, 2), nn.ReLU()), "does not run on inputs"),
    (Residual(), "Add .*maximize"),
])
def test_unsupported_networks(model, match):
    with pytest.raises(ValueError, match=match):
        maximize_2d(model)
