"""Gaussian and Sobolev kernels against the spec table, closed forms and scipy."""
import numpy as np
import pytest
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
import torch

from proxygrad.am.filters import (Filter, filter2d, fit_gaussian_sigma, fit_sobolev_gamma,
                                         gaussian_kernel, sobolev_kernel, sobolev_periodic_kernel)

# The spec's table (specs/regularization.md), as printed: compared to the printed precision.
SIZES = [3, 5, 7, 9, 11, 13, 15]
GAMMAS = ["0.0106", "0.0608", "0.176", "0.375", "0.669", "1.072", "1.606"]
SIGMAS = ["0.48", "0.75", "1.05", "1.36", "1.69", "2.03", "2.38"]


def _half_unit(printed: str) -> float:
    """Half a unit in the last printed decimal: the rounding interval of a printed number."""
    return 0.5 * 10.0 ** -len(printed.split(".")[1])


def _outside(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """Entries of an odd (n, n) kernel centred at n // 2 outside its centred size x size window."""
    c, h = kernel.shape[0] // 2, size // 2
    mask = torch.ones_like(kernel, dtype=torch.bool)
    mask[c - h:c + h + 1, c - h:c + h + 1] = False
    return kernel[mask]


def _uncropped_gaussian(sigma: float, radius: int = 40) -> torch.Tensor:
    t = np.arange(-radius, radius + 1)
    g = np.exp(-t**2 / (2 * sigma**2))
    k = np.outer(g, g)
    return torch.from_numpy(k / k.sum())


@pytest.mark.parametrize("size,printed", list(zip(SIZES, GAMMAS)))
def test_fit_sobolev_gamma_matches_spec_table(size, printed):
    assert abs(fit_sobolev_gamma(size) - float(printed)) <= _half_unit(printed)


@pytest.mark.parametrize("size,printed", list(zip(SIZES, SIGMAS)))
def test_fit_gaussian_sigma_matches_spec_table(size, printed):
    # "Uncropped Gaussian": the sampled continuous Gaussian normalized over a grid holding all its mass.
    assert abs(fit_gaussian_sigma(size) - float(printed)) <= _half_unit(printed)


@pytest.mark.parametrize("size", [3, 9, 15])
def test_fitted_parameters_are_the_largest_satisfying_the_rule(size):
    """The 1e-4 rule checked on independently built uncropped kernels, just below and just above the fit."""
    sigma = fit_gaussian_sigma(size)
    assert _outside(_uncropped_gaussian(sigma * (1 - 1e-6)), size).max() <= 1e-4
    assert _outside(_uncropped_gaussian(sigma * (1 + 1e-6)), size).max() > 1e-4
    gamma = fit_sobolev_gamma(size)
    assert _outside(sobolev_periodic_kernel(129, gamma * (1 - 1e-6)), size).max() <= 1e-4
    assert _outside(sobolev_periodic_kernel(129, gamma * (1 + 1e-6)), size).max() > 1e-4


def test_sobolev_k9_matches_spec_numbers():
    """Spec: k=9 -> centre 0.4456, 4-neighbours 0.0764, diagonals 0.0248, ~99.8% of the mass in the window.

    These are the entries of the uncropped kernel at the fitted gamma (0.37541..., printed 0.375 in the
    table). At gamma = 0.375 exactly the centre is 0.4458 (neighbours and diagonals round the same).
    """
    k = sobolev_kernel(9, fit_sobolev_gamma(9), torch.float64, normalize=False)
    assert abs(k[4, 4].item() - 0.4456) <= 5e-5
    for v in (k[3, 4], k[5, 4], k[4, 3], k[4, 5]):
        assert abs(v.item() - 0.0764) <= 5e-5
    for v in (k[3, 3], k[3, 5], k[5, 3], k[5, 5]):
        assert abs(v.item() - 0.0248) <= 5e-5
    assert abs(k.sum().item() - 0.998) <= 5e-4
    k375 = sobolev_kernel(9, 0.375, torch.float64, normalize=False)
    assert abs(k375[4, 4].item() - 0.4458) <= 5e-5


@pytest.mark.parametrize("n,gamma", [(64, 0.375), (33, 1.606), (65, 0.0106)])
def test_sobolev_periodic_kernel_solves_helmholtz(n, gamma):
    """(I - gamma * Lap_5pt) K = delta on the periodic grid, and K sums to 1."""
    k = sobolev_periodic_kernel(n, gamma)
    lap = sum(torch.roll(k, s, d) for s in (1, -1) for d in (0, 1)) - 4 * k
    delta = torch.zeros_like(k)
    delta[n // 2, n // 2] = 1
    assert torch.allclose(k - gamma * lap, delta, atol=1e-6, rtol=0)
    assert abs(k.sum().item() - 1) < 1e-12


def test_sobolev_kernel_matches_sparse_solve():
    """Independent truth: solve (I - gamma * Lap) K = delta with scipy's sparse direct solver on a 41 x 41 torus."""
    n, gamma, size = 41, 0.669, 11
    lap1 = scipy.sparse.diags([1, 1, -2, 1, 1], [-(n - 1), -1, 0, 1, n - 1], shape=(n, n), dtype=np.float64)
    eye = scipy.sparse.identity(n)
    a = (scipy.sparse.identity(n * n) - gamma * (scipy.sparse.kron(lap1, eye) + scipy.sparse.kron(eye, lap1))).tocsc()
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 1
    truth = scipy.sparse.linalg.spsolve(a, delta.ravel()).reshape(n, n)
    c, h = n // 2, size // 2
    truth = truth[c - h:c + h + 1, c - h:c + h + 1]
    ours = sobolev_kernel(size, gamma, torch.float64, normalize=False).numpy()
    np.testing.assert_allclose(ours, truth, atol=1e-12)
    np.testing.assert_allclose(sobolev_kernel(size, gamma, torch.float64).numpy(), truth / truth.sum(), atol=1e-12)


@pytest.mark.parametrize("make", [gaussian_kernel, sobolev_kernel])
@pytest.mark.parametrize("size", [1, 3, 9])
def test_kernels_sum_to_one_and_are_symmetric(make, size):
    k = make(size, 0.8, dtype=torch.float64)
    assert k.shape == (size, size) and k.dtype == torch.float64
    assert abs(k.sum().item() - 1) < 1e-12
    for sym in (k.flip(0), k.flip(1), k.T):
        assert torch.equal(k, sym) or torch.allclose(k, sym, atol=1e-15, rtol=0)
    assert (k > 0).all() and k[size // 2, size // 2] == k.max()
    assert make(size, 0.8).dtype == torch.float32


def test_gaussian_kernel_is_the_normalized_sampled_gaussian():
    t = np.arange(-3, 4)
    g = np.exp(-t**2 / (2 * 1.3**2))
    truth = np.outer(g, g) / np.outer(g, g).sum()
    np.testing.assert_allclose(gaussian_kernel(7, 1.3, torch.float64).numpy(), truth, rtol=1e-13)
    # Second moment of a wide window approaches sigma^2 per axis.
    k = gaussian_kernel(41, 2.0, torch.float64)
    t = torch.arange(-20, 21, dtype=torch.float64)
    assert abs((k.sum(0) * t**2).sum().item() - 4.0) < 1e-9


def test_sobolev_is_more_peaked_than_gaussian_of_same_support():
    for size in (5, 9, 13):
        s = sobolev_kernel(size, fit_sobolev_gamma(size))
        g = gaussian_kernel(size, fit_gaussian_sigma(size))
        assert s[size // 2, size // 2] > g[size // 2, size // 2]


@pytest.mark.parametrize("bad", [0, 2, -3, 4.0, True])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="odd integer"):
        gaussian_kernel(bad, 1.0)
    with pytest.raises(ValueError, match="odd integer"):
        Filter.sobolev(bad)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(3, 0.0)
    with pytest.raises(ValueError, match="gamma"):
        sobolev_kernel(3, -1.0)
    with pytest.raises(ValueError, match="padding"):
        Filter.gaussian(3, padding="mirror")
    with pytest.raises(ValueError, match="kind"):
        Filter("box", 3)


# torch F.pad mode -> the scipy.ndimage mode it equals. scipy's own "reflect" (d c b a | a b c d) is torch's
# missing "symmetric" mode; torch's "reflect" (d c b | a b c d) is scipy's "mirror".
PADDING_TO_SCIPY = {"reflect": "mirror", "replicate": "nearest", "circular": "wrap"}


@pytest.mark.parametrize("padding", sorted(PADDING_TO_SCIPY))
def test_filter2d_matches_scipy_convolve(padding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 9, generator=g, dtype=torch.float64)
    kernel = torch.rand(5, 5, generator=g, dtype=torch.float64)  # asymmetric: checks the flip too
    ours = filter2d(x, kernel, padding).numpy()
    truth = np.stack([np.stack([scipy.ndimage.convolve(x[b, c].numpy(), kernel.numpy(),
                                                       mode=PADDING_TO_SCIPY[padding])
                                for c in range(3)]) for b in range(2)])
    np.testing.assert_allclose(ours, truth, atol=1e-12)


def test_torch_reflect_differs_from_scipy_reflect():
    x = torch.arange(12.0, dtype=torch.float64).reshape(1, 1, 3, 4) ** 2
    kernel = torch.rand(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = filter2d(x, kernel, "reflect")[0, 0].numpy()
    scipy_reflect = scipy.ndimage.convolve(x[0, 0].numpy(), kernel.numpy(), mode="reflect")
    assert not np.allclose(ours, scipy_reflect)


@pytest.mark.parametrize("padding", sorted(PADDING_TO_SCIPY))
@pytest.mark.parametrize("kind", ["gaussian", "sobolev"])
def test_blur_of_constant_image_is_constant(kind, padding):
    x = torch.full((2, 3, 10, 11), 0.37, dtype=torch.float64)
    y = Filter(kind, 7, padding=padding)(x)
    assert torch.allclose(y, x, atol=1e-14, rtol=0)


def test_filter_keeps_dtype_shape_and_caches_per_dtype():
    f = Filter.gaussian(5)
    assert f.value == fit_gaussian_sigma(5) and Filter.sobolev(5).value == fit_sobolev_gamma(5)
    assert Filter.gaussian(5, 1.5).value == 1.5
    x64 = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    y64 = f(x64)
    y32 = f(x64.float())
    assert y64.shape == x64.shape and y64.dtype == torch.float64 and y32.dtype == torch.float32
    torch.testing.assert_close(y32, y64.float(), atol=1e-6, rtol=1e-5)
    assert f.kernel(x64.device, torch.float32) is f.kernel(x64.device, torch.float32)
    # Differentiable: with circular padding the adjoint of a kernel summing to 1 maps ones to ones.
    x64.requires_grad_(True)
    Filter.gaussian(5, padding="circular")(x64).sum().backward()
    torch.testing.assert_close(x64.grad, torch.ones_like(x64), atol=1e-12, rtol=0)


def test_filter_str_and_equality():
    assert str(Filter.gaussian(9)) == "gaussian:9" and str(Filter.sobolev(5, 0.25)) == "sobolev:5:0.25"
    assert Filter.gaussian(9) == Filter("gaussian", 9) and Filter.gaussian(9) != Filter.gaussian(9, 1.0)
    assert hash(Filter.sobolev(3)) == hash(Filter.sobolev(3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_filter_on_gpu_matches_cpu():
    x = torch.randn(2, 3, 16, 16)
    f = Filter.sobolev(9)
    torch.testing.assert_close(f(x.cuda()).cpu(), f(x), atol=1e-5, rtol=1e-5)
