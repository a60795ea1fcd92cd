"""proxygrad sweep --kinds: proxygrad's cells proxy smooth activations and max pooling too, their keys and labels
say so, default keys stay as they were, and bad kinds fail before any work. Labels in visualize say so too."""
import csv
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from proxygrad import cli
from proxygrad.am import RenderConfig, class_logit, render
from proxygrad.am.presets import build
from proxygrad.experiments.sweep import SweepConfig, cell, validate
from proxygrad.models.spec import InputSpec
from proxygrad.report.rows import cell_key
from proxygrad.report.visualization import method_label

SPEC = InputSpec(1, (8, 8), (0.5,), (0.5,), class_names=("a", "b", "c"))  # model input == image in [-1, 1]
ALL = ["rectifiers", "smooth", "pooling"]
# --kinds all with two settings given: the cells must hold these, the defaults filled in (docs/proxies.md)
ALL_SETTINGS = {"kinds": ALL, "smooth_variant": "floor", "smooth_slope": 0.05, "pool_variant": "softmax",
                "pool_temperature": 1.5}


def _net():
    """Conv, GELU, 2x2 max pooling, conv, ReLU, linear: (B, 1, 8, 8) -> (B, 3)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(64, 3)).eval()


def _sweep(model_file, out, *extra):
    return cli.main(["sweep", "--quiet", "--model", str(model_file), "--out", str(out), "--classes", "0,2",
                     "--seeds", "0", "--methods", "relu,proxygrad", "--slopes", "0,0.2", "--steps", "3",
                     "--regularizations", "none", "--gallery-classes", "2", "--gallery-slopes", "0.2",
                     "--gallery-steps", "3", *extra])


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "cells.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A default sweep, the same directory resumed with --kinds all, and a fresh --kinds all sweep."""
    root = tmp_path_factory.mktemp("sweep_kinds")
    model_file = root / "net.pt"
    torch.save({"model": _net(), "spec": SPEC.to_dict()}, model_file)
    kinds = ["--kinds", "all", "--smooth-variant", "floor", "--pool-temperature", "1.5"]
    assert _sweep(model_file, root / "default") == 0
    default_rows = _rows(root / "default")
    shutil.copytree(root / "default", root / "resumed")
    assert _sweep(model_file, root / "resumed", *kinds) == 0
    assert _sweep(model_file, root / "all", *kinds) == 0
    return {"root": root, "model_file": model_file, "default_rows": default_rows}


def test_default_cell_keys_are_those_of_existing_run_directories(runs):
    assert cell_key(cell(SweepConfig(), "proxygrad", 0.075, 10, "none")) == \
        '{"method": "proxygrad", "regularization": "none", "slope": 0.075, "steps": 10}'
    assert [row["key"] for row in runs["default_rows"]] == [
        '{"method": "relu", "regularization": "none", "slope": 0.0, "steps": 3}',
        '{"method": "proxygrad", "regularization": "none", "slope": 0.2, "steps": 3}',
        '{"gallery": true, "method": "relu", "regularization": "paper", "slope": 0.0, "steps": 3}',
        '{"gallery": true, "method": "proxygrad", "regularization": "paper", "slope": 0.2, "steps": 3}']
    results = json.loads((runs["root"] / "default" / "results.json").read_text())
    assert {g["method"] for g in results["gallery"]} == {"relu", "proxygrad s=0.2"}


def test_kinds_all_cells_hold_the_kinds_and_equal_direct_renders(runs):
    rows = _rows(runs["root"] / "all")
    proxygrad = [row for row in rows if row["settings"]["method"] == "proxygrad"]
    assert len(proxygrad) == 2 and all(row["settings"] == {**row["settings"], **ALL_SETTINGS} for row in proxygrad)
    assert all("kinds" not in row["settings"] for row in rows if row["settings"]["method"] == "relu")
    common = dict(steps=3, regularization=build("none"), progress=False)
    objectives = [class_logit(0), class_logit(2)]
    direct = render(_net(), SPEC, objectives, [0, 0], RenderConfig(slope=0.2, kinds="all", smooth_variant="floor",
                                                                   pool_temperature=1.5, **common))
    rectifiers = render(_net(), SPEC, objectives, [0, 0], RenderConfig(slope=0.2, **common))
    relu = render(_net(), SPEC, objectives, [0, 0], RenderConfig(method="relu", slope=0.0, **common))
    grid = {row["settings"]["method"]: row for row in rows if "gallery" not in row["settings"]}
    assert grid["proxygrad"]["activation"] == pytest.approx(direct.activation.tolist(), rel=1e-6)
    assert grid["proxygrad"]["activation"] != pytest.approx(rectifiers.activation.tolist(), rel=1e-3)
    assert grid["relu"]["activation"] == pytest.approx(relu.activation.tolist(), rel=1e-6)  # the original network
    with torch.no_grad():  # scored by the original network: its logits of the rendered images
        logits = _net()(SPEC.to_model_input(direct.images))
    assert direct.activation.tolist() == pytest.approx([logits[0, 0].item(), logits[1, 2].item()], rel=1e-5)


def test_kinds_all_labels_and_summary_show_the_kinds(runs):
    run_dir = runs["root"] / "all"
    results = json.loads((run_dir / "results.json").read_text())
    assert {g["method"] for g in results["gallery"]} == {"relu", "proxygrad s=0.2 [all]"}
    assert any(line.startswith("none, 3 steps: best proxygrad [all] (s = 0.2)") for line in results["findings"])
    assert results["settings"]["kinds"] == ["rectifiers", "smooth", "pooling"]
    with open(run_dir / "summary.csv", newline="") as handle:
        table = {row["method"]: row for row in csv.DictReader(handle)}
    assert table["proxygrad"]["kinds"] == "rectifiers+smooth+pooling" and table["relu"]["kinds"] == ""
    assert table["proxygrad"]["pool_temperature"] == "1.5"


def test_resuming_with_kinds_keeps_the_default_cells_and_adds_new_ones(runs):
    rows = _rows(runs["root"] / "resumed")
    assert rows[:4] == runs["default_rows"]  # relu and rectifiers-only proxygrad kept as they were
    assert [row["settings"].get("kinds") for row in rows[4:]] == [ALL, ALL]  # relu reused, not redone
    fresh = {row["key"]: row["activation"] for row in _rows(runs["root"] / "all")}
    assert all(fresh[row["key"]] == row["activation"] for row in rows[4:])
    findings = json.loads((runs["root"] / "resumed" / "results.json").read_text())["findings"]
    assert sum("best proxygrad (s = 0.2)" in line for line in findings) == 1
    assert sum("best proxygrad [all] (s = 0.2)" in line for line in findings) == 1
    gallery = runs["root"] / "resumed" / "gallery" / "s0.2"
    default, kinds = (np.asarray(Image.open(gallery / folder / "00_class_c.png"))
                      for folder in ("proxygrad", "proxygrad_rectifiers_smooth_pooling"))
    assert default.shape == kinds.shape and not np.array_equal(default, kinds)


@pytest.mark.parametrize("args,message", [
    (["--kinds", "smooth,relu"], "kinds must be a non-empty selection"),
    (["--kinds", "all", "--methods", "relu,leaky,proxygrad"], "drop leaky from --methods"),
    (["--kinds", "pooling", "--methods", "relu"], "--kinds apply to method proxygrad only"),
    (["--smooth-variant", "floor"], "smooth_variant applies to kind 'smooth'"),
    (["--kinds", "all", "--pool-variant", "share", "--pool-temperature", "1"], "pool_temperature is the 'softmax'"),
    (["--kinds", "smooth", "--smooth-slope", "-1"], "smooth_slope must be a finite number >= 0"),
])
def test_bad_kinds_exit_2_before_any_work(tmp_path, capsys, monkeypatch, args, message):
    import proxygrad.experiments.sweep as sweep

    monkeypatch.setattr(sweep, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr(sweep, "render_sharded", lambda *a, **k: pytest.fail("rendering started"))
    out = tmp_path / "run"
    code = _sweep(tmp_path / "missing.pt", out, *args)  # later flags win over _sweep's --methods
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("changes,message", [
    ({"kinds": "all"}, "drop leaky from the methods"),  # the default methods hold leaky
    ({"methods": ("relu", "softgate"), "pool_share": 0.3}, "pool_share applies to method proxygrad only"),
    ({"methods": ("relu", "proxygrad"), "kinds": ("smooth",), "pool_variant": "share"}, "applies to kind 'pooling'"),
])
def test_bad_kinds_in_a_sweep_config_are_refused_by_validate(changes, message):
    with pytest.raises(ValueError, match=message):
        validate(SweepConfig(**changes))


def test_method_label_names_the_kinds_beyond_rectifiers():
    assert method_label("proxygrad", 0.075) == "proxygrad s=0.075"
    assert method_label("proxygrad", 0.075, kinds=("rectifiers",)) == "proxygrad s=0.075"
    assert method_label("proxygrad", 0.075, kinds="all") == "proxygrad s=0.075 [all]"
    assert method_label("proxygrad", 0.075, kinds=("pooling", "smooth", "rectifiers")) == "proxygrad s=0.075 [all]"
    assert method_label("proxygrad", 0.3, kinds=("smooth", "rectifiers")) == "proxygrad s=0.3 [rectifiers+smooth]"
    assert method_label("proxygrad", 0.3, kinds=("pooling",)) == "proxygrad s=0.3 [pooling]"
    assert method_label("softgate", 0.3, 0.5) == "softgate t=0.5" and method_label("relu", 0.0) == "relu"


def test_visualize_labels_show_the_kinds(runs, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["visualize", "--quiet", "--model", str(runs["model_file"]), "--out", str(out), "-o", "0",
                     "--steps", "1", "--methods", "relu,proxygrad", "--kinds", "smooth,pooling"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["relu", "proxygrad s=0.075 [smooth+pooling]"]
    assert results["settings"]["methods"] == ["relu", "proxygrad"]
