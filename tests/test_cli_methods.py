"""The field's other methods in `proxygrad visualize`, `proxygrad sweep` and `proxygrad.visualize`: recipes,
parametrizations, every backward surrogate; labels, settings, guided marked as not an ascent; bad input."""
import json

import pytest
import torch

import proxygrad
from proxygrad import cli
from proxygrad.am import RenderConfig, render
from proxygrad.am import api
from proxygrad.am.api import resolve_objectives
from proxygrad.am.parametrizations import Fourier, Maco
from proxygrad.am.presets import build, preset as regularization
from proxygrad.am.spectrum import load_spectrum
from proxygrad.commands.visualize import build_configs
from proxygrad.experiments.sweep import SweepConfig, cell, cells, preset, validate
from proxygrad.models import load

DIGITS = load()
ONE_SEVEN = resolve_objectives(["1", "7"], DIGITS.spec)


def _configs(*argv, methods=("relu", "proxygrad")):
    args = cli.build_parser().parse_args(["visualize", *argv])
    return build_configs(args, DIGITS.spec, list(methods), None)


def _visualize(tmp_path, *extra):
    out = tmp_path / "run"
    code = cli.main(["visualize", "--quiet", "--out", str(out), "-o", "1", "-o", "7", *extra])
    return code, out


def _direct(config: RenderConfig):
    return render(DIGITS.model, DIGITS.spec, ONE_SEVEN, [0, 0], config)


# ---- visualize: which settings each recipe gives -------------------------------------------------------------
def test_no_recipe_keeps_todays_defaults_and_an_explicit_recipe_its_own_steps():
    configs, settings = _configs()
    config = configs["proxygrad s=0.075"]
    assert (config.steps, config.step_rule, config.lr) == (200, "normalized", None)
    assert config.parametrization.name == "pixel"
    assert config.image_size is None and configs["relu"].slope == 0.0 and config.slope == 0.075
    assert settings["regularization"] == repr(build("paper")) and settings["recipe"] == "paper"
    assert _configs("--recipe", "paper")[1]["steps"] == 500
    assert _configs("--recipe", "paper", "--steps", "7")[1]["steps"] == 7


def test_recipes_give_the_peer_methods_settings_and_options_override_parts():
    lucent = _configs("--recipe", "lucent")[0]["relu"]
    assert (lucent.steps, lucent.step_rule, lucent.lr) == (512, "adam", 0.05)  # Lucent's render_vis defaults
    assert isinstance(lucent.parametrization, Fourier)
    assert lucent.regularization.augment is not None and lucent.regularization.after_step is None
    maco, settings = _configs("--recipe", "maco")
    maco = maco["relu"]
    assert (maco.steps, maco.step_rule, maco.lr) == (1000, "nadam", 1.0)  # MACO: NAdam lr 1.0, 1000 steps
    assert maco.image_size == (183, 183)  # Horama's 1280 px buffer for 224 px models: 32 * 1280 / 224 = 182.9
    assert maco.regularization.views == 6 and settings["regularize"] == "maco"
    assert settings["parametrization"]["spectrum_source"] == load_spectrum("digits").source
    mixed = _configs("--recipe", "lucent", "--param", "pixel", "--step-rule", "nadam", "--lr", "0.3")[0]["relu"]
    assert (mixed.parametrization.name, mixed.step_rule, mixed.lr, mixed.steps) == ("pixel", "nadam", 0.3, 512)


def test_every_surrogate_gets_its_label_and_only_slope_methods_a_slope():
    methods = ("relu", "leaky", "proxygrad", "redirected", "redirected-captum", "softgate", "guided")
    configs, _ = _configs("--temperature", "0.5", "--slope", "0.2", methods=methods)
    assert list(configs) == ["relu", "leaky s=0.2", "proxygrad s=0.2", "redirected", "redirected-captum",
                             "softgate t=0.5", "guided"]
    assert [c.slope for c in configs.values()] == [0.0, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0]
    assert all(c.temperature == 0.5 for c in configs.values())


# ---- visualize: run directories --------------------------------------------------------------------------------
def test_default_run_renders_as_before(tmp_path):
    code, out = _visualize(tmp_path, "--steps", "3", "--methods", "proxygrad")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    today = _direct(RenderConfig(method="proxygrad", slope=0.075, steps=3, regularization=build("paper"),
                                 progress=False))
    assert [r["activation"] for r in results["images"]] == pytest.approx(today.activation.tolist(), rel=1e-6)
    assert results["methods"]["proxygrad s=0.075"]["ascent"] is True


def test_lucent_recipe_with_surrogates_writes_labels_settings_and_marks_guided(tmp_path, capsys):
    code, out = _visualize(tmp_path, "--recipe", "lucent", "--steps", "3", "--methods", "relu,softgate,guided",
                           "--temperature", "0.5")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["relu", "softgate t=0.5", "guided"]
    assert [results["methods"][m]["ascent"] for m in results["methods"]] == [True, True, False]
    settings = results["settings"]
    assert settings["recipe"] == "lucent" and settings["parametrization"]["name"] == "fourier"
    assert (settings["temperature"], settings["steps"], settings["step_rule"], settings["regularize"]) == \
        (0.5, 3, "adam", "lucent")
    assert any(line.startswith("guided: not an ascent direction") for line in results["findings"])
    printed = capsys.readouterr().out
    assert "guided *" in printed and "* not an ascent direction" in printed
    # the recipe's settings, built by hand from the peer-methods spec: the same images
    by_hand = _direct(RenderConfig(method="softgate", temperature=0.5, steps=3, step_rule="adam", lr=0.05,
                                   parametrization=Fourier(), progress=False,
                                   regularization=regularization("lucent", model_size=(32, 32))))
    softgate = [r["activation"] for r in results["images"] if r["method"] == "softgate t=0.5"]
    assert softgate == pytest.approx(by_hand.activation.tolist(), rel=1e-6)


def test_maco_recipe_with_a_spectrum_and_redirected(tmp_path):
    code, out = _visualize(tmp_path, "--recipe", "maco", "--spectrum", "digits", "--steps", "3",
                           "--methods", "redirected,proxygrad")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["redirected", "proxygrad s=0.075"]
    settings = results["settings"]
    assert settings["parametrization"]["spectrum"] == "digits" and settings["image_size"] == [183, 183]
    assert settings["parametrization"]["spectrum_source"]["sha256"] == load_spectrum("digits").source["sha256"]
    by_hand = _direct(RenderConfig(method="redirected", steps=3, step_rule="nadam", lr=1.0, image_size=(183, 183),
                                   parametrization=Maco(spectrum="digits"), progress=False,
                                   regularization=regularization("maco", model_size=(32, 32))))
    redirected = [r["activation"] for r in results["images"] if r["method"] == "redirected"]
    assert redirected == pytest.approx(by_hand.activation.tolist(), rel=1e-6)


@pytest.fixture
def bad_spectrum(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({"magnitude": torch.ones(1, 8, 8), "size": [8, 8], "source": {}}, path)  # rfft2 shape: (1, 8, 5)
    return path


@pytest.mark.parametrize("args,message", [
    (["--recipe", "fancy"], "unknown recipe 'fancy'; valid: paper, lucent, maco"),
    (["--param", "wavelet"], "unknown parametrization 'wavelet'"),
    (["--methods", "relu,deconvnet"], "method must be one of"),
    (["--methods", ","], "--methods is empty"),
    (["--methods", "softgate", "--temperature", "0"], "temperature must be a finite number > 0"),
    (["--methods", "softgate", "--temperature", "nan"], "temperature must be a finite number > 0"),
    (["--param", "fourier"], "--param fourier cannot use --regularize paper"),
    (["--param", "maco", "--regularize", "paper"], "choose --regularize none or lucent or maco"),
    (["--recipe", "lucent", "--octaves", "1.0:2"], "octaves need parametrization 'pixel'"),
    (["--recipe", "maco", "--jitter", "2"], "several views"),
    (["--spectrum", "digits"], "--spectrum goes with the maco parametrization"),
    (["--recipe", "maco", "--spectrum", "natural"], "3 channels, the model takes 1"),
    (["--recipe", "maco", "--spectrum", "SPECTRUM"], "bad.pt"),
])
def test_bad_input_fails_before_rendering_with_one_line(tmp_path, capsys, monkeypatch, bad_spectrum, args, message):
    import proxygrad.am.distributed as distributed

    monkeypatch.setattr(distributed, "render_sharded", lambda *a, **k: pytest.fail("rendering started"))
    args = [str(bad_spectrum) if a == "SPECTRUM" else a for a in args]
    code, out = _visualize(tmp_path, "--steps", "2", *args)
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


# ---- the Python API --------------------------------------------------------------------------------------------
@pytest.fixture
def captured(monkeypatch):
    """api.render replaced by one that returns the RenderConfig it was given."""
    monkeypatch.setattr(api, "render", lambda model, spec, objectives, seeds, config, device=None: config)


def test_api_recipe_and_keywords_override(captured):
    assert proxygrad.visualize(None, [1]).steps == 500  # today's API default
    lucent = proxygrad.visualize(None, [1], method="softgate", recipe="lucent", temperature=0.25)
    assert (lucent.steps, lucent.step_rule, lucent.lr, lucent.temperature) == (512, "adam", 0.05, 0.25)
    assert lucent.parametrization.name == "fourier" and lucent.method == "softgate"
    changed = proxygrad.visualize(None, [1], recipe="lucent", steps=9, step_rule="nadam", lr=0.5,
                                  parametrization="maco")
    assert (changed.steps, changed.step_rule, changed.lr, changed.parametrization.name) == (9, "nadam", 0.5, "maco")
    maco = proxygrad.visualize(None, [1], recipe="maco", spectrum="digits")
    assert maco.parametrization.spectrum == "digits" and maco.image_size == (183, 183)
    assert proxygrad.visualize(None, [1], parametrization="fourier", regularization=regularization("none")) \
        .parametrization.name == "fourier"


def test_api_renders_with_a_recipe():
    result = proxygrad.visualize(None, [1, 7], method="guided", recipe="lucent", steps=3, progress=False)
    by_hand = _direct(RenderConfig(method="guided", steps=3, step_rule="adam", lr=0.05, parametrization=Fourier(),
                                   regularization=regularization("lucent", model_size=(32, 32)), progress=False))
    assert torch.allclose(result.activation, by_hand.activation, rtol=1e-6)


def test_api_bad_recipe_fails_before_loading(monkeypatch):
    monkeypatch.setattr(api, "resolve_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="unknown recipe 'fancy'"):
        proxygrad.visualize(None, [1], recipe="fancy")
    with pytest.raises(ValueError, match="spectrum= goes with recipe='maco'"):
        proxygrad.visualize(None, [1], spectrum="digits")


# ---- sweep -----------------------------------------------------------------------------------------------------
def test_surrogates_without_slope_are_one_cell_and_old_keys_stay():
    config = SweepConfig(methods=("relu", "softgate", "redirected", "proxygrad"), slopes=(0.0, 0.1, 0.3),
                         steps=(10,), regularizations=("none",), temperature=0.5)
    grid = cells(config)
    assert [(c["method"], c["slope"]) for c in grid] == [("relu", 0.0), ("proxygrad", 0.1), ("proxygrad", 0.3),
                                                          ("softgate", 0.0), ("redirected", 0.0)]
    assert grid[3]["temperature"] == 0.5 and "temperature" not in grid[4]
    assert cell(SweepConfig(), "proxygrad", 0.1, 10, "paper") == \
        {"regularization": "paper", "steps": 10, "method": "proxygrad", "slope": 0.1}
    assert cell(SweepConfig(parametrization="fourier", step_rule="adam"), "relu", 0.0, 10, "none") == \
        {"regularization": "none", "steps": 10, "method": "relu", "slope": 0.0, "parametrization": "fourier",
         "step_rule": "adam"}


def test_sweep_with_fourier_lucent_and_new_surrogates(tmp_path):
    out = tmp_path / "run"
    code = cli.main(["sweep", "--quiet", "--out", str(out), "--classes", "1,7", "--seeds", "0", "--steps", "3",
                     "--slopes", "0,0.2", "--param", "fourier", "--step-rule", "adam", "--regularizations",
                     "none,lucent", "--methods", "relu,softgate,guided", "--temperature", "0.5",
                     "--gallery-classes", "7", "--gallery-steps", "2"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    grid = [r["settings"] for r in rows if "gallery" not in r["settings"]]
    assert {(c["regularization"], c["method"]) for c in grid} == \
        {(r, m) for r in ("none", "lucent") for m in ("relu", "softgate", "guided")} and len(grid) == 6
    assert all(c["parametrization"] == "fourier" and c["slope"] == 0.0 for c in grid)
    assert {r["settings"]["regularization"] for r in rows if "gallery" in r["settings"]} == {"lucent"}
    softgate = next(r for r in rows if r["settings"] == cell(preset("quick", parametrization="fourier",
                                                                    step_rule="adam", temperature=0.5),
                                                             "softgate", 0.0, 3, "lucent"))
    by_hand = _direct(RenderConfig(method="softgate", temperature=0.5, steps=3, step_rule="adam",
                                   parametrization="fourier", progress=False,
                                   regularization=regularization("lucent", model_size=(32, 32))))
    assert softgate["activation"] == pytest.approx(by_hand.activation.tolist(), rel=1e-6)
    results = json.loads((out / "results.json").read_text())
    assert any("guided reaches" in f and "not an ascent direction" in f for f in results["findings"])
    header, *lines = (out / "summary.csv").read_text().splitlines()
    assert header.startswith("regularization,steps,method,slope,parametrization,step_rule,temperature,mean")
    assert sum(",softgate,0.0,fourier,adam,0.5," in line for line in lines) == 2


@pytest.mark.parametrize("changes,message", [
    ({"parametrization": "fourier"}, "regularization 'paper' acts on pixels after each step; valid with it: "
                                     "none, lucent, maco"),
    ({"parametrization": "maco", "regularizations": ("none",), "gallery_regularization": "paper"}, "'paper'"),
    ({"parametrization": "wavelet"}, "unknown parametrization"),
    ({"methods": ("relu", "deconvnet")}, "methods must be among"),
    ({"temperature": 0.0}, "temperature"),
    ({"step_rule": "sgd"}, "step_rule"),
])
def test_bad_sweeps_fail_up_front(tmp_path, capsys, changes, message):
    with pytest.raises(ValueError, match=message):
        validate(preset("quick", **changes))
    if changes.get("parametrization") == "fourier":
        assert cli.main(["sweep", "--param", "fourier", "--out", str(tmp_path / "run")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()
