"""Total variation and L2 penalties against closed forms, autograd and finite differences."""
import math

import pytest
import torch

from proxygrad.am.penalties import l2, total_variation


def test_tv_of_constant_image_is_sqrt_eps_per_pixel():
    x = torch.full((2, 3, 7, 9), 0.4, dtype=torch.float64)
    for eps in (1e-8, 1e-4):
        truth = torch.full((2,), 3 * 7 * 9 * math.sqrt(eps), dtype=torch.float64)
        torch.testing.assert_close(total_variation(x, eps), truth)


@pytest.mark.parametrize("channels", [1, 3])
def test_tv_of_step_edge_is_height_times_rows(channels):
    h, w, height, eps = 6, 10, 0.7, 1e-8
    x = torch.zeros(1, channels, h, w, dtype=torch.float64)
    x[..., :, 4:] = height  # vertical edge between columns 3 and 4: one jump of `height` per row
    edge = channels * h * math.sqrt(height**2 + eps)
    flat = channels * (h * w - h) * math.sqrt(eps)
    torch.testing.assert_close(total_variation(x, eps), torch.tensor([edge + flat], dtype=torch.float64))
    # H * h per channel, up to the sqrt(eps) floor of every pixel.
    assert abs(total_variation(x, eps).item() - channels * h * height) <= channels * h * w * math.sqrt(eps)
    assert abs(total_variation(x, 0.0).item() - channels * h * height) < 1e-12
    # Same edge transposed (horizontal) gives the same value: isotropic in the two axes.
    torch.testing.assert_close(total_variation(x.transpose(2, 3), eps), total_variation(x, eps))


def test_tv_is_isotropic_on_a_diagonal_ramp():
    """A ramp x = a*i + b*j has |grad| = sqrt(a^2 + b^2) at interior pixels (forward differences)."""
    i, j = torch.meshgrid(torch.arange(5.0, dtype=torch.float64), torch.arange(6.0, dtype=torch.float64), indexing="ij")
    a, b = 0.3, 0.4
    x = (a * i + b * j)[None, None]
    interior = 4 * 5 * 0.5  # rows 0..3, cols 0..4
    last_col = 4 * a  # rows 0..3 of the last column: only dy
    last_row = 5 * b  # cols 0..4 of the last row: only dx
    truth = interior + last_col + last_row
    assert abs(total_variation(x, eps=0.0).item() - truth) < 1e-12


def test_tv_is_per_image():
    x = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    tv = total_variation(x)
    assert tv.shape == (3,)
    for b in range(3):
        torch.testing.assert_close(tv[b:b + 1], total_variation(x[b:b + 1]))


def test_tv_gradient_matches_finite_differences():
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: total_variation(t, 1e-6), (x,))


def test_l2_value_and_gradient():
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64).requires_grad_(True)
    v = l2(x)
    torch.testing.assert_close(v, (x.detach() ** 2).sum(dim=(1, 2, 3)))
    v.sum().backward()
    torch.testing.assert_close(x.grad, 2 * x.detach())


def test_tv_rejects_wrong_rank():
    with pytest.raises(ValueError, match="B, C, H, W"):
        total_variation(torch.zeros(3, 4, 4))
