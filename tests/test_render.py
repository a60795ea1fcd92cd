"""The rendering loop: closed forms, batching, determinism, bad gradients, scoring by the original network."""
import math

import pytest
import torch
import torch.nn as nn

from proxygrad.am import Octave, Regularization, RenderConfig, channel, class_logit, render
from proxygrad.am.objectives import ImagePenalty, Objective, Unit
from proxygrad.am.presets import build
from proxygrad.am.schemes import Scheme
from proxygrad.am.filters import Filter
from proxygrad.models.spec import InputSpec

SPEC = InputSpec(1, (8, 8), (0.5,), (0.5,))  # model input == image in [-1, 1]


def _config(**kwargs):
    kwargs.setdefault("progress", False)
    return RenderConfig(**kwargs)


class Linear(nn.Module):
    """f(x) = <w, x> as one logit; w fixed."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w.flatten().clone())

    def forward(self, x):
        return (x.flatten(1) @ self.w).unsqueeze(1)


class SumRelu(nn.Module):
    """The paper's f1: sum ReLU(x)."""

    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.relu(x).flatten(1).sum(1, keepdim=True) + self.dummy


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3)).eval()


def test_normalized_step_is_lr_times_unit_gradient():
    w = torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(3))
    config = _config(method="relu", steps=1, lr=0.05, init_sigma=0.0)
    result = render(Linear(w), SPEC, [class_logit(0)], [0], config)
    assert torch.allclose(result.images[0], 0.05 * w / w.norm(), atol=1e-7)


def test_default_lr_keeps_the_papers_step_per_pixel():
    config = _config()
    assert config.step_size(Octave(1.0, 1), 3 * 224 * 224) == pytest.approx(25.0)
    assert config.step_size(Octave(1.0, 1), 1 * 32 * 32) == pytest.approx(25 * math.sqrt(1024 / 150528))


def test_fluid_gaussian_step_is_the_filtered_unit_gradient():
    w = torch.zeros(1, 8, 8)
    w[0, 4, 4] = 1.0
    kernel = Filter.gaussian(3, 0.8)
    config = _config(method="relu", steps=1, lr=0.1, init_sigma=0.0,
                     regularization=Regularization(scheme=Scheme.fluid(kernel)))
    image = render(Linear(w), SPEC, [class_logit(0)], [0], config).images[0, 0]
    k = kernel.kernel(dtype=torch.float32)
    expected = torch.zeros(8, 8)
    expected[3:6, 3:6] = 0.1 * k / k.norm()
    assert torch.allclose(image, expected, atol=1e-7)


def test_l2_penalised_linear_objective_reaches_closed_form_optimum():
    """Seed 002: argmax <w, x> - lambda ||x||^2 = w / (2 lambda), inside the box here."""
    w = 0.5 * torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(1)).clamp(-1, 1)
    lam = 1.0
    objective = class_logit(0) + ImagePenalty(lambda x: x.flatten(1).pow(2).sum(1), lam, "l2")
    config = _config(method="relu", steps=200, lr=0.25, step_rule="plain", init_sigma=0.1)
    image = render(Linear(w), SPEC, [objective], [0], config).images[0]
    assert torch.allclose(image, w / (2 * lam), atol=1e-4)


def test_proxygrad_reaches_the_optimum_of_sum_relu_where_relu_gets_stuck():
    objectives, seeds = [class_logit(0)] * 3, [0, 1, 2]
    relu = render(SumRelu(), SPEC, objectives, seeds, _config(method="relu", steps=40, lr=2.0, init_sigma=0.5))
    proxy = render(SumRelu(), SPEC, objectives, seeds,
                   _config(method="proxygrad", slope=0.2, steps=40, lr=2.0, init_sigma=0.5))
    assert torch.allclose(proxy.activation, torch.full((3,), 64.0))
    assert (relu.activation < 50).all()


def test_batched_equals_one_at_a_time_bitwise_and_reproducible():
    model = _cnn()
    regularization = build("paper", jitter=1, rotate=5.0)
    objectives = [class_logit(0), class_logit(1), channel("3", 2), class_logit(0), class_logit(2)]
    seeds = [0, 1, 2, 3, 4]
    config = _config(method="proxygrad", slope=0.3, steps=15, regularization=regularization, batch_size=5)
    together = render(model, SPEC, objectives, seeds, config)
    again = render(model, SPEC, objectives, seeds, config)
    config.batch_size = 2
    chunked = render(model, SPEC, objectives, seeds, config)
    alone = [render(model, SPEC, [o], [s], _config(method="proxygrad", slope=0.3, steps=15,
                                                     regularization=regularization)) for o, s in zip(objectives, seeds)]
    assert torch.equal(together.images, again.images)
    assert torch.equal(together.images, chunked.images)
    assert torch.equal(together.images, torch.cat([r.images for r in alone]))
    # Scores go through a final matrix product whose kernel depends on the batch: equal to rounding.
    assert torch.allclose(together.trace, torch.cat([r.trace for r in alone]), atol=1e-6)


def test_scores_come_from_the_original_network_in_leaky_mode():
    model = _cnn()
    result = render(model, SPEC, [class_logit(1)], [0], _config(method="leaky", slope=0.5, steps=10))
    with torch.no_grad():
        original = model(result.images)[:, 1]
    assert torch.allclose(result.activation, original, atol=1e-6)
    assert result.trace.shape == (1, 2) and result.trace_steps == [0, 10]


def test_model_is_left_as_it_was():
    model = _cnn().train()
    flags = [p.requires_grad for p in model.parameters()]
    render(model, SPEC, [class_logit(0)], [0], _config(method="proxygrad", steps=2))
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2


class Dead(nn.Module):
    """A unit that no input in [-1, 1] can switch on: relu(-10 - sum|x|)... as a linear ReLU unit."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 1)
        with torch.no_grad():
            self.fc.weight.fill_(0.01)
            self.fc.bias.fill_(-10.0)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc(x.flatten(1)))


def test_zero_gradient_leaves_the_image_and_is_reported():
    result = render(Dead(), SPEC, [class_logit(0)], [0], _config(method="relu", steps=5, init_sigma=0.2))
    assert result.zero_gradient_steps.tolist() == [5]
    start = render(Dead(), SPEC, [class_logit(0)], [0], _config(method="relu", steps=0, init_sigma=0.2))
    assert torch.equal(result.images, start.images)
    proxy = render(Dead(), SPEC, [class_logit(0)], [0], _config(method="proxygrad", slope=0.1, steps=5))
    assert proxy.zero_gradient_steps.tolist() == [0]


class NanGradient(Objective):
    layers = frozenset({"output"})
    name = "nan"

    def score(self, capture):
        out = capture["output"][:, 0]
        return torch.where(out > -1e9, torch.sqrt(out - 1e12), out)  # sqrt of a negative: NaN gradient


def test_nonfinite_gradient_is_handled_per_image():
    model = Linear(torch.ones(1, 8, 8))
    result = render(model, SPEC, [NanGradient(), class_logit(0)], [0, 1], _config(method="relu", steps=4))
    assert torch.isfinite(result.images).all()
    assert result.nonfinite_gradient_steps.tolist() == [4, 0]
    assert result.activation[1] > result.trace[1, 0]


def test_images_stay_in_the_box_and_octaves_return_the_base_size():
    model = _cnn()
    config = _config(method="proxygrad", octaves=(Octave(1.0, 5, 1.0), Octave(1.5, 5, 0.5)),
                     regularization=build("none", scale=(0.9, 1.1)))
    result = render(model, SPEC, [class_logit(0)], [0], config)
    assert result.images.shape == (1, 1, 8, 8)
    assert result.images.min() >= -1 and result.images.max() <= 1


def test_adam_increases_the_objective():
    result = render(_cnn(), SPEC, [class_logit(2)], [0], _config(method="proxygrad", steps=20, step_rule="adam"))
    assert result.activation[0] > result.trace[0, 0]


def test_init_image_is_the_start():
    start = torch.linspace(-1, 1, 64).view(1, 8, 8)
    result = render(_cnn(), SPEC, [class_logit(0)], [0], _config(steps=0, init_sigma=0.0, init_image=start))
    assert torch.equal(result.images[0], start)


@pytest.mark.parametrize("kwargs,match", [({"method": "gelu"}, "method"), ({"slope": -1.0}, "slope"),
                                          ({"step_rule": "sgd"}, "step_rule"), ({"batch_size": 0}, "batch_size")])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RenderConfig(**kwargs)


def test_bad_calls():
    with pytest.raises(ValueError, match="one seed per objective"):
        render(_cnn(), SPEC, [class_logit(0)], [0, 1], _config())
    with pytest.raises(ValueError, match="unknown layer"):
        render(_cnn(), SPEC, [Unit("7x", 0)], [0], _config())


def test_memory_budget_lowers_the_batch_and_keeps_the_images():
    from proxygrad.am.render import bytes_per_image

    model = _cnn()
    objectives, seeds = [class_logit(0)] * 5, list(range(5))
    per_image = bytes_per_image(model, SPEC, frozenset({"output"}), _config(), "cpu")
    # Saved for backward, per 8x8 image: at least the 4-channel activations of both conv layers.
    assert per_image >= 2 * 4 * 64 * 4
    budget = 2.5 * per_image / 2**20
    limited = render(model, SPEC, objectives, seeds, _config(steps=3, memory_mb=budget))
    free = render(model, SPEC, objectives, seeds, _config(steps=3))
    assert limited.batch_size == 2 and free.batch_size == 5
    assert torch.equal(limited.images, free.images)


# ---- slope schedule (annealing the backward slope to 0) -----------------------------------------------------
class FunctionalSumRelu(nn.Module):
    """f1 with a functional rectifier call instead of an nn.ReLU module."""

    def forward(self, x):
        return torch.relu(x).flatten(1).sum(1, keepdim=True)


def test_linear_to_zero_goes_from_the_slope_at_the_first_step_to_zero_at_the_last():
    config = _config(method="proxygrad", slope=0.4, steps=5, slope_schedule="linear-to-zero")
    assert [config.slope_at(k) for k in range(5)] == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0])
    octaves = _config(slope=0.4, octaves=(Octave(1.0, 2), Octave(1.5, 3)), slope_schedule="linear-to-zero")
    assert octaves.slope_at(2) == pytest.approx(0.2)  # counted over all octaves
    assert _config(slope=0.4, steps=5).slope_at(4) == 0.4  # constant by default


@pytest.mark.parametrize("model", [SumRelu(), FunctionalSumRelu()], ids=["module", "functional"])
@pytest.mark.parametrize("method", ["proxygrad", "leaky"])
def test_annealed_slope_gives_the_closed_form_trajectory(model, method):
    """f1 from x0 = -0.5 everywhere, plain steps of size 1: each step adds the step's slope to every pixel, so
    x_T = -0.5 + sum_t s_t, with s_t = 0.04 (1 - t / 4): -0.5 + 0.1 = -0.4 (constant slope: -0.3)."""
    start = torch.full((1, 8, 8), -0.5)
    common = dict(method=method, slope=0.04, steps=5, step_rule="plain", lr=1.0, init_sigma=0.0, init_image=start)
    annealed = render(model, SPEC, [class_logit(0)], [0], _config(slope_schedule="linear-to-zero", **common))
    constant = render(model, SPEC, [class_logit(0)], [0], _config(**common))
    assert torch.allclose(annealed.images, torch.full_like(annealed.images, -0.4), atol=1e-6)
    assert torch.allclose(constant.images, torch.full_like(constant.images, -0.3), atol=1e-6)
    assert annealed.activation.item() == 0.0  # scored by the original network: ReLU of negatives


def test_annealed_run_leaves_the_model_unpatched():
    model = SumRelu()
    render(model, SPEC, [class_logit(0)], [0], _config(method="proxygrad", steps=3, slope_schedule="linear-to-zero"))
    assert type(model.relu) is nn.ReLU


@pytest.mark.parametrize("kwargs,match", [({"slope_schedule": "cosine"}, "slope_schedule"),
                                          ({"method": "relu", "slope_schedule": "linear-to-zero"}, "leaky")])
def test_bad_slope_schedule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RenderConfig(**kwargs)


def _bundled_render(**options):
    import proxygrad

    loaded = proxygrad.load()
    return proxygrad.visualize(loaded, None, method="proxygrad", slope=0.075, steps=60, progress=False,
                               regularization=build("paper"), **options), loaded


def test_bf16_autocast_agrees_with_fp32_within_one_percent_on_the_trained_model():
    fp32, loaded = _bundled_render()
    bf16, _ = _bundled_render(precision="bf16")
    assert bf16.images.dtype == torch.float32
    relative = abs(bf16.activation.mean() - fp32.activation.mean()) / fp32.activation.mean()
    assert relative < 0.01
    with torch.no_grad():  # the reported numbers are the float32 original network's
        logits = loaded.model(loaded.spec.to_model_input(bf16.images))
    assert torch.allclose(bf16.activation, logits.diagonal(), atol=1e-4)


def test_channels_last_gives_the_same_images():
    default, _ = _bundled_render()
    channels_last, _ = _bundled_render(channels_last=True)
    assert torch.allclose(default.images, channels_last.images, atol=1e-5)


def test_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        RenderConfig(precision="fp8")


class _ThreadProbe(Objective):
    layers = frozenset({"output"})
    name = "probe"
    seen: list = []

    def score(self, capture):
        _ThreadProbe.seen.append(torch.get_num_threads())
        return capture["output"][:, 0]


def test_small_cpu_batches_run_on_one_thread_and_the_setting_is_restored():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        render(_cnn(), SPEC, [_ThreadProbe()], [0], _config(steps=2))
        assert set(_ThreadProbe.seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
