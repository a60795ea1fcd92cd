"""Demons schemes: the three update formulas, mean preservation, and CLI parsing."""
import pytest
import torch

from proxygrad.am.filters import Filter
from proxygrad.am.schemes import Scheme


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def test_none_scheme_is_identity():
    s = Scheme.none()
    x, g = _rand(2, 3, 8, 8), _rand(2, 3, 8, 8, seed=1)
    assert s.kind == "none" and s.fluid is None and s.elastic is None
    assert s.filter_update(g) is g and s.filter_image(x) is x
    torch.testing.assert_close(s.step(x, g, 0.5), x + 0.5 * g)


def test_step_formulas():
    kf, ke = Filter.sobolev(5), Filter.gaussian(3)
    x, g, tau = _rand(2, 3, 9, 9), _rand(2, 3, 9, 9, seed=1), 0.3
    torch.testing.assert_close(Scheme.fluid(kf).step(x, g, tau), x + tau * kf(g))
    torch.testing.assert_close(Scheme.elastic(ke).step(x, g, tau), ke(x + tau * g))
    torch.testing.assert_close(Scheme.fluid_elastic(kf, ke).step(x, g, tau), ke(x + tau * kf(g)))
    # tau per image, broadcast over (C, H, W).
    taus = torch.tensor([0.1, 2.0], dtype=torch.float64)
    out = Scheme.fluid(kf).step(x, g, taus[:, None, None, None])
    torch.testing.assert_close(out[1], x[1] + 2.0 * kf(g)[1])


def test_elastic_gaussian_preserves_mean():
    x = _rand(2, 3, 16, 16)
    exact = Scheme.elastic(Filter.gaussian(7, padding="circular")).filter_image(x)
    torch.testing.assert_close(exact.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-14, rtol=0)
    # Reflect padding re-weights border pixels: the mean moves a little, far less than the pixel spread.
    approx = Scheme.elastic(Filter.gaussian(7)).filter_image(x)
    assert (approx.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().max() < 0.02
    assert (approx - x).abs().max() > 0.2  # it did smooth


@pytest.mark.parametrize("kind", ["gaussian", "sobolev"])
def test_fluid_of_constant_update_is_the_constant(kind):
    g = torch.full((2, 3, 10, 10), -0.25, dtype=torch.float64)
    out = Scheme.fluid(Filter(kind, 9)).filter_update(g)
    torch.testing.assert_close(out, g, atol=1e-15, rtol=0)


@pytest.mark.parametrize("text", ["none", "fluid:gaussian:9", "elastic:sobolev:5", "fluid-elastic:sobolev:9:gaussian:5",
                                  "elastic:gaussian:3:0.5", "fluid-elastic:gaussian:3:0.5:sobolev:7:1.25"])
def test_parse_round_trips(text):
    s = Scheme.parse(text)
    assert str(s) == text and Scheme.parse(str(s)) == s and s.kind == text.split(":")[0]


def test_parse_builds_the_right_filters():
    s = Scheme.parse(" Fluid-Elastic:sobolev:9:gaussian:5 ", padding="circular")
    assert s == Scheme.fluid_elastic(Filter.sobolev(9, padding="circular"), Filter.gaussian(5, padding="circular"))
    assert Scheme.parse("elastic:gaussian:3:0.8").elastic == Filter.gaussian(3, 0.8)
    assert Scheme.parse("fluid:sobolev:5").fluid.value == Filter.sobolev(5).value


@pytest.mark.parametrize("bad", ["", "fluid", "elastic:", "demons:gaussian:9", "fluid:box:9", "fluid:gaussian",
                                 "fluid:gaussian:8", "fluid:gaussian:x", "fluid:gaussian:9:-1", "fluid:gaussian:9:a",
                                 "none:gaussian:9", "elastic:gaussian:3:sobolev:5", "fluid-elastic:gaussian:3"])
def test_parse_rejects_bad_strings_listing_valid_forms(bad):
    with pytest.raises(ValueError, match="valid forms: 'none', 'fluid:FILTER'") as info:
        Scheme.parse(bad)
    assert "fluid-elastic:FLUID_FILTER:ELASTIC_FILTER" in str(info.value)


def test_constructors_and_equality():
    f = Filter.gaussian(5)
    assert Scheme.fluid(f) == Scheme(fluid=f) and Scheme.elastic(f) == Scheme(elastic=f)
    assert Scheme.fluid(f) != Scheme.elastic(f)
    assert Scheme.fluid(f).kind == "fluid" and Scheme.elastic(f).kind == "elastic"
    assert Scheme.fluid_elastic(f, f).kind == "fluid-elastic"
    assert "Scheme(fluid=Filter(kind='gaussian'" in repr(Scheme.fluid(f))
    with pytest.raises(TypeError):
        Scheme(fluid="gaussian:5")
