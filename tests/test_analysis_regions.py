"""proxygrad.analysis.regions: exact region counts (regioncam) against hand counts and dense sampling."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from matplotlib.path import Path

from proxygrad import ProxyGradReLU
from proxygrad.analysis.regions import (Box, activation_patterns, box_around, dead_units, exact_regions,
                                        hidden_layers, sampled_regions)


def _set(linear: nn.Linear, weight, bias):
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return linear


def _area(polygon):
    x, y = polygon[:, 0], polygon[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def test_grid_of_lines_gives_a_times_b_cells():
    # 3 vertical lines x = -0.5, 0, 0.5 and 2 horizontal lines y = -0.2, 0.7 inside the box, plus one line
    # x = 5 outside it: (3 + 1) * (2 + 1) = 12 regions.
    weight = [[1, 0]] * 3 + [[0, 1]] * 2 + [[1, 0]]
    bias = [0.5, 0.0, -0.5, 0.2, -0.7, -5.0]
    model = nn.Sequential(_set(nn.Linear(2, 6), weight, bias), nn.ReLU())
    box = Box((-1.0, -1.0), (1.0, 1.0))
    mesh = exact_regions(model, box)
    assert mesh.counts == [12]
    assert sum(_area(p) for p in mesh.polygons) == pytest.approx(4.0)
    expected = sorted(w * h for w in (0.5, 0.5, 0.5, 0.5) for h in (0.8, 0.9, 0.3))
    assert sorted(_area(p) for p in mesh.polygons) == pytest.approx(expected)
    # the unit of x = 5 is never active in the box (max pre-activation -4), all others are
    assert mesh.max_preactivation[0][5] == pytest.approx(-4.0)
    assert (mesh.max_preactivation[0][:5] > 0).all()


def test_second_layer_splits_by_hand():
    # Layer 1: relu(x), relu(y) -> 4 quadrants. Layer 2: relu(u1 + u2 - 0.5) splits quadrant (+,+) along
    # x + y = 0.5, (+,-) along x = 0.5, (-,+) along y = 0.5 and leaves (-,-) alone: 4 + 3 = 7 regions.
    # A second unit relu(-u1 - 1) is never active: dead everywhere.
    model = nn.Sequential(_set(nn.Linear(2, 2), [[1, 0], [0, 1]], [0, 0]), nn.ReLU(),
                          _set(nn.Linear(2, 2), [[1, 1], [-1, 0]], [-0.5, -1.0]), nn.ReLU(), nn.Linear(2, 3))
    box = Box((-1.0, -1.0), (1.0, 1.0))
    mesh = exact_regions(model, box)
    assert mesh.counts == [4, 7]
    assert mesh.max_preactivation[1] == pytest.approx([1.5, -1.0])  # max of u1 + u2 - 0.5 is at (1, 1)
    assert dead_units(model, box.grid(50)) == [0, 1]
    assert sampled_regions(model, box, 200) == [4, 7]
    # With Leaky ReLU (slope 0.5) in layer 1, unit 1 splits (+,-) along x + 0.5y = 0.5, (-,+) along
    # 0.5x + y = 0.5 and never (-,-) (x + y = 1 there): still 7 regions in [-1, 1]^2. Unit 2, -u1 - 1 with
    # u1 = 0.5x for x < 0, wakes up for x < -2: in [-3, 3]^2 the line x = -2 cuts (-,-) once and both
    # pieces of (-,+) (where 0.5x + y = 0.5 meets it at y = 1.5): 4 + 3 + 1 + 2 = 10 regions.
    leaky = nn.Sequential(model[0], nn.LeakyReLU(0.5), model[2], nn.ReLU())
    assert exact_regions(leaky, box).counts == [4, 7]
    wide = Box((-3.0, -3.0), (3.0, 3.0))
    assert exact_regions(leaky, wide).counts == [4, 10]
    assert exact_regions(model, wide).counts == [4, 7]  # with ReLU unit 2 stays dead: -u1 - 1 <= -1
    assert exact_regions(leaky, wide).max_preactivation[1][1] == pytest.approx(0.5)  # at x = -3


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.1)])
def test_exact_count_equals_dense_sampling_on_a_tiny_network(act):
    # 2-3-3: its smallest region is large enough for a 400 x 400 grid to hit every one.
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(2, 3), act, nn.Linear(3, 3), act, nn.Linear(3, 2))
    box = Box((-2.0, -1.0), (3.0, 2.0))
    mesh = exact_regions(model, box)
    assert min(_area(p) for p in mesh.polygons) > 30 * (5 * 3 / 400 ** 2)
    assert sampled_regions(model, box, 400) == mesh.counts
    assert mesh.counts[-1] > mesh.counts[0] > 1


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.1)])
def test_every_sampled_point_lies_in_the_region_with_its_activation_pattern(act):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5), act, nn.Linear(5, 5), act, nn.Linear(5, 4), act, nn.Linear(4, 2))
    box = Box((-2.0, -1.0), (3.0, 2.0))
    mesh = exact_regions(model, box)
    assert sum(_area(p) for p in mesh.polygons) == pytest.approx(15.0, rel=1e-5)
    assert np.all(np.diff(mesh.counts) >= 0)  # later layers only refine
    # every polygon has its own activation pattern, taken at an interior point (its vertex mean)
    centres = np.array([p.mean(0) for p in mesh.polygons])
    region_patterns = np.concatenate(activation_patterns(model, centres), axis=1)
    assert len(np.unique(region_patterns, axis=0)) == mesh.counts[-1]
    # each grid point inside a polygon has that polygon's pattern; the points hit as many regions as sampling
    # counts, and the regions no point hits are slivers
    points = box.grid(300)
    point_patterns = np.concatenate(activation_patterns(model, points), axis=1)
    hit, missed_area = 0, 0.0
    for polygon, pattern in zip(mesh.polygons, region_patterns):
        inside = Path(polygon).contains_points(points, radius=-1e-9)
        assert (point_patterns[inside] == pattern).all()
        hit += bool(inside.any())
        missed_area += 0.0 if inside.any() else _area(polygon)
    assert hit == sampled_regions(model, box, 300)[-1]
    assert missed_area < 1e-3 * 15.0


def test_sampling_is_a_lower_bound_that_misses_small_regions():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    box = Box((-1.0, -1.0), (1.0, 1.0))
    exact = exact_regions(model, box).counts
    coarse, fine = sampled_regions(model, box, 32), sampled_regions(model, box, 512)
    assert all(c <= f <= e for c, f, e in zip(coarse, fine, exact))
    assert coarse[-1] < exact[-1]


def test_counts_do_not_depend_on_where_the_box_is():
    # model'(x) = model(x + t) on the box shifted by -t has the same regions
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    shift = torch.tensor([3.0, -1.5])
    shifted = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), model[2], nn.ReLU())
    _set(shifted[0], model[0].weight.tolist(), (model[0].bias + model[0].weight @ shift).tolist())
    box = Box((-1.0, -0.5), (2.0, 1.0))
    moved = Box((-1.0 - 3.0, -0.5 + 1.5), (2.0 - 3.0, 1.0 + 1.5))
    assert exact_regions(shifted, moved).counts == exact_regions(model, box).counts


def test_proxygrad_modules_count_as_their_forward():
    torch.manual_seed(3)
    relu = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU())
    proxy = nn.Sequential(relu[0], ProxyGradReLU(0.3), relu[2], ProxyGradReLU(0.3))
    box = Box((-1.0, -1.0), (1.0, 1.0))
    assert exact_regions(proxy, box).counts == exact_regions(relu, box).counts
    assert hidden_layers(nn.Sequential(relu[0], ProxyGradReLU(0.3, forward_slope=0.05)))[0][1] == 0.05


def test_box_around_and_bad_inputs():
    box = box_around(np.array([[0.0, 1.0], [2.0, 3.0]]), margin=0.5)
    assert box.low == (-1.0, 0.0) and box.high == (3.0, 4.0)
    assert box.grid(2).tolist() == [[0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [2.0, 3.0]]
    with pytest.raises(ValueError, match="low < high"):
        Box((0.0, 0.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="2-D inputs"):
        hidden_layers(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
    with pytest.raises(ValueError, match="Linear layers each followed"):
        hidden_layers(nn.Sequential(nn.Linear(2, 4), nn.Tanh()))
    with pytest.raises(ValueError, match="resolution"):
        sampled_regions(nn.Sequential(nn.Linear(2, 4), nn.ReLU()), Box((0.0, 0.0), (1.0, 1.0)), 0)
