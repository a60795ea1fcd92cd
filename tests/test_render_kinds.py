"""Activation maximization with the proxies beyond ReLU: RenderConfig(kinds=..., smooth_*/pool_*), `_patch`,
`proxygrad visualize --kinds` and `proxygrad.visualize(kinds=...)`; scores stay the original network's."""
import importlib
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch._dynamo.utils import counters

import proxygrad
from proxygrad import cli
from proxygrad.am import RenderConfig, class_logit, render
from proxygrad.am.init import initial_images
from proxygrad.am.presets import build
from proxygrad.models.spec import InputSpec
from proxygrad.surrogates import patched

render_module = importlib.import_module("proxygrad.am.render")  # the module (proxygrad.am.render is the function)
SPEC = InputSpec(1, (8, 8), (0.5,), (0.5,), num_classes=3)  # model input == image in [-1, 1]
OBJECTIVES, SEEDS = [class_logit(0), class_logit(2)], [0, 1]


def _net(seed=0, inplace=False):
    """Conv, GELU, 2x2 max pooling, conv, SiLU, ReLU, linear: every kind once; (B, 1, 8, 8) -> (B, 3)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
                         nn.SiLU(inplace=inplace), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).eval()


def _render(model=None, **options):
    options = {"steps": 4, "progress": False, **options}
    return render(model or _net(), SPEC, OBJECTIVES, SEEDS, RenderConfig(**options))


def _original_scores(model, images):
    """Objective values of the original network, by a direct forward of the final images."""
    with torch.no_grad():
        logits = model(SPEC.to_model_input(images))
    return torch.stack([logits[0, 0], logits[1, 2]])


# ---- RenderConfig ----------------------------------------------------------------------------------------------
def test_kinds_are_normalized_and_only_given_settings_reach_patched():
    config = RenderConfig(kinds="all")
    assert config.kinds == ("rectifiers", "smooth", "pooling") and config.proxy_options == {}
    config = RenderConfig(kinds=("pooling", "smooth", "pooling"), pool_variant="share", pool_share=1, smooth_slope=0)
    assert config.kinds == ("pooling", "smooth")
    assert config.proxy_options == {"smooth_slope": 0.0, "pool_variant": "share", "pool_share": 1.0}
    assert RenderConfig().kinds == ("rectifiers",)


@pytest.mark.parametrize("options,message", [
    ({"kinds": "everything"}, "kinds must be a non-empty selection"),
    ({"kinds": ()}, "kinds must be a non-empty selection"),
    ({"kinds": ("smooth", "relu")}, "kinds must be a non-empty selection"),
    ({"kinds": "all", "method": "leaky"}, "needs method 'proxygrad': method 'leaky'"),
    ({"kinds": "smooth", "method": "softgate"}, "needs method 'proxygrad': method 'softgate'"),
    ({"kinds": "pooling", "method": "relu"}, "needs method 'proxygrad': method 'relu'"),
    ({"smooth_variant": "floor"}, "smooth_variant applies to kind 'smooth'"),
    ({"kinds": "smooth", "pool_temperature": 1.0}, "pool_temperature applies to kind 'pooling'"),
    ({"kinds": "all", "smooth_variant": "relu"}, "smooth_variant must be one of ('floor', 'add', 'leaky')"),
    ({"kinds": "all", "smooth_slope": -0.1}, "smooth_slope must be a finite number >= 0"),
    ({"kinds": "all", "pool_variant": "average"}, "unknown pooling proxy variant 'average'"),
    ({"kinds": "all", "pool_temperature": 0.0}, "pool_temperature: temperature must be a finite number > 0"),
    ({"kinds": "all", "pool_share": 0.3}, "pool_share is the 'share' pooling proxy's setting"),
    ({"kinds": "all", "pool_variant": "share", "pool_temperature": 1.0}, "pool_temperature is the 'softmax'"),
    ({"kinds": "all", "pool_variant": "share", "pool_share": float("nan")}, "share must be a finite number >= 0"),
])
def test_bad_kinds_and_settings_fail_when_the_config_is_made(options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RenderConfig(**options)


# ---- rendering -----------------------------------------------------------------------------------------------
def test_defaults_render_todays_images_bitwise(monkeypatch):
    today = lambda proxy, config, slope, functional=True: patched(proxy, config.method, slope,
                                                                   functional=functional)  # _patch before kinds
    default, explicit = _render(), _render(kinds=("rectifiers",))
    monkeypatch.setattr(render_module, "_patch", today)
    before = _render()
    assert torch.equal(default.images, before.images) and torch.equal(explicit.images, before.images)
    assert torch.equal(default.activation, before.activation)


@pytest.mark.parametrize("kinds", [("smooth",), ("pooling",), "all"])
def test_other_kinds_change_the_images_and_the_original_network_scores_them(kinds):
    model = _net()
    rectifiers, other = _render(model), _render(model, kinds=kinds)
    assert not torch.equal(other.images, rectifiers.images)
    assert torch.allclose(other.activation, _original_scores(model, other.images), rtol=1e-6, atol=1e-6)
    assert [type(m) for m in model] == [type(m) for m in _net()]  # the original network was never patched


def test_one_step_equals_the_normalized_step_of_the_patched_gradient():
    """steps=1, no regularization: x1 = clamp(x0 + lr g / ||g||) with g through patched(kinds=...) by hand."""
    options = dict(kinds=("smooth", "pooling"), smooth_variant="floor", smooth_slope=0.3, pool_variant="share",
                   pool_share=0.5)
    model, lr = _net(), 0.4
    result = _render(model, steps=1, lr=lr, slope=0.2, **options)
    x0 = initial_images(SPEC, SEEDS, 0.1, "cpu").requires_grad_(True)
    proxy = render_module.proxy_network(model)
    with patched(proxy, "proxygrad", 0.2, **options):
        (g,) = torch.autograd.grad(proxy(x0)[[0, 1], [0, 2]].sum(), x0)
    expected = (x0 + lr * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(-1, 1).detach()
    assert torch.allclose(result.images, expected, atol=1e-6)
    assert not torch.allclose(_render(model, steps=1, lr=lr, slope=0.2, kinds=("smooth", "pooling")).images,
                              expected, atol=1e-4)  # the default variants give another step


def test_slope_schedule_and_softgate_keep_working_with_kinds():
    scheduled = _render(slope=0.3, slope_schedule="linear-to-zero", kinds="all")
    constant = _render(slope=0.3, kinds="all")
    assert not torch.equal(scheduled.images, constant.images)
    assert torch.allclose(scheduled.activation, _original_scores(_net(), scheduled.images), rtol=1e-6, atol=1e-6)
    softgate = _render(method="softgate", temperature=0.5)
    assert softgate.config.kinds == ("rectifiers",) and torch.isfinite(softgate.activation).all()


class _FunctionalGelu(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv, self.fc = nn.Conv2d(1, 2, 3), nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(F.gelu(self.conv(x)).flatten(1))


def test_functional_smooth_calls_get_the_proxy_and_compile_rejects_them_clearly():
    functional = _render(_FunctionalGelu(), kinds="smooth", smooth_variant="leaky", smooth_slope=0.5)
    plain = _render(_FunctionalGelu(), kinds="smooth", smooth_variant="add", smooth_slope=0.0)  # torch's gradient
    relu = _render(_FunctionalGelu(), method="relu")
    assert not torch.equal(functional.images, plain.images)
    assert torch.allclose(plain.images, relu.images, atol=1e-6)  # add with slope 0 is GELU's own derivative
    with pytest.raises(ValueError, match="calls smooth activation functions"):
        _render(_FunctionalGelu(), kinds="smooth", compile=True, steps=1)


def test_compiled_render_with_every_kind_agrees_with_eager_in_one_graph():
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as error:
        pytest.skip(f"torch.compile on the CPU needs a C++ compiler: {error}")
    torch._dynamo.reset()
    counters.clear()
    model = _net(inplace=True)
    eager = _render(model, kinds="all", steps=3)
    compiled = _render(model, kinds="all", steps=3, compile=True)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    assert torch.allclose(compiled.images, eager.images, atol=1e-5)
    assert torch.allclose(compiled.activation, eager.activation, rtol=1e-5, atol=1e-6)
    assert model[4].inplace  # only the proxy copy's SiLU ran out of place


def test_api_passes_kinds_to_the_render():
    model = _net()
    api = proxygrad.visualize(model, [0, 2], spec=SPEC, steps=4, progress=False, kinds="all",
                              pool_temperature=2.0)
    direct = render(model, SPEC, OBJECTIVES, [0, 0], RenderConfig(slope=0.075, steps=4, progress=False, kinds="all",
                                                                  pool_temperature=2.0))
    assert torch.equal(api.images, direct.images) and api.config.pool_temperature == 2.0


# ---- the command line ------------------------------------------------------------------------------------------
@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.pt"
    torch.save({"model": _net(), "spec": SPEC.to_dict()}, path)
    return path


def _visualize(tmp_path, model_file, *extra):
    out = tmp_path / "run"
    code = cli.main(["visualize", "--quiet", "--model", str(model_file), "--out", str(out), "-o", "0", "-o", "2",
                     "--steps", "3", *extra])
    return code, out


def test_cli_kinds_all_on_a_model_file_renders_records_and_scores_with_the_original(tmp_path, model_file):
    code, out = _visualize(tmp_path, model_file, "--kinds", "all", "--smooth-variant", "floor",
                           "--pool-temperature", "1.5")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["proxies"] == {"kinds": ["rectifiers", "smooth", "pooling"], "smooth_variant": "floor",
                                              "smooth_slope": 0.05, "pool_variant": "softmax",
                                              "pool_temperature": 1.5}
    common = dict(slope=0.075, steps=3, regularization=build("paper"), progress=False)
    by_hand = render(_net(), SPEC, OBJECTIVES, [0, 0], RenderConfig(kinds="all", smooth_variant="floor",
                                                                    pool_temperature=1.5, **common))
    rectifiers = render(_net(), SPEC, OBJECTIVES, [0, 0], RenderConfig(**common))
    relu = render(_net(), SPEC, OBJECTIVES, [0, 0], RenderConfig(method="relu", **{**common, "slope": 0.0}))
    activation = {m: [r["activation"] for r in results["images"] if r["method"] == m] for m in results["methods"]}
    assert activation["proxygrad s=0.075 [all]"] == pytest.approx(by_hand.activation.tolist(), rel=1e-6)
    assert activation["proxygrad s=0.075 [all]"] != pytest.approx(rectifiers.activation.tolist(), rel=1e-6)
    assert activation["relu"] == pytest.approx(relu.activation.tolist(), rel=1e-6)  # relu: the kinds do not apply
    assert torch.allclose(by_hand.activation, _original_scores(_net(), by_hand.images), rtol=1e-6, atol=1e-6)


def test_cli_default_records_rectifiers_only(tmp_path, model_file):
    code, out = _visualize(tmp_path, model_file, "--methods", "proxygrad", "--steps", "1")
    assert code == 0
    assert json.loads((out / "results.json").read_text())["settings"]["proxies"] == {"kinds": ["rectifiers"]}


@pytest.mark.parametrize("args,message", [
    (["--kinds", "smooth,relu"], "kinds must be a non-empty selection"),
    (["--kinds", ","], "kinds must be a non-empty selection"),
    (["--kinds", "all", "--smooth-variant", "tanh"], "smooth_variant must be one of"),
    (["--kinds", "pooling", "--pool-variant", "avg"], "unknown pooling proxy variant 'avg'"),
    (["--kinds", "pooling", "--pool-temperature", "-1"], "pool_temperature: temperature must be"),
    (["--kinds", "all", "--smooth-slope", "nan"], "smooth_slope must be a finite number >= 0"),
    (["--smooth-variant", "floor"], "smooth_variant applies to kind 'smooth'"),
    (["--kinds", "all", "--methods", "relu,leaky,proxygrad"], "drop leaky from --methods"),
    (["--kinds", "smooth", "--methods", "relu"], "--kinds apply to method proxygrad only"),
    (["--pool-share", "0.1", "--methods", "relu,softgate"], "--pool-share apply to method proxygrad only"),
])
def test_cli_bad_kinds_fail_before_rendering_with_one_line(tmp_path, model_file, capsys, monkeypatch, args, message):
    import proxygrad.am.distributed as distributed

    monkeypatch.setattr(distributed, "render_sharded", lambda *a, **k: pytest.fail("rendering started"))
    code, out = _visualize(tmp_path, model_file, *args)
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()
