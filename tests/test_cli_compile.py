"""`--compile [MODE]` for `proxygrad visualize` and `proxygrad sweep`, and `--transparency` for visualize: settings
recorded, compiled images equal eager ones to rounding, bad modes rejected up front, old sweep keys kept, the
transparency maps and RGBA PNGs."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from proxygrad import cli
from proxygrad.experiments.sweep import SweepConfig, cell
from proxygrad.report import visualization
from proxygrad.report.rows import cell_key

TINY = ["-o", "3", "--steps", "3", "--methods", "proxygrad"]


def _need_compiler():
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as error:  # no C++ compiler: inductor cannot build CPU kernels here
        pytest.skip(f"torch.compile on the CPU needs a C++ compiler: {error}")


def _visualize(out, *extra):
    return cli.main(["visualize", "--quiet", "--out", str(out), *extra])


def _capture(monkeypatch) -> list:
    """Wrap write_visualization so that a test sees the RenderResults the command wrote."""
    seen, write = [], visualization.write_visualization

    def wrapper(run_dir, results, *args, **kwargs):
        seen.append(results)
        return write(run_dir, results, *args, **kwargs)

    monkeypatch.setattr(visualization, "write_visualization", wrapper)
    return seen


def _pixels(path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture).copy()


# ---- visualize --compile ---------------------------------------------------------------------------------------
def test_visualize_compile_records_the_mode_and_matches_eager(tmp_path, monkeypatch):
    _need_compiler()
    seen = _capture(monkeypatch)
    from torch._dynamo.utils import counters

    assert _visualize(tmp_path / "eager", *TINY) == 0
    counters.clear()
    assert _visualize(tmp_path / "compiled", *TINY, "--compile") == 0  # the file's one compiled run
    assert counters["stats"]["unique_graphs"] >= 1  # compiled indeed, not silently eager
    eager, compiled = (next(iter(results.values())) for results in seen)
    assert compiled.config.compile is True and compiled.config.compile_mode == "default"
    assert eager.config.compile is False
    assert torch.allclose(compiled.images, eager.images, atol=1e-4)
    assert torch.allclose(compiled.activation, eager.activation, rtol=1e-4, atol=1e-4)
    settings = json.loads((tmp_path / "compiled" / "results.json").read_text())["settings"]
    assert settings["compile"] is True and settings["transparency"] is False
    assert json.loads((tmp_path / "eager" / "results.json").read_text())["settings"]["compile"] is False


def test_visualize_compile_mode_reaches_render(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **options: calls.append(options) or fn)  # no real compile
    assert _visualize(tmp_path / "run", *TINY, "--compile", "reduce-overhead") == 0
    assert calls == [{"dynamic": False, "mode": "reduce-overhead"}]
    settings = json.loads((tmp_path / "run" / "results.json").read_text())["settings"]
    assert settings["compile"] == "reduce-overhead"


@pytest.mark.parametrize("command", ["visualize", "sweep"])
def test_unknown_compile_mode_exits_2_before_loading_anything(tmp_path, capsys, monkeypatch, command):
    import proxygrad.models

    monkeypatch.setattr(proxygrad.models, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    out = tmp_path / "run"
    assert cli.main([command, "--quiet", "--out", str(out), "--compile", "fastest"]) == 2
    error = capsys.readouterr().err
    assert "--compile" in error and "'fastest'" in error and "reduce-overhead" in error
    assert not out.exists()


# ---- sweep --compile -------------------------------------------------------------------------------------------
SWEEP = ["--classes", "1", "--seeds", "0", "--steps", "3", "--slopes", "0,0.2", "--regularizations", "none",
         "--methods", "relu,proxygrad", "--gallery-classes", ""]


def _keys(out) -> list[str]:
    return [json.loads(line)["key"] for line in (out / "cells.jsonl").read_text().splitlines()]


def test_cell_keys_gain_compile_only_when_compiling():
    base = {"regularization": "none", "steps": 3, "method": "proxygrad", "slope": 0.2}
    assert cell(SweepConfig(), "proxygrad", 0.2, 3, "none") == base
    assert cell(SweepConfig(compile=True), "proxygrad", 0.2, 3, "none") == {**base, "compile": "default"}
    assert cell(SweepConfig(compile="max-autotune"), "proxygrad", 0.2, 3, "none")["compile"] == "max-autotune"


def test_sweep_compile_runs_cells_apart_and_keeps_old_keys(tmp_path, monkeypatch):
    out = tmp_path / "run"
    command = ["sweep", "--quiet", "--out", str(out), *SWEEP]
    assert cli.main(command) == 0
    old = [cell_key({"regularization": "none", "steps": 3, "method": m, "slope": s})
           for m, s in (("relu", 0.0), ("proxygrad", 0.2))]
    assert _keys(out) == old  # the keys of run directories made before --compile existed
    before = (out / "cells.jsonl").read_text()
    calls, resets = [], []
    monkeypatch.setattr(torch, "compile", lambda fn, **options: calls.append(options) or fn)  # no real compile
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    assert cli.main([*command, "--compile"]) == 0
    assert calls == [{"dynamic": False, "mode": "default"}] * 2  # one per new cell
    assert len(resets) == 2  # a fresh dynamo cache per cell: the recompile limit never sends cells to eager
    keys = _keys(out)
    assert keys[:2] == old and (out / "cells.jsonl").read_text().startswith(before)  # old rows untouched
    assert [json.loads(k)["compile"] for k in keys[2:]] == ["default", "default"]
    assert json.loads((out / "results.json").read_text())["settings"]["compile"] is True
    assert cli.main(command) == 0 and len(_keys(out)) == 4  # without --compile: the old cells, nothing rerun


# ---- visualize --transparency ----------------------------------------------------------------------------------
def test_transparency_writes_maps_and_rgba_images(tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    assert _visualize(tmp_path / "plain", *TINY, "--methods", "relu,proxygrad", "--seeds", "0,1") == 0
    assert _visualize(tmp_path / "maps", *TINY, "--methods", "relu,proxygrad", "--seeds", "0,1",
                      "--transparency") == 0
    maps = {label: result.transparency for label, result in seen[1].items()}
    assert all(m.shape == (2, 1, 32, 32) and (m >= 0).all() and m.sum() > 0 for m in maps.values())
    records = json.loads((tmp_path / "maps" / "results.json").read_text())["images"]
    assert len(records) == 4 and json.loads((tmp_path / "maps" / "results.json").read_text())["settings"][
        "transparency"] is True
    for record in records:
        image_file = tmp_path / "maps" / record["file"]
        assert record["transparency"] == record["file"].replace(".png", "_transparency.png")
        assert record["alpha"] == record["file"].replace(".png", "_alpha.png")
        # the image itself is bitwise the file written without the flag
        assert image_file.read_bytes() == (tmp_path / "plain" / record["file"]).read_bytes()
        gray, rgba = _pixels(tmp_path / "maps" / record["transparency"]), _pixels(tmp_path / "maps" / record["alpha"])
        assert gray.shape == (32, 32) and rgba.shape == (32, 32, 4)
        # the rendered map, summed over channels and divided by its max by hand
        total = maps[record["method"]][record["seed"]].sum(0).numpy()
        expected = total / total.max()
        assert np.abs(rgba[..., 3] / 255.0 - expected).max() <= 1 / 255 + 1e-6
        assert rgba[..., 3].max() == 255 and np.array_equal(rgba[..., 3], gray)
        for channel in range(3):  # the gray digit repeated into RGB
            assert np.array_equal(rgba[..., channel], _pixels(image_file))
    plain = json.loads((tmp_path / "plain" / "results.json").read_text())
    assert all("transparency" not in r and "alpha" not in r for r in plain["images"])
    names = {run: sorted(p.name for p in (tmp_path / run / "images").rglob("*.png")) for run in ("plain", "maps")}
    assert names["plain"] == [n for n in names["maps"] if not n.endswith(("_transparency.png", "_alpha.png"))]
    assert len(names["maps"]) == 3 * len(names["plain"]) == 12


def test_alpha_png_of_an_rgb_image_and_an_all_zero_map(tmp_path):
    image = torch.linspace(-1, 1, 3 * 4 * 5).reshape(3, 4, 5)
    alpha = torch.zeros(1, 4, 5)
    alpha[0, 1, 2] = 1.0
    alpha[0, 3, 4] = 0.5
    visualization.write_alpha_png(tmp_path / "a.png", image, alpha)
    rgba = _pixels(tmp_path / "a.png")
    assert rgba.shape == (4, 5, 4)
    assert np.array_equal(rgba[..., :3], ((image.permute(1, 2, 0) + 1) * 127.5).round().numpy().astype(np.uint8))
    assert rgba[1, 2, 3] == 255 and rgba[3, 4, 3] == 128 and rgba[..., 3].sum() == 255 + 128  # round(127.5) = 128
    assert torch.equal(visualization.normalized_transparency(torch.zeros(3, 4, 5), image), torch.zeros(1, 4, 5))
    two = torch.stack([torch.full((4, 5), 1.0), torch.full((4, 5), 3.0)])
    two[1, 0, 0] = 7.0
    normalized = visualization.normalized_transparency(two, image[:2])
    assert normalized[0, 0, 0] == 1.0 and torch.allclose(normalized[0, 1:], torch.full((3, 5), 0.5))
