"""Parametrizations (pixel, fourier, maco), the field's input transforms, NAdam, and the recipes."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from proxygrad.am.colour import recorrelate
from proxygrad.am.objectives import class_logit
from proxygrad.am.parametrizations import Fourier, Maco, Pixel, frequencies, parametrization
from proxygrad.am.peer_transforms import LUCENT_ANGLES, LUCENT_SCALES, LucentStandard, MacoCrops, hashed_uniform
from proxygrad.am.recipes import RECIPES, recipe_config
from proxygrad.am.render import RenderConfig, Regularization, render
from proxygrad.am.steppers import Stepper
from proxygrad.models import load
from proxygrad.models.spec import InputSpec

RGB = InputSpec(channels=3, size=(16, 20), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_frequencies_match_numpy():
    expected = np.sqrt(np.fft.rfftfreq(20)[None, :] ** 2 + np.fft.fftfreq(16)[:, None] ** 2)
    assert np.allclose(frequencies(16, 20).numpy(), expected)


def test_fourier_image_is_lucids_formula():
    fourier = Fourier()
    p = fourier.init(RGB, [3, 4], (16, 20), 0.1, "cpu")
    assert p.shape == (2, 3, 16, 11, 2) and abs(p.std().item() - 0.01) < 0.002
    scale = 1 / np.maximum(frequencies(16, 20).numpy(), 1 / 20)
    spectrum = (p[..., 0].double().numpy() + 1j * p[..., 1].double().numpy()) * scale
    pixels = np.fft.irfft2(spectrum, s=(16, 20), norm="ortho") / 4
    expected = 2 / (1 + np.exp(-recorrelate(torch.from_numpy(pixels)).numpy())) - 1
    assert np.allclose(fourier.image(p, (16, 20)).double().numpy(), expected, atol=1e-6)


def test_parametrized_images_are_seeded_per_image_and_in_range():
    for param in (Fourier(), Maco()):
        a = param.init(RGB, [1, 2], (16, 20), 0.1, "cpu")
        b = param.init(RGB, [2], (16, 20), 0.1, "cpu")
        assert torch.equal(a[1], b[0])
        x = param.image(a * 50, (16, 20))
        assert x.shape == (2, 3, 16, 20) and x.abs().max() <= 1


def test_maco_keeps_the_magnitude_and_optimizes_only_the_phase():
    maco = Maco()
    p = maco.init(RGB, [0], (16, 20), 0.1, "cpu")
    magnitude = maco.magnitude(3, (16, 20), "cpu")
    phase = (p - p.mean()) / (p.std() + 1e-8)
    pixels = torch.fft.irfft2(torch.polar(magnitude[None], phase), s=(16, 20), norm="ortho")
    pixels = (pixels - pixels.mean()) / (pixels.std() + 1e-8)
    assert torch.allclose(maco.image(p, (16, 20)), torch.tanh(recorrelate(pixels) / 2), atol=1e-5)
    assert maco.describe()["spectrum_source"]["channels"] == 3


def test_parametrization_errors():
    with pytest.raises(ValueError, match="unknown parametrization 'spline'"):
        parametrization("spline")
    with pytest.raises(ValueError, match="sd must be"):
        Fourier(sd=0)
    with pytest.raises(ValueError, match="start image needs parametrization 'pixel'"):
        Fourier().init(RGB, [0], (16, 20), 0.1, "cpu", start=torch.zeros(3, 16, 20))
    with pytest.raises(ValueError, match="1 channels, the model takes 3|channels"):
        Maco(spectrum="digits").init(RGB, [0], (16, 20), 0.1, "cpu")
    with pytest.raises(ValueError, match="after-step transforms"):
        RenderConfig(parametrization="fourier", regularization=Regularization(after_step=LucentStandard()))
    with pytest.raises(ValueError, match="octaves need parametrization 'pixel'"):
        from proxygrad.am.render import Octave
        RenderConfig(parametrization="maco", octaves=(Octave(1.0, 5),))
    with pytest.raises(ValueError, match="temperature must be"):
        RenderConfig(temperature=0)


def _lucent_reference(image, values):
    """Lucent's own standard transforms with the given choices (its np.random.choice replaced)."""
    from lucent.optvis import transform
    chosen = iter(values)
    original, np.random.choice = np.random.choice, lambda *a, **k: next(chosen)
    try:
        steps = transform.standard_transforms + [nn.Upsample(size=image.shape[-1], mode="bilinear",
                                                             align_corners=True)]
        return transform.compose(steps)(image)
    finally:
        np.random.choice = original


@pytest.mark.parametrize("jitter8, scale, angle, jitter4", [((0, 0), 5, 10, (0, 0)), ((3, 5), 5, 10, (0, 0)),
                                                             ((0, 0), 8, 10, (0, 0)), ((0, 0), 1, 10, (0, 0)),
                                                             ((0, 0), 5, 3, (0, 0)), ((0, 0), 5, 17, (2, 1))])
def test_lucent_standard_matches_lucent(jitter8, scale, angle, jitter4):
    pytest.importorskip("lucent")
    warnings.filterwarnings("ignore")
    image = F.interpolate(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)), size=32,
                          mode="bilinear")
    reference = _lucent_reference(image, [*jitter8, LUCENT_SCALES[scale], LUCENT_ANGLES[angle], *jitter4])
    u = torch.tensor([[(jitter8[0] + .5) / 8, (jitter8[1] + .5) / 8, (scale + .5) / 11, (angle + .5) / 26,
                       (jitter4[0] + .5) / 4, (jitter4[1] + .5) / 4]])
    ours = (LucentStandard().apply(image * 2 - 1, u) + 1) / 2
    # One resampling instead of Lucent's five: same geometry, small interpolation differences.
    assert (ours - reference).abs().mean() < 0.02


def test_maco_crops_are_roi_aligned_windows_with_seeded_noise():
    x = torch.arange(2 * 64 * 64, dtype=torch.float32).view(2, 1, 64, 64) / 8192
    crops = MacoCrops(size=(8, 8), crops=3, noise=0.0)
    u = torch.full((2, crops.n_random), 0.5)
    views = crops.apply(x, u)
    assert views.shape == (6, 1, 8, 8)
    # u = 0.5: centred boxes of side 0.225 * 64 = 14.4 px; the mean of a linear ramp is its centre value.
    assert torch.allclose(views[0].mean(), x[0, 0, 31:33, 31:33].mean(), atol=1e-4)
    assert torch.allclose(views[3].mean(), x[1, 0, 31:33, 31:33].mean(), atol=1e-4)
    noisy = MacoCrops(size=(8, 8), crops=3).apply(x, u) - views
    assert noisy.std() == pytest.approx(0.05 * math.sqrt(1 + 1 / 12), rel=0.25)
    a = hashed_uniform(torch.tensor([5, 9]), (1000,))
    assert torch.equal(a[1], hashed_uniform(torch.tensor([9]), (1000,))[0]) and 0 <= a.min() and a.max() < 1
    assert abs(a.mean().item() - 0.5) < 0.03 and not torch.equal(a[0], a[1])


def test_nadam_matches_torch():
    torch.manual_seed(0)
    target = torch.randn(1, 5)
    p_ours, p_torch = torch.zeros(1, 5), torch.zeros(1, 5, requires_grad=True)
    stepper, optimizer = Stepper("nadam", p_ours), torch.optim.NAdam([p_torch], lr=0.1)
    for _ in range(20):
        g = target - p_ours  # gradient of the objective -|p - target|^2 / 2 (to maximize)
        p_ours = p_ours + stepper.update(g, 0.1)
        optimizer.zero_grad()
        (0.5 * (p_torch - target).pow(2).sum()).backward()
        optimizer.step()
    assert torch.allclose(p_ours, p_torch.detach(), atol=1e-6)


def test_recipes_run_with_every_parametrization_and_surrogate():
    digits = load("digits")
    for name in RECIPES:
        config = recipe_config(name, digits.spec, method="proxygrad", steps=3, progress=False)
        result = render(digits.model, digits.spec, [class_logit(1)], [0], config)
        assert result.images.abs().max() <= 1 and torch.isfinite(result.activation).all()
    assert recipe_config("maco", digits.spec).image_size == (183, 183)
    with pytest.raises(ValueError, match="unknown recipe 'lucid'"):
        recipe_config("lucid", digits.spec)
    with pytest.raises(ValueError, match="goes with the maco recipe"):
        recipe_config("paper", digits.spec, spectrum="digits")


def test_lucent_recipe_matches_lucents_render_vis():
    """The lucent preset's mean final activation is within 10% of Lucent's render_vis on the same model."""
    pytest.importorskip("lucent")
    from lucent.optvis import objectives as lobj, param as lparam, render as lrender
    warnings.filterwarnings("ignore")
    digits = load("digits")

    class InZeroOne(nn.Module):  # Lucent's images are in [0, 1]; the digits model takes (x - 0.5) / 0.5
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net((x - 0.5) / 0.5)

    model, classes, steps, seeds = InZeroOne(digits.model).eval(), list(range(10)), 512, (0, 1)
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1].replace(".", "_")
    theirs = []
    for seed in seeds:  # Lucent: one render_vis per seed, the 10 classes as its batch
        torch.manual_seed(seed)
        np.random.seed(seed)
        objective = sum(lobj.channel(last, k, batch=i) for i, k in enumerate(classes))
        images = lrender.render_vis(model, objective, param_f=lambda: lparam.image(32, channels=1, batch=10),
                                    thresholds=(steps,), preprocess=False, fixed_image_size=32, show_image=False,
                                    progress=False)
        with torch.no_grad():
            theirs.append(model(torch.from_numpy(images[-1]).permute(0, 3, 1, 2))[torch.arange(10), classes])
    theirs = torch.cat(theirs).mean().item()
    ours = render(digits.model, digits.spec, [class_logit(k) for k in classes] * len(seeds),
                  [s for s in seeds for _ in classes],
                  recipe_config("lucent", digits.spec, method="relu", steps=steps, progress=False))
    # The preset's 512 steps and 20 images: single 10-image runs vary by about 10% between seeds.
    assert abs(ours.activation.mean().item() - theirs) < 0.1 * abs(theirs)


def test_transparency_map_is_the_summed_gradient_magnitude():
    digits = load("digits")
    objective = class_logit(3)
    config = RenderConfig(method="relu", steps=2, step_rule="plain", lr=0.01, init_sigma=0.2, transparency=True,
                          progress=False)
    result = render(digits.model, digits.spec, [objective], [5], config)
    x = Pixel().init(digits.spec, [5], digits.spec.size, 0.2, "cpu").requires_grad_(True)
    expected = torch.zeros_like(x)
    for _ in range(2):  # plain steps by hand on the original network (relu: the true gradient)
        (g,) = torch.autograd.grad(digits.model(digits.spec.to_model_input(x))[0, 3], x)
        expected += g.abs()
        x = (x + 0.01 * g).clamp(-1, 1).detach().requires_grad_(True)
    assert torch.allclose(result.transparency, expected, rtol=1e-4, atol=1e-6)
    maco = render(digits.model, digits.spec, [objective], [5],
                  recipe_config("maco", digits.spec, method="relu", steps=2, transparency=True, progress=False))
    assert maco.transparency.shape == maco.images.shape and (maco.transparency >= 0).all()
    assert render(digits.model, digits.spec, [objective], [5], RenderConfig(steps=1, progress=False)).transparency is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_recipes_on_gpu_match_cpu():
    digits_cpu, digits_gpu = load("digits"), load("digits", device="cuda")
    for name in RECIPES:
        config = recipe_config(name, digits_cpu.spec, method="proxygrad", steps=3, progress=False)
        cpu = render(digits_cpu.model, digits_cpu.spec, [class_logit(2), class_logit(7)], [0, 1], config)
        gpu = render(digits_gpu.model, digits_gpu.spec, [class_logit(2), class_logit(7)], [0, 1], config,
                     device="cuda")
        assert torch.allclose(cpu.images, gpu.images, atol=1e-3), name


def test_transparency_comes_back_with_octaves_whatever_steps_says():
    from proxygrad.am.config import Octave

    digits = load("digits")
    config = RenderConfig(steps=0, octaves=(Octave(0.5, 2), Octave(1.0, 2)), transparency=True, progress=False)
    result = render(digits.model, digits.spec, [class_logit(1)], [0], config)
    assert result.transparency.shape == result.images.shape and result.transparency.sum() > 0
