"""Feature inversion: the distance against torch's norms and closed forms, the loop against a closed-form
descent, real reconstructions with the bundled model, regularizations by name, target pictures."""
import pytest
import torch
import torch.nn as nn
from PIL import Image

import proxygrad
from proxygrad.am.invert import (
    FeatureDistance, default_kernel_size, default_schemes, feature_distance, inversion_config, invert, normalizer,
    picture_channels, read_target, regularization, target_features,
)
from proxygrad.models import digits_data
from proxygrad.models.spec import InputSpec


@pytest.fixture(scope="module")
def digits():
    return proxygrad.load("digits")


@pytest.fixture(scope="module")
def one_per_class():
    images, labels = digits_data("test")
    index = [int(torch.nonzero(labels == c)[0]) for c in range(10)]
    return images[index], labels[index]


def _config(spec, scheme="none", **options):
    return inversion_config(scheme, spec, progress=False, **options)


# ---- the distance --------------------------------------------------------------------------------------------
def test_feature_distance_is_the_p_norm_to_the_p_over_z():
    g = torch.Generator().manual_seed(0)
    phi, phi0 = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    z = torch.tensor([1.0, 2.0, 4.0])
    for p in (1, 2):
        expected = torch.linalg.vector_norm((phi - phi0).flatten(1), ord=p, dim=1) ** p / z
        torch.testing.assert_close(feature_distance(phi, phi0, p, z), expected)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        feature_distance(phi, phi0, 3)


def test_distance_is_zero_at_the_original_and_one_at_zero_features(digits, one_per_class):
    images, _ = one_per_class
    for layer in ("layers.1", "output"):
        phi0 = target_features(digits.model, digits.spec, images, layer)
        for p in (1, 2):
            z = normalizer(phi0, p)
            torch.testing.assert_close(z, torch.linalg.vector_norm(phi0.flatten(1), ord=p, dim=1) ** p)
            torch.testing.assert_close(feature_distance(torch.zeros_like(phi0), phi0, p, z), torch.ones(10))
            # D(Phi(u0), Phi0) through the whole loop: start at the original itself, take no step.
            config = _config(digits.spec, steps=0, init_sigma=0.0, init_image=images[3])
            inv = invert(digits.model, digits.spec, images[3:4], layer, p=p, config=config)
            assert inv.distance.item() == 0 and inv.loss[0, 0].item() == 0
            assert FeatureDistance(layer, phi0[3:4], p, z[3].item()).score({layer: phi0})[3] == 0
    phi0 = torch.zeros(2, 3)
    assert normalizer(phi0).tolist() == [1.0, 1.0]  # a silent layer: Z = 1, not a division by 0
    assert normalizer(torch.randn(2, 3), normalize="none").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalizer(phi0, normalize="max")


def test_start_loss_is_one_exactly_when_phi_of_gray_is_zero(digits, one_per_class):
    torch.manual_seed(0)
    bias_free = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                              nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.ReLU()).eval()
    spec = InputSpec(1, (32, 32), (0.5,), (0.5,))  # u = 0 (gray) is the input 0, so Phi(0) = 0
    images, _ = one_per_class
    inv = invert(bias_free, spec, images[:3], "3", config=_config(spec, steps=1, init_sigma=0.0))
    torch.testing.assert_close(inv.loss[:, 0], torch.ones(3))
    # The bundled model has biases and BatchNorm: Phi(gray) != 0, so its start is not 1 but D(Phi(gray), Phi0).
    inv = invert(digits.model, digits.spec, images[:3], "layers.1", config=_config(digits.spec, steps=1,
                                                                                    init_sigma=0.0))
    phi_gray = target_features(digits.model, digits.spec, torch.zeros(3, 1, 32, 32), "layers.1")
    expected = feature_distance(phi_gray, inv_phi0 := target_features(digits.model, digits.spec, images[:3],
                                                                        "layers.1"), 2, normalizer(inv_phi0))
    torch.testing.assert_close(inv.loss[:, 0], expected)
    assert (expected - 1).abs().min() > 0.1


# ---- the loop ------------------------------------------------------------------------------------------------
def test_inverting_the_input_follows_the_closed_form_descent(digits, one_per_class):
    """Phi = identity: D = ||u - u0||^2 / Z, so plain steps of size tau give u_t - u0 = (1 - 2 tau / Z)^t (-u0)."""
    images, _ = one_per_class
    u0 = images[:2]
    z = u0.flatten(1).square().sum(1)
    tau = 0.1 * z[0].item()  # factor 0.8 per step for image 0
    config = _config(digits.spec, steps=5, lr=tau, step_rule="plain", init_sigma=0.0, trace_every=1)
    inv = invert(digits.model, digits.spec, u0, "input", config=config)
    factor = 1 - 2 * tau / z
    torch.testing.assert_close(inv.images, u0 * (1 - factor.view(-1, 1, 1, 1) ** 5), atol=1e-5, rtol=0)
    steps = torch.arange(6, dtype=torch.float32)
    torch.testing.assert_close(inv.loss, factor[:, None] ** (2 * steps), atol=1e-5, rtol=1e-4)
    assert inv.loss_steps == list(range(6))


def test_inversion_from_the_logits_is_classified_as_the_original_label(digits, one_per_class):
    images, labels = one_per_class
    inv = invert(digits.model, digits.spec, images, "output", config=_config(digits.spec, steps=60))
    assert inv.predicted.tolist() == labels.tolist()
    with torch.no_grad():  # independently: the original network on the returned images
        assert digits.normalized()(inv.images).argmax(1).tolist() == labels.tolist()
    assert (inv.distance < 0.05 * inv.loss[:, 0]).all()
    assert not torch.allclose(inv.images, images, atol=0.1)  # matching logits does not mean the same image


def test_every_default_scheme_lowers_the_loss_and_shapes_the_image(digits, one_per_class):
    images, _ = one_per_class
    results = {}
    for scheme in default_schemes(digits.spec):
        inv = invert(digits.model, digits.spec, images[:3], "layers.1", config=_config(digits.spec, scheme, steps=40))
        assert (inv.distance < 0.3 * inv.loss[:, 0]).all(), scheme
        assert inv.images.min() >= -1 and inv.images.max() <= 1
        results[scheme] = inv.images
    roughness = {s: (x[..., 1:] - x[..., :-1]).abs().mean().item() for s, x in results.items()}
    for smooth in ("tv", "elastic:sobolev:5", "fluid-elastic:sobolev:5:sobolev:5"):
        assert roughness[smooth] < 0.6 * roughness["none"], roughness


def test_proxygrad_changes_the_path_but_distances_come_from_the_original(digits, one_per_class):
    images, _ = one_per_class
    layer = "layers.2"
    runs = {m: invert(digits.model, digits.spec, images[:2], layer, config=_config(digits.spec, steps=8, method=m,
                                                                                   slope=0.3))
            for m in ("relu", "proxygrad")}
    assert not torch.allclose(runs["relu"].images, runs["proxygrad"].images)
    phi0 = target_features(digits.model, digits.spec, images[:2], layer)
    for inv in runs.values():
        recomputed = feature_distance(target_features(digits.model, digits.spec, inv.images, layer), phi0, 2,
                                      normalizer(phi0))
        torch.testing.assert_close(inv.distance, recomputed)
    assert not any(isinstance(m, proxygrad.ProxyGradReLU) for m in digits.model.modules())  # model restored
    with pytest.raises(ValueError, match="Leaky ReLU forward"):
        invert(digits.model, digits.spec, images[:1], layer, config=_config(digits.spec, method="leaky"))


def test_images_inverted_together_equal_images_inverted_alone(digits, one_per_class):
    images, _ = one_per_class
    config = _config(digits.spec, "fluid:sobolev:5", steps=5)
    together = invert(digits.model, digits.spec, images[:3], "layers.1", config=config, seeds=[4, 5, 6])
    alone = invert(digits.model, digits.spec, images[2:3], "layers.1", config=config, seeds=[6])
    torch.testing.assert_close(together.images[2:], alone.images, atol=0, rtol=0)


def test_bad_layers_images_and_seeds_are_clear_errors(digits, one_per_class):
    images, _ = one_per_class
    with pytest.raises(ValueError, match=r"unknown layer 'layers\.9'; closest: .*layers\.0"):
        invert(digits.model, digits.spec, images[:1], "layers.9")
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, 32, 32\).*\(2, 3, 32, 32\)"):
        invert(digits.model, digits.spec, torch.zeros(2, 3, 32, 32), "layers.1")
    with pytest.raises(ValueError, match="one seed per image"):
        invert(digits.model, digits.spec, images[:2], "layers.1", seeds=[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_inversion_on_the_gpu_matches_the_cpu(digits, one_per_class):
    images, _ = one_per_class
    config = _config(digits.spec, "fluid-elastic:sobolev:5:sobolev:5", steps=10)
    cpu = invert(digits.model, digits.spec, images[:4], "layers.2", config=config)
    gpu_model = proxygrad.load("digits", device="cuda").model
    gpu = invert(gpu_model, digits.spec, images[:4], "layers.2", config=config)
    assert gpu.images.device.type == "cpu" and gpu.render.config.method == "relu"
    # cuDNN may use TF32 and other algorithms: equal up to float rounding, amplified a little by 10 steps.
    torch.testing.assert_close(gpu.images, cpu.images, atol=2e-2, rtol=0)
    torch.testing.assert_close(gpu.distance, cpu.distance, atol=1e-3, rtol=2e-2)


# ---- regularizations by name -----------------------------------------------------------------------------------
def test_regularizations_by_name(digits):
    spec = digits.spec
    assert regularization("tv", spec, 2.0).tv == pytest.approx(2.0 / 1024)  # per pixel of a 1x32x32 image
    assert regularization("tv", spec).scheme.kind == "none"
    both = regularization("fluid:sobolev:5+tv", spec)
    assert both.scheme.kind == "fluid" and both.scheme.fluid.size == 5 and both.tv > 0
    plain = regularization("none", spec)
    assert plain.scheme.kind == "none" and plain.tv == 0
    assert regularization("fluid-elastic:sobolev:5:gaussian:3", spec).scheme.elastic.kind == "gaussian"
    for bad in ("", "tv+", "fluid:sobolev:5+elastic:sobolev:5", "blur:3"):
        with pytest.raises(ValueError):
            regularization(bad, spec)
    with pytest.raises(ValueError, match="must be > 0"):
        regularization("tv", spec, 0.0)
    assert [default_kernel_size(InputSpec(1, s, (0.5,), (0.5,))) for s in (32, 224, 299)] == [5, 11, 15]
    assert default_schemes(spec)[-1] == "fluid-elastic:sobolev:5:sobolev:5"


# ---- target pictures -------------------------------------------------------------------------------------------
def test_pictures_must_have_the_models_channels_unless_converted(tmp_path, digits):
    gray = (torch.arange(32 * 32) % 256).to(torch.uint8).view(32, 32).numpy()
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    image = read_target(tmp_path / "gray.png", digits.spec)
    torch.testing.assert_close(image, torch.from_numpy(gray).float()[None] / 127.5 - 1)
    rgb = Image.merge("RGB", [Image.fromarray(gray)] * 3)
    rgb.save(tmp_path / "rgb.png")
    rgb.convert("RGBA").save(tmp_path / "rgba.png")
    rgb.convert("P").save(tmp_path / "palette.png")
    assert picture_channels(tmp_path / "rgba.png") == (4, "RGBA")
    assert picture_channels(tmp_path / "palette.png") == (3, "RGB")
    for name, channels in (("rgb.png", 3), ("rgba.png", 4)):
        with pytest.raises(ValueError, match=rf"has {channels} channel\(s\).*gray \(1 channel\).*--convert"):
            read_target(tmp_path / name, digits.spec)
    torch.testing.assert_close(read_target(tmp_path / "rgb.png", digits.spec, convert=True), image)
    rgb_spec = InputSpec.imagenet(32)
    with pytest.raises(ValueError, match=r"has 1 channel\(s\) \(PIL mode L\).*3-channel"):
        read_target(tmp_path / "gray.png", rgb_spec)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ValueError, match="cannot read image"):
        read_target(tmp_path / "notes.png", digits.spec)
    with pytest.raises(FileNotFoundError, match="no image file"):
        read_target(tmp_path / "missing.png", digits.spec)
