"""The tiny networks, the beyond experiment's cells and summaries, and the ``proxygrad beyond`` command."""
import json

import pytest
import torch
import torch.nn as nn

from proxygrad.am import RenderConfig, class_logit, render
from proxygrad.cli import main
from proxygrad.experiments import beyond
from proxygrad.experiments.beyond import PLAIN, BeyondConfig, method
from proxygrad.models import digits_data, tiny
from proxygrad.report.rows import ResultRows


@pytest.mark.parametrize("name", list(tiny.RECIPES))
def test_bundled_tiny_networks_match_their_provenance(name):
    loaded = tiny.load_tiny(name)  # sha256 checked
    record = tiny.read_provenance()[name]
    size = tiny.RECIPES[name].size
    images, labels = digits_data("test", size)
    with torch.no_grad():
        accuracy = (loaded.model(images).argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1.5e-3)
    assert accuracy > (0.8 if name.startswith("poolcnn") else 0.93)
    activation = tiny.RECIPES[name].activation
    kinds = {type(m).__name__.lower() for m in loaded.model.modules()}
    assert "relu" not in kinds if activation != "relu" else "maxpool2d" in kinds
    assert loaded.spec.size == (size, size)


def test_bad_names_and_missing_weights(tmp_path):
    with pytest.raises(ValueError, match="valid: convnext-gelu"):
        tiny.load_tiny("convnext-relu")
    with pytest.raises(FileNotFoundError, match="regenerate"):
        tiny.load_tiny("vit-gelu", folder=tmp_path)


def test_methods_map_to_patch_arguments():
    assert beyond.patch_arguments(PLAIN) is None and beyond.label(PLAIN) == "plain"
    m = method(rectifiers=0.1, pool_variant="softmax", pool_value=0.5)
    assert beyond.label(m) == "proxygrad s=0.1 + softmax t=0.5"
    assert beyond.patch_arguments(m) == {"mode": "proxygrad", "slope": 0.1, "kinds": ("rectifiers", "pooling"),
                                         "pool_variant": "softmax", "pool_temperature": 0.5}
    m = method(smooth_variant="floor", smooth_slope=0.2)
    assert beyond.patch_arguments(m) == {"mode": "proxygrad", "slope": 0.0, "kinds": ("smooth",),
                                         "smooth_variant": "floor", "smooth_slope": 0.2}


def test_plain_cell_is_the_original_networks_rendering():
    loaded = tiny.load_tiny("resnet-silu")
    objectives = [class_logit(2, "class:2"), class_logit(7, "class:7")]
    cell = beyond.render_cell(loaded, objectives, [0], PLAIN, (2, 4), "none")
    direct = render(loaded.model, loaded.spec, objectives, [0, 0], RenderConfig(method="relu", steps=4,
                                                                                  trace_every=2, progress=False))
    assert cell["activation"]["4"] == direct.activation.tolist()
    assert cell["activation"]["2"] == direct.trace[:, 1].tolist()
    assert cell["check"] == 0.0


def test_proxy_cell_changes_the_path_but_scores_by_the_original():
    loaded = tiny.load_tiny("convnext-gelu")
    objectives = [class_logit(3, "class:3")]
    plain = beyond.render_cell(loaded, objectives, [0, 1], PLAIN, (3,), "none")
    floor = beyond.render_cell(loaded, objectives, [0, 1], method(smooth_variant="floor", smooth_slope=0.3), (3,),
                               "none")
    zero = beyond.render_cell(loaded, objectives, [0, 1], method(smooth_variant="add", smooth_slope=0.0), (3,),
                              "none")
    assert floor["check"] == 0.0 and floor["calls"]["smooth"]["modules"] == 3  # forward bit-identical
    assert floor["activation"]["3"] != plain["activation"]["3"]
    # add with slope 0 is the original derivative: the same path up to rounding
    assert zero["activation"]["3"] == pytest.approx(plain["activation"]["3"], rel=1e-4)


def test_summaries_by_hand(tmp_path):
    rows = ResultRows(tmp_path / "cells.jsonl")
    seeds, objectives = [0, 1], ["class:0"]
    rows.append("a", section="pooling", network="n", method=PLAIN, label="plain", objectives=objectives,
                seeds=seeds, activation={"5": [1.0, 3.0]})
    m = method(pool_variant="share", pool_value=0.2)
    rows.append("b", section="pooling", network="n", method=m, label=beyond.label(m), objectives=objectives,
                seeds=seeds, activation={"5": [2.0, 3.0]})
    exact = {("n", "class:0"): {"value": 3.02, "bound": 3.5, "optimal": True}}
    table = beyond.summarize(rows, "pooling", exact)
    share = next(r for r in table if r["method"] == "share s=0.2")
    assert share["mean"] == 2.5 and share["vs_plain"] == 0.5 and share["higher_share"] == 0.5
    assert share["gain_pct"] == pytest.approx(25.0)
    assert share["gap"] == pytest.approx(0.52) and share["within_1pct"] == 0.5 and share["proved"] == 2
    assert share["gap_upper_bound"] == pytest.approx(1.0)  # mean of 3.5 - 2 and 3.5 - 3
    assert share["rel_gap"] == pytest.approx((1.02 + 0.02) / 2 / 3.02)
    lines = beyond.findings([], table, [])
    expected = ("pooling, n, 5 steps, pooling proxy: best share s=0.2 2.5 vs plain 2 (+25.0%, higher on 50% of the "
                "images): helps on average, but on at most half of the images; optimality gap 17.2% vs 33.8% of the maximum.")
    assert lines == [expected]


@pytest.mark.skipif(not beyond.exact_available(), reason="proxygrad.exact is not available")
def test_run_beyond_end_to_end_with_exact_maximum_and_resume(tmp_path):
    config = BeyondConfig(networks=("vit-gelu",), variants=("floor",), slopes=(0.2,), steps=(2, 6), classes=(1,),
                          seeds=(0,), pool_networks=("poolcnn-b",), temperatures=(0.5,), shares=(0.2,),
                          exact_time_limit=60.0)
    payload = beyond.run_beyond(config, tmp_path, progress=False)
    exact_row = next(r for r in ResultRows(tmp_path / "cells.jsonl") if r["section"] == "exact")
    pool_rows = [r for r in payload["pooling"] if r["steps"] == 6]
    assert len(pool_rows) == len(beyond.pool_methods(config)) == 6
    if exact_row["optimal"]:
        for row in pool_rows:  # no image can beat the proved maximum; the gap is exact - reached
            assert row["mean"] <= exact_row["value"] + 1e-5
            assert row["gap"] == pytest.approx(exact_row["value"] - row["mean"])
    assert payload["max_score_difference_proxy_vs_original"] == 0.0
    assert {t["csv"] for t in payload["tables"]} == {"smooth.csv", "pooling.csv", "exact.csv"}
    for file in ("smooth.png", "smooth_gain.png", "pooling.png", "results.json"):
        assert (tmp_path / file).stat().st_size > 0
    assert payload["default_smooth"]["method"] == "floor s=0.2"
    lines = (tmp_path / "cells.jsonl").read_text().count("\n")
    again = beyond.run_beyond(config, tmp_path, progress=False)  # resumed: nothing recomputed
    assert (tmp_path / "cells.jsonl").read_text().count("\n") == lines
    assert again["smooth"] == payload["smooth"]


def test_cli(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["beyond", "--preset", "quick", "--networks", "resnet-gelu", "--variants", "leaky", "--steps", "2",
                 "--classes", "4", "--pool-networks", "", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "smooth, tiny:resnet-gelu, 2 steps: best leaky s=0.1" in printed and "vs plain" in printed
    payload = json.loads((out / "results.json").read_text())
    assert payload["command"] == "beyond" and (out / "report.html").is_file()
    assert main(["beyond", "--networks", "vit-relu", "--out", str(tmp_path / "x")]) == 2
    assert "unknown smooth network 'vit-relu'" in capsys.readouterr().err


def test_validate_rejects_bad_settings():
    for change, match in (({"variants": ("max",)}, "variants"), ({"slopes": (1.5,)}, "out of range"),
                          ({"temperatures": (0.0,)}, "temperature"), ({"classes": (12,)}, "0..9"),
                          ({"regularization": "heavy"}, "regularization")):
        with pytest.raises(ValueError, match=match):
            beyond.validate(BeyondConfig(**change))
    with pytest.raises(ValueError, match="valid: full, quick, paper"):
        beyond.preset("huge")


def test_model_section_on_a_small_resnet(tmp_path):
    """The paper's recipe section on any model with max pooling (here an untrained torchvision ResNet18)."""
    import torchvision

    from proxygrad.models import InputSpec, from_module

    torch.manual_seed(0)
    loaded = from_module(torchvision.models.resnet18(num_classes=3), InputSpec(3, (32, 32), (0.5,) * 3, (0.5,) * 3,
                                                                              ("a", "b", "c")), name="r18")
    config = BeyondConfig(seeds=(0,), model_steps=(2,))
    rows = ResultRows(tmp_path / "cells.jsonl")
    objectives = beyond.class_objectives(("b",), loaded.spec)
    beyond.run_cells(rows, "model", loaded, objectives, beyond.model_methods(config), config, (2,), "paper", lr=2.0)
    table = beyond.summarize(rows, "model")
    assert [r["method"] for r in table] == ["plain", "proxygrad s=0.075", "softmax t=0.5",
                                            "proxygrad s=0.075 + softmax t=0.5", "proxygrad s=0.075 + share s=0.075"]
    calls = {r["label"]: r["calls"] for r in rows}
    assert calls["softmax t=0.5"] == {"pooling": {"modules": 1, "functional_calls": 0}}
    assert calls["proxygrad s=0.075"]["rectifiers"]["modules"] > 0
    assert all(r["check"] == 0.0 for r in rows)
    assert isinstance(loaded.model.maxpool, nn.MaxPool2d) and type(loaded.model.maxpool) is nn.MaxPool2d
