"""`proxygrad compare`: method parsing, up-front errors, the run (tiny), summaries and verdicts."""
import csv
import json
import math
import subprocess
from dataclasses import replace

import numpy as np
import pytest
import scipy.stats
import torch
from PIL import Image

from proxygrad import cli
from proxygrad.experiments.compare import CompareConfig, Method, parse_method, prepare, preset, run_compare
from proxygrad.experiments.compare_summary import findings, proxygrad_lines, summary_rows
from proxygrad.metrics.real import load_folder_images
from proxygrad.models import load

TINY = dict(classes=("0", "1"), seeds=(0, 1), steps={"paper": 6, "lucent": 6, "maco": 4}, exact_classes=(0,),
            methods=("relu@paper", "proxygrad:0.1@paper", "guided@lucent", "softgate:0.5@maco"))


def test_parse_method_forms_and_defaults():
    assert parse_method("proxygrad:0.1@lucent") == Method("proxygrad", "lucent", 0.1)
    assert parse_method("proxygrad") == Method("proxygrad", "paper", 0.075)
    assert parse_method(" softgate@maco ") == Method("softgate", "maco", 0.5)
    assert parse_method("redirected-captum@paper").label == "redirected-captum @ paper"
    assert parse_method("softgate:2@paper").label == "softgate t=2 @ paper"
    assert not parse_method("guided@paper").ascent and parse_method("relu").ascent


@pytest.mark.parametrize("text, message", [("relux@paper", "unknown surrogate 'relux'.*redirected"),
                                           ("relu@lucid", "unknown recipe 'lucid'"),
                                           ("relu:0.1@paper", "takes no parameter"),
                                           ("softgate:0@paper", "temperature .* must be a finite number > 0"),
                                           ("softgate:-1@paper", "must be a finite number > 0"),
                                           ("proxygrad:nan@paper", "must be a finite number >= 0"),
                                           ("proxygrad:x@paper", "not a number")])
def test_parse_method_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_method(text)


def test_method_configs_carry_slope_temperature_and_recipe():
    spec = load("digits").spec
    config = parse_method("softgate:0.3@lucent").render_config(spec, 7)
    assert (config.method, config.temperature, config.steps, config.step_rule) == ("softgate", 0.3, 7, "adam")
    assert config.parametrization.name == "fourier"
    config = parse_method("proxygrad:0.2@maco").render_config(spec, None)
    assert (config.slope, config.steps, config.step_rule, config.parametrization.name) == (0.2, 1000, "nadam", "maco")


def test_presets():
    quick, full = preset("quick"), preset("full")
    assert len(quick.parsed()) == 18 and len(full.parsed()) == 33 and full.steps == {}
    assert preset("quick", seeds=(5,), model=None).seeds == (5,)
    with pytest.raises(ValueError, match="unknown compare preset 'fast'"):
        preset("fast")
    with pytest.raises(ValueError, match="methods repeat"):
        CompareConfig(methods=("relu@paper", "relu")).parsed()


def test_bad_input_fails_before_any_work(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"magnitude": torch.ones(2, 2)}, bad)
    with pytest.raises(ValueError, match="bad.pt"):
        prepare(CompareConfig(**{**TINY, "spectrum": str(bad)}))
    with pytest.raises(ValueError, match="unknown exact network"):
        prepare(CompareConfig(**{**TINY, "exact_network": "cnn-huge"}))
    with pytest.raises(ValueError, match="does not exist"):
        prepare(CompareConfig(**{**TINY, "real": str(tmp_path / "nowhere")}))
    out = tmp_path / "run"
    assert cli.main(["compare", "--quiet", "--methods", "relu@paper,foo@paper", "--out", str(out)]) == 2
    assert cli.main(["compare", "--quiet", "--methods", "softgate:0@paper", "--out", str(out)]) == 2
    assert cli.main(["compare", "--quiet", "--spectrum", str(bad), "--out", str(out)]) == 2
    assert not out.exists()


def test_real_images_from_a_class_folder(tmp_path):
    spec = load("digits").spec
    for name, value in (("0", 0), ("1", 255)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12), value, np.uint8)).save(tmp_path / name / f"{i}.png")
    images, labels = load_folder_images(tmp_path, spec, [1, 0], per_class=2)
    assert images.shape == (4, 1, 32, 32) and labels.tolist() == [1, 1, 0, 0]
    assert images[0].min() == 1 and images[2].max() == -1
    with pytest.raises(ValueError, match="no subfolder for classes \\[7\\]"):
        load_folder_images(tmp_path, spec, [7])
    (tmp_path / "1" / "junk.png").write_text("not an image")
    with pytest.raises(ValueError, match="junk.png"):
        load_folder_images(tmp_path, spec, [1], per_class=5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(run directory, payload) of one tiny comparison shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("compare")
    return run_dir, run_compare(CompareConfig(**TINY), run_dir, progress=False)


def test_tiny_run_scores_every_method_and_resumes(tiny_run):
    tmp_path, payload = tiny_run
    with open(tmp_path / "summary.csv", newline="") as handle:
        table = {row["method"]: row for row in csv.DictReader(handle)}
    assert json.loads((tmp_path / "results.json").read_text())["findings"] == payload["findings"]
    assert set(table) == {"relu @ paper", "proxygrad s=0.1 @ paper", "guided @ lucent", "softgate t=0.5 @ maco"}
    assert table["guided @ lucent"]["ascent"] == "False"
    for row in table.values():
        assert 0 <= float(row["target_share"]) <= 1 and 0 <= float(row["transferability"]) <= 1
        assert -1 <= float(row["plausibility"]) <= 1 and float(row["fid"]) >= 0
        assert -1 <= float(row["seed_consistency"]) <= 1 and math.isfinite(float(row["optimality_gap"]))
        assert float(row["activation_low"]) <= float(row["activation"]) <= float(row["activation_high"])
    assert any("vs relu @ paper" in line for line in payload["findings"])
    assert any("not an ascent direction" in line for line in payload["findings"])
    assert (tmp_path / "metrics.png").is_file() and (tmp_path / "gallery.png").is_file()
    assert len(payload["images"]) == 4 * 2  # first seed: 4 methods x 2 classes
    lines = (tmp_path / "cells.jsonl").read_text().count("\n")
    again = run_compare(CompareConfig(**TINY), tmp_path, progress=False)
    assert (tmp_path / "cells.jsonl").read_text().count("\n") == lines  # nothing rendered again
    assert again["findings"] == payload["findings"]


def test_the_report_page_shows_every_image(tiny_run, chromium):
    from tests.conftest import CHROMIUM_FLAGS

    run_dir, _ = tiny_run
    assert cli.main(["report", str(run_dir)]) == 0
    page = run_dir / "report.html"
    text = page.read_text()
    count = text.count("<img")
    assert count >= 8 + 2 and "Methods x metrics" in text and "not an ascent direction" in text
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={run_dir / 'profile'}",
                          "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert f'data-images-ok="{count}/{count}"' in dom


def _row(method, surrogate, values, ascent=True):
    cells = [{"class": c, "seed": s, "activation": v, "on_target": 1.0, "transfer": None, "plausibility": None}
             for (c, s), v in values.items()]
    return {"method": method, "surrogate": surrogate, "recipe": "paper", "parameter": None, "ascent": ascent,
            "cells": cells, "seconds": 1.0, "fid": None, "seed_consistency": None, "gap_cells": None}


def test_summary_interval_is_the_t_interval_over_seeds():
    values = {(c, s): float(c + 2 * s + (s == 2)) for c in range(3) for s in range(4)}
    (row,) = summary_rows([_row("relu @ paper", "relu", values)], (0, 1, 2, 3))
    per_seed = np.array([np.mean([values[(c, s)] for c in range(3)]) for s in range(4)])
    half = scipy.stats.t.ppf(0.975, 3) * per_seed.std(ddof=1) / 2
    assert row["activation"] == pytest.approx(per_seed.mean())
    assert (row["activation_low"], row["activation_high"]) == pytest.approx((per_seed.mean() - half,
                                                                             per_seed.mean() + half))


def test_verdicts_say_when_proxygrad_helps_and_when_it_does_not():
    cells = [(c, s) for c in range(4) for s in range(3)]
    relu = _row("relu @ paper", "relu", {k: 1.0 + 0.01 * i for i, k in enumerate(cells)})
    better = _row("proxygrad s=0.1 @ paper", "proxygrad", {k: 2.0 + 0.02 * i for i, k in enumerate(cells)})
    measured = [relu, better]
    lines = proxygrad_lines(summary_rows(measured, (0, 1, 2)), {r["method"]: r for r in measured})
    assert "helps on activation" in lines[0] and lines[0].endswith("ProxyGrad helps here.")
    same = _row("proxygrad s=0.1 @ paper", "proxygrad", {k: 1.0 + 0.01 * i + (0.001 if i % 2 else -0.001)
                                                         for i, k in enumerate(cells)})
    measured = [relu, same]
    table = summary_rows(measured, (0, 1, 2))
    lines = proxygrad_lines(table, {r["method"]: r for r in measured})
    assert "no significant difference on activation" in lines[0] and "ProxyGrad does not help here" in lines[0]
    text = findings(measured, table)
    assert text[0].startswith("activation (original network): best is") and "p = " in text[0]
    assert any("no real images" in line for line in text)


def test_identical_methods_are_named():
    from proxygrad.experiments.compare_summary import identical_lines
    values = {(0, 0): 1.0, (1, 0): 2.0}
    rows = [_row("relu @ paper", "relu", values), _row("redirected @ paper", "redirected", values),
            _row("proxygrad s=0.1 @ paper", "proxygrad", {(0, 0): 1.5, (1, 0): 2.0})]
    assert identical_lines(rows) == ["redirected @ paper gave exactly the same results as relu @ paper: its "
                                     "backward rule never differed from that method's on these images."]


def test_a_second_network_that_does_not_match_is_refused_up_front():
    with pytest.raises(ValueError, match="the second network .* choose a matching one with --second"):
        prepare(CompareConfig(**{**TINY, "model": "resnet18", "classes": None}))


def test_without_a_second_network_transferability_is_left_out(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["compare", "--quiet", "--methods", "relu@paper", "--classes", "3", "--seeds", "0,1",
                     "--steps", "paper:3", "--second", "none", "--exact-network", "none", "--out", str(out)]) == 0
    with open(out / "summary.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["transferability"] == "" and row["optimality_gap"] == "" and row["plausibility"] != ""


def test_a_model_without_rectifiers_is_refused_up_front(tmp_path, capsys):
    import torch.nn as nn

    from proxygrad.models.spec import InputSpec

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    path = tmp_path / "gelu.pt"
    torch.save({"model": model, "spec": InputSpec(1, (32, 32), (0.5,), (0.5,),
                                                  class_names=tuple(map(str, range(10)))).to_dict()}, path)
    out = tmp_path / "run"
    assert cli.main(["compare", "--quiet", "--model", str(path), "--methods", "relu@paper,proxygrad@paper",
                     "--out", str(out)]) == 2
    assert not out.exists() and "nothing for mode 'proxygrad' to change" in capsys.readouterr().err


def test_proxygrad_methods_can_proxy_smooth_activations(tmp_path):
    import torch.nn as nn

    from proxygrad.models.spec import InputSpec

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    path = tmp_path / "gelu.pt"
    torch.save({"model": model, "spec": InputSpec(1, (32, 32), (0.5,), (0.5,),
                                                  class_names=tuple(map(str, range(10)))).to_dict()}, path)
    config = CompareConfig(model=str(path), second="", classes=("1",), seeds=(0, 1), steps={"paper": 3},
                           methods=("relu@paper", "proxygrad@paper"), kinds="smooth", exact_network=None)
    assert [m.label for m in config.parsed()] == ["relu @ paper", "proxygrad s=0.075 [smooth] @ paper"]
    payload = run_compare(config, tmp_path / "run", progress=False)
    assert any("proxygrad s=0.075 [smooth] @ paper vs relu @ paper" in line for line in payload["findings"])
    with pytest.raises(ValueError, match="kinds must be"):
        CompareConfig(kinds="gelus").parsed()
    with pytest.raises(ValueError, match="nothing for mode 'redirected' to change"):
        prepare(replace(config, methods=("redirected@paper",)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compare_runs_on_cuda(tmp_path):
    payload = run_compare(CompareConfig(**{**TINY, "device": "cuda"}), tmp_path, progress=False)
    assert payload["settings"]["device"].startswith("cuda") and len(payload["images"]) == 8


def _column(run_dir, name: str) -> dict:
    with open(run_dir / "summary.csv", newline="") as handle:
        return {row["method"]: row[name] for row in csv.DictReader(handle)}


def test_optimality_gap_on_the_compared_model_itself_equals_the_gap_networks(tmp_path):
    """The same small network, compared as a model file with --exact-network model, and as gap's cnn-relu:
    the two routes (measured activations vs rendering on the gap network) give the same gaps."""
    from proxygrad.experiments.gap import train_network
    from proxygrad.models.spec import InputSpec

    network, _ = train_network("cnn-relu")
    path = tmp_path / "cnn.pt"
    torch.save({"model": network, "spec": InputSpec(1, (8, 8), (0.5,), (0.5,),
                                                    class_names=tuple(map(str, range(10)))).to_dict()}, path)
    common = dict(model=str(path), second="", classes=("0", "3"), seeds=(0, 1), steps={"paper": 5},
                  methods=("relu@paper", "proxygrad@paper"), exact_classes=(0, 3))
    itself = run_compare(CompareConfig(exact_network="model", **common), tmp_path / "itself", progress=False)
    network_route = run_compare(CompareConfig(exact_network="cnn-relu", **common), tmp_path / "gap", progress=False)
    gaps = [_column(tmp_path / d, "optimality_gap") for d in ("itself", "gap")]
    assert gaps[0] == gaps[1] and all(float(v) >= -1e-6 for v in gaps[0].values())
    where = "The optimality gap is measured on proxygrad gap's cnn-relu network"
    assert not any(where in line for line in itself["findings"])
    assert itself["findings"] == [line for line in network_route["findings"] if where not in line]
    with pytest.raises(ValueError, match="exact_time_limit must be"):
        prepare(CompareConfig(exact_time_limit=0, **common))
    with pytest.raises(ValueError, match="is not supported"):  # a GELU network cannot go into the MILP
        gelu = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.GELU(), torch.nn.Flatten(),
                                   torch.nn.Linear(72, 10))
        torch.save({"model": gelu, "spec": InputSpec(1, (8, 8), (0.5,), (0.5,)).to_dict()}, tmp_path / "g.pt")
        prepare(CompareConfig(exact_network="model", **{**common, "model": str(tmp_path / "g.pt")}))
