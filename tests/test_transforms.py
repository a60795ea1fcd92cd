"""Random transforms: identities, exact geometric cases, batch independence, gradients, dtypes."""

import pytest
import torch
import torch.nn.functional as F

from proxygrad.am.filters import Filter
from proxygrad.am.transforms import Blur, Compose, Jitter, Rotate, Scale, Transform, draw_u


def _smooth(h=16, w=16, b=1, dtype=torch.float64):
    """Smooth test images (b, 2, h, w) with distinct content per image and channel."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, h, dtype=dtype), torch.linspace(-1, 1, w, dtype=dtype),
                          indexing="ij")
    imgs = [torch.stack([torch.sin(2 * x + y + i), torch.cos(x - 3 * y) * (x + 0.1 * i)]) for i in range(b)]
    return torch.stack(imgs)


def _random(b=3, dtype=torch.float64, seed=0):
    x = torch.rand(b, 3, 12, 14, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x * 2 - 1).to(dtype)


ALL = [Jitter(3), Jitter(2, mode="roll"), Rotate(20), Rotate(10, padding="border"), Scale(0.8, 1.25),
       Blur(1.0), Compose([Jitter(2), Rotate(5), Scale(0.9, 1.1), Blur(0.5, 3)])]


@pytest.mark.parametrize("t", [Rotate(0), Jitter(0), Jitter(0, mode="roll"), Scale(1, 1)])
def test_zero_magnitude_is_exact_identity(t):
    x = _random()
    u = torch.rand(3, t.n_random)
    assert torch.equal(t.apply(x, u), x)


def test_rotate_90_equals_rot90():
    x = _smooth(16, 16)
    u = torch.tensor([[0.75], [0.25]], dtype=torch.float64)  # (2u - 1) * 180 = +90, -90 degrees
    out = Rotate(180).apply(torch.cat([x, x]), u)
    torch.testing.assert_close(out[:1], torch.rot90(x, 1, dims=(2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1:], torch.rot90(x, -1, dims=(2, 3)), atol=1e-5, rtol=0)
    out32 = Rotate(180).apply(x.float(), u[:1].float())
    torch.testing.assert_close(out32, torch.rot90(x.float(), 1, dims=(2, 3)), atol=1e-5, rtol=0)


def test_rotate_keeps_aspect_ratio_on_non_square_images():
    """About the centre, the central H x H square of a W > H image turns into itself."""
    x = _smooth(12, 20)
    out = Rotate(90).apply(x, torch.ones(1, 1, dtype=torch.float64))  # u = 1 -> +90 degrees
    torch.testing.assert_close(out[..., 4:16], torch.rot90(x[..., 4:16], 1, dims=(2, 3)), atol=1e-5, rtol=0)
    # 180 degrees is a flip of both axes, whatever the shape.
    out = Rotate(180).apply(x, torch.ones(1, 1, dtype=torch.float64))
    torch.testing.assert_close(out, x.flip(2, 3), atol=1e-5, rtol=0)


def test_rotate_angles_are_uniform_in_range():
    r = Rotate(30)
    a = torch.rad2deg(r.angles(torch.tensor([[0.0], [0.5], [1.0]])))
    torch.testing.assert_close(a, torch.tensor([-30.0, 0.0, 30.0]))


def test_jitter_shifts_cover_range():
    j = Jitter(2)
    u = torch.linspace(0, 0.999, 50)[:, None].expand(50, 2)
    assert sorted(set(j.shifts(u)[:, 0].tolist())) == [-2, -1, 0, 1, 2]


@pytest.mark.parametrize("dy,dx", [(2, -1), (-3, 3), (0, 1)])
def test_jitter_matches_roll_and_reflect_shift(dy, dx):
    x = _random(1)
    p = 3
    u = torch.tensor([[(dy + p + 0.5) / (2 * p + 1), (dx + p + 0.5) / (2 * p + 1)]])
    assert Jitter(p).shifts(u).tolist() == [[dy, dx]]
    assert torch.equal(Jitter(p, mode="roll").apply(x, u), torch.roll(x, (dy, dx), dims=(2, 3)))
    h, w = x.shape[-2:]
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    truth = padded[..., p - dy:p - dy + h, p - dx:p - dx + w]
    assert torch.equal(Jitter(p, mode="reflect").apply(x, u), truth)


def test_scale_zooms_about_the_centre():
    x = _smooth(16, 16)
    # factor 2 with align_corners=False: output pixel i samples input at (i - 7.5) / 2 + 7.5.
    out = Scale(2, 2).apply(x, torch.zeros(1, 1))
    src = (torch.arange(16, dtype=torch.float64) - 7.5) / 2 + 7.5
    lo = src.floor().long()
    wgt = src - lo
    rows = x[..., lo, :] * (1 - wgt)[:, None] + x[..., lo + 1, :] * wgt[:, None]
    truth = rows[..., lo] * (1 - wgt) + rows[..., lo + 1] * wgt
    torch.testing.assert_close(out, truth, atol=1e-12, rtol=0)
    assert Scale(0.5, 2).factors(torch.tensor([[0.0], [0.5]])).tolist() == [0.5, 1.25]


def test_blur_is_deterministic_gaussian_filter():
    x = _random()
    b = Blur(1.2)
    assert b.n_random == 0 and b.size == 9
    assert torch.equal(b.apply(x), Filter.gaussian(9, 1.2)(x))
    assert torch.equal(b.apply(x, torch.empty(3, 0)), b.apply(x))


@pytest.mark.parametrize("t", ALL, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_independence_dtype_and_gradients(t, dtype):
    x = _random(4, dtype).requires_grad_(True)
    u = torch.rand(4, t.n_random, generator=torch.Generator().manual_seed(1))
    out = t.apply(x, u)
    assert out.shape == x.shape and out.dtype == dtype
    for b in range(4):
        torch.testing.assert_close(out[b:b + 1], t.apply(x[b:b + 1], u[b:b + 1]), atol=1e-6, rtol=1e-6)
    (out * torch.linspace(0, 1, 14, dtype=dtype)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_compose_slices_u_in_order():
    parts = [Jitter(2), Rotate(10), Blur(0.5, 3), Scale(0.9, 1.1)]
    c = Compose(parts)
    assert c.n_random == 4
    x = _random()
    u = torch.rand(3, 4, generator=torch.Generator().manual_seed(2))
    truth = parts[0].apply(x, u[:, 0:2])
    truth = parts[1].apply(truth, u[:, 2:3])
    truth = parts[2].apply(truth)
    truth = parts[3].apply(truth, u[:, 3:4])
    assert torch.equal(c.apply(x, u), truth)
    assert repr(c) == ("Compose([Jitter(pixels=2, mode='reflect'), Rotate(degrees=10, padding='reflection'), "
                       "Blur(sigma=0.5, size=3), Scale(low=0.9, high=1.1, padding='reflection')])")


def test_draw_u_makes_results_independent_of_batch_companions():
    t = Compose([Jitter(2), Rotate(15)])
    x = _random(3)
    u = draw_u(t.n_random, [torch.Generator().manual_seed(s) for s in (10, 11, 12)], dtype=torch.float64)
    u_alone = draw_u(t.n_random, [torch.Generator().manual_seed(11)], dtype=torch.float64)
    assert u.shape == (3, 3) and ((0 <= u) & (u < 1)).all()
    torch.testing.assert_close(t.apply(x, u)[1:2], t.apply(x[1:2], u_alone), atol=1e-12, rtol=0)


def test_bad_arguments_raise():
    x = _random()
    with pytest.raises(ValueError, match=r"u of shape"):
        Rotate(5).apply(x, torch.rand(3, 2))
    with pytest.raises(ValueError, match=r"u of shape"):
        Jitter(1).apply(x)
    with pytest.raises(ValueError, match="pixels"):
        Jitter(-1)
    with pytest.raises(ValueError, match="larger than"):
        Jitter(12).apply(x, torch.rand(3, 2))
    with pytest.raises(ValueError, match="padding"):
        Rotate(5, padding="mirror")
    with pytest.raises(ValueError, match="low"):
        Scale(1.2, 1.1)
    with pytest.raises(TypeError):
        Compose([lambda x: x])
    assert isinstance(Compose([]), Transform) and torch.equal(Compose([]).apply(x), x)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_transforms_on_gpu_match_cpu():
    t = ALL[-1]
    x = _random(2, torch.float32)
    u = torch.rand(2, t.n_random)
    torch.testing.assert_close(t.apply(x.cuda(), u).cpu(), t.apply(x, u), atol=1e-4, rtol=1e-4)
