"""Speed work on the render loop: capture hooks registered once, torch.compile of the proxy's forward (CPU, and
CUDA with bf16 + channels_last when a GPU is present), batch-independence with NNPACK off, frozen BatchNorm."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch._dynamo.utils import counters

from proxygrad.am import RenderConfig, channel, class_logit, render
from proxygrad.am.objectives import OUTPUT, Capturer, run_and_capture
from proxygrad.am.presets import build
from proxygrad.models.spec import InputSpec

SPEC = InputSpec(1, (8, 8), (0.5,), (0.5,))  # model input == image in [-1, 1]


def _config(**kwargs):
    kwargs.setdefault("progress", False)
    return RenderConfig(**kwargs)


def _cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3)).eval()


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _need_compiler():
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as error:  # no C++ compiler: inductor cannot build CPU kernels here
        pytest.skip(f"torch.compile on the CPU needs a C++ compiler: {error}")


# ---- capture hooks --------------------------------------------------------------------------------------------
def test_capturer_registers_once_and_matches_run_and_capture():
    net, layers = _cnn(), frozenset({"1", "4", OUTPUT})
    x = torch.randn(2, 1, 8, 8)
    with Capturer(net, layers) as capture:
        assert len(net[1]._forward_hooks) == 1 and len(net[4]._forward_hooks) == 1
        first, second = capture(x, x), capture(2 * x, 2 * x)
        assert _hooks(net) == 2  # still the same two hooks after two forwards
    assert _hooks(net) == 0
    expected = run_and_capture(net, 2 * x, 2 * x, layers)
    assert set(second) == {"input", "1", "4", OUTPUT}
    assert all(torch.equal(second[k], expected[k]) for k in expected)
    assert torch.equal(first[OUTPUT], net(x))  # each call returns its own forward's tensors


def test_render_registers_hooks_a_number_of_times_independent_of_the_steps(monkeypatch):
    calls = []
    register = nn.Module.register_forward_hook
    monkeypatch.setattr(nn.Module, "register_forward_hook",
                        lambda self, *a, **k: calls.append(1) or register(self, *a, **k))
    counts = []
    for steps in (2, 9):
        calls.clear()
        render(_cnn(), SPEC, [channel("3", 1), class_logit(0)], [0, 1], _config(steps=steps, trace_every=1))
        counts.append(len(calls))
    assert counts[0] == counts[1]


def test_no_hooks_are_left_on_the_model_after_render_or_an_error():
    model = _cnn()
    for method in ("relu", "proxygrad"):  # relu: the proxy is the model itself
        render(model, SPEC, [channel("3", 1), class_logit(2)], [0, 1], _config(method=method, steps=3))
        assert _hooks(model) == 0
    with pytest.raises(ValueError, match="channel out of range"):
        render(model, SPEC, [channel("3", 7)], [0], _config(method="relu", steps=2))
    assert _hooks(model) == 0 and all(type(m) is not nn.LeakyReLU for m in model.modules())


class _Mixed(nn.Module):
    """A ReLU module and a functional ReLU call (``functional=True``) or two modules (``False``)."""

    def __init__(self, functional: bool):
        super().__init__()
        torch.manual_seed(1)
        self.conv, self.fc, self.relu_a, self.relu_b = nn.Conv2d(1, 3, 3), nn.Linear(3 * 6 * 6, 2), nn.ReLU(), nn.ReLU()
        self.functional = functional

    def forward(self, x):
        h = self.relu_a(self.conv(x)).flatten(1)
        return F.relu(self.fc(h)) if self.functional else self.relu_b(self.fc(h))


def test_functional_calls_still_get_the_proxy_next_to_modules():
    config = _config(method="proxygrad", slope=0.3, steps=6)
    functional = render(_Mixed(True), SPEC, [class_logit(0), class_logit(1)], [0, 1], config)
    modules = render(_Mixed(False), SPEC, [class_logit(0), class_logit(1)], [0, 1], config)
    relu = render(_Mixed(False), SPEC, [class_logit(0), class_logit(1)], [0, 1], _config(method="relu", steps=6))
    assert torch.equal(functional.images, modules.images)
    assert not torch.equal(functional.images, relu.images)  # the proxy made a difference


# ---- CPU determinism and frozen BatchNorm -------------------------------------------------------------------
def test_batches_of_sixteen_and_more_equal_one_at_a_time_bitwise():
    """NNPACK (torch's pick for 16+ images) would make big batches differ from small ones; it is off."""
    objectives, seeds = [class_logit(k % 3) for k in range(16)], list(range(16))
    config = _config(method="proxygrad", slope=0.3, steps=4, regularization=build("paper"), batch_size=16)
    together = render(_cnn(), SPEC, objectives, seeds, config)
    config.batch_size = 1
    alone = render(_cnn(), SPEC, objectives, seeds, config)
    assert together.batch_size == 16 and torch.equal(together.images, alone.images)
    assert torch._C._get_nnpack_enabled()  # restored


def test_a_model_in_training_mode_renders_with_frozen_batchnorm():
    trained, evaluated = _cnn().train(), _cnn()
    before = trained[1].running_mean.clone(), trained[1].num_batches_tracked.clone()
    config = _config(method="proxygrad", steps=4)
    a = render(trained, SPEC, [class_logit(0), class_logit(1)], [0, 1], config)
    b = render(evaluated, SPEC, [class_logit(0), class_logit(1)], [0, 1], config)
    assert torch.equal(trained[1].running_mean, before[0]) and torch.equal(trained[1].num_batches_tracked, before[1])
    assert torch.equal(a.images, b.images) and trained.training


# ---- torch.compile ------------------------------------------------------------------------------------------
def test_compile_needs_a_constant_slope_and_rectifier_modules():
    with pytest.raises(ValueError, match="compile=True needs slope_schedule='constant'"):
        RenderConfig(compile=True, slope_schedule="linear-to-zero")
    with pytest.raises(ValueError, match="calls rectifier functions"):
        render(_Mixed(True), SPEC, [class_logit(0)], [0], _config(compile=True, steps=1))


def test_compiled_render_agrees_with_eager_and_compiles_once_for_all_batches():
    _need_compiler()
    torch._dynamo.reset()
    counters.clear()
    model, objectives = _cnn(), [class_logit(k % 3) for k in range(6)]
    common = dict(method="proxygrad", slope=0.3, steps=5, regularization=build("paper"), batch_size=3)
    eager = render(model, SPEC, objectives, list(range(6)), _config(**common))
    compiled = render(model, SPEC, objectives, list(range(6)), _config(compile=True, **common))
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]  # two batches, one graph
    others = [class_logit(2), class_logit(0), class_logit(0)]  # other classes, the same layers read
    again = render(model, SPEC, others, [7, 8, 9], _config(compile=True, **common))
    assert counters["stats"]["unique_graphs"] == 1  # a new proxy, other objectives, same shape: no recompile
    assert torch.allclose(compiled.images, eager.images, atol=1e-5)
    assert torch.allclose(compiled.activation, eager.activation, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(again.activation).all() and _hooks(model) == 0
    assert model[2].inplace  # the original's in-place ReLU is untouched (only the proxy copy's changed)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_bf16_channels_last_on_cuda_agrees_with_fp32_eager():
    import proxygrad

    loaded = proxygrad.load(device="cuda")
    options = dict(method="proxygrad", slope=0.075, steps=60, progress=False, regularization=build("paper"),
                   device="cuda")
    fp32 = proxygrad.visualize(loaded, None, **options)
    torch._dynamo.reset()
    counters.clear()
    fast = proxygrad.visualize(loaded, None, compile=True, precision="bf16", channels_last=True, **options)
    proxygrad.visualize(loaded, None, compile=True, precision="bf16", channels_last=True, seeds=(1,), **options)
    assert counters["stats"]["unique_graphs"] == 1  # the second rendering reuses the compiled forward
    relative = abs(fast.activation.mean() - fp32.activation.mean()) / fp32.activation.mean()
    assert relative < 0.02 and fast.images.dtype == torch.float32 and _hooks(loaded.model) == 0


def test_compile_modes_are_checked_and_true_means_default():
    assert RenderConfig(compile=True).compile_mode == "default" and RenderConfig().compile_mode is None
    assert RenderConfig(compile="reduce-overhead").compile_mode == "reduce-overhead"
    with pytest.raises(ValueError, match="torch.compile mode"):
        RenderConfig(compile="fastest")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_mode_agrees_with_eager_on_cuda():
    import proxygrad

    loaded = proxygrad.load(device="cuda")
    options = dict(method="proxygrad", slope=0.075, steps=20, progress=False, device="cuda")
    eager = proxygrad.visualize(loaded, None, **options)
    graphs = proxygrad.visualize(loaded, None, compile="reduce-overhead", **options)
    relative = abs(graphs.activation.mean() - eager.activation.mean()) / eager.activation.mean()
    assert relative < 0.01 and _hooks(loaded.model) == 0
