"""The white-image problems: their values against closed forms, their optima against brute force."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import proxygrad
from proxygrad.problems import (PAPER_P, PAPER_SLOPE, Convolution, SumLeakyReLU, SumReLU, TwoWeights,
                                single_pixel, table1)

S, P = PAPER_SLOPE, PAPER_P


def _images(n, h, w, seed=0):
    return torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def test_values_match_the_papers_formulas():
    x = _images(5, 4, 6)
    expected = {
        "f1": torch.relu(x).sum((1, 2, 3)),
        "f2": F.leaky_relu(x, S).sum((1, 2, 3)),
        "f3": (F.leaky_relu(x, S) + F.leaky_relu(-P * x, S)).sum((1, 2, 3)),
        # output (i, j) = R_s(x[i, j-1] - p x[i, j+1]), zero outside the image
        "conv": F.leaky_relu(F.pad(x, (1, 1))[..., :-2] - P * F.pad(x, (1, 1))[..., 2:], S).sum((1, 2, 3)),
    }
    for name, problem in table1().items():
        out = problem.double()(x)
        assert out.shape == (5, 1)
        assert torch.allclose(out[:, 0], expected[name], atol=1e-12), name


@pytest.mark.parametrize("height,width", [(1, 1), (1, 2), (3, 5), (8, 8), (16, 16)])
def test_optimum_is_attained_by_the_optimal_image(height, width):
    for name, problem in table1().items():
        image = problem.optimal_image(height, width)
        assert image.shape == (1, height, width)
        assert problem.double()(image[None].double()).item() == pytest.approx(problem.optimum(height, width)), name


def test_closed_form_optima():
    assert SumReLU().optimum(4, 5) == 20
    assert SumLeakyReLU(0.3).optimum(4, 5) == 20
    assert TwoWeights(0.1, 0.2).optimum(4, 5) == pytest.approx(20 * (1 - 0.02))


@pytest.mark.parametrize("width", range(1, 10))
@pytest.mark.parametrize("slope,p", [(0.1, 0.2), (0.0, 0.2), (0.3, 0.7)])
def test_convolution_best_row_equals_brute_force_over_the_vertices(width, slope, p):
    """The problem is convex, so its maximum is at a vertex of the box: try all 2^width rows."""
    problem = Convolution(slope, p).double()
    rows = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=width)), dtype=torch.float64)
    brute = problem(rows.view(-1, 1, 1, width)).max().item()
    value, row = problem.best_row(width)
    assert value == pytest.approx(brute, abs=1e-6)  # the module holds p in float32
    assert problem(torch.tensor(row, dtype=torch.float64).view(1, 1, 1, width)).item() == pytest.approx(value)


def test_convolution_optimum_is_black_in_the_last_column_only():
    image = Convolution().optimal_image(5, 8)
    assert torch.all(image[..., :-1] == 1) and torch.all(image[..., -1] == -1)
    # black there turns output W-2 of each row from R(1 - p) into R(1 + p): 2p more per row than white
    white = torch.ones(1, 1, 5, 8)
    assert Convolution()(white).item() == pytest.approx(Convolution().optimum(5, 8) - 5 * 2 * P)


def test_no_image_beats_the_optimum():
    x = _images(4000, 4, 4, seed=1)
    for name, problem in table1().items():
        assert problem.double()(x).max().item() <= problem.optimum(4, 4) + 1e-6, name


def test_single_pixel_has_the_papers_local_and_global_maxima():
    x = torch.tensor([-1.0, 1.0], requires_grad=True)
    y = single_pixel(x)
    assert y.tolist() == pytest.approx([P - S, 1 - S * P])
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.tolist() == pytest.approx([S - P, 1 - P * S])  # the paper's derivatives at -1 and 1


def test_rectifiers_are_modules_that_patched_swaps():
    for problem in table1().values():
        with proxygrad.patched(problem, "proxygrad", 0.5) as record:
            assert record.modules == 1


@pytest.mark.parametrize("make", [lambda: TwoWeights(0.3, 0.2), lambda: Convolution(0.1, 1.0),
                                  lambda: SumLeakyReLU(-0.1), lambda: SumReLU().optimum(0, 3)])
def test_bad_parameters(make):
    with pytest.raises(ValueError):
        make()
