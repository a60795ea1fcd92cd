"""The run directory: PNGs that decode to the rendered pixels, grid, plot, results.json; atomic writes."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from proxygrad.am import RenderConfig, class_logit, render
from proxygrad.models.spec import InputSpec
from proxygrad.report import files
from proxygrad.report.visualization import write_visualization

SPEC = InputSpec(1, (8, 8), (0.5,), (0.5,), class_names=("zero", "one"))


def _results():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    objectives = [class_logit(0), class_logit(1)]
    return {m: render(model, SPEC, objectives, [0, 1], RenderConfig(method=m, steps=4, progress=False))
            for m in ("relu", "proxygrad")}


def test_run_directory_contents(tmp_path):
    results = _results()
    payload = write_visualization(tmp_path, results, SPEC, [0, 1], {"model": "tiny"}, seconds=1.0)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(payload))
    assert len(saved["images"]) == 4 and set(saved["methods"]) == {"relu", "proxygrad"}
    for record in saved["images"]:
        pixels = np.asarray(Image.open(tmp_path / record["file"]))
        result = results[record["method"]]
        index = [r["objective"] for r in result.records()].index(record["objective"])
        assert pixels.shape == (8, 8)
        assert np.array_equal(pixels, files.to_uint8(result.images[index]))
        assert record["target_name"] in ("zero", "one")
        assert record["activation"] == pytest.approx(float(result.activation[index]))
    for name in ("grid.png", "activation.png"):
        with Image.open(tmp_path / name) as image:
            assert image.size[0] > 100
    summary = saved["methods"]["relu"]
    assert summary["mean_activation"] == pytest.approx(results["relu"].activation.mean().item())
    assert saved["versions"]["torch"] == torch.__version__
    assert not list(tmp_path.rglob("*.tmp"))


def test_to_uint8_maps_the_domain_ends():
    image = torch.tensor([[[-1.0, 0.0, 1.0, 2.0]]])
    assert files.to_uint8(image).tolist() == [[0, 128, 255, 255]]
    with pytest.raises(ValueError, match="shape"):
        files.to_uint8(torch.zeros(2, 4, 4))


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(KeyboardInterrupt):
        files.write_json(target, {"new": 1})
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_written_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        path = files.write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
