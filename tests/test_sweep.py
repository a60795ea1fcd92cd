"""proxygrad sweep: cells, numbers equal to direct renders, resume after a kill, bad input, the HTML report."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from proxygrad import cli
from proxygrad.am import RenderConfig, render
from proxygrad.am.api import resolve_objectives
from proxygrad.am.presets import preset as regularization
from proxygrad.experiments.sweep import SweepConfig, cells, preset, run_sweep, validate
from proxygrad.models import load

TINY = dict(classes=("1", "7"), seeds=(0,), slopes=(0.0, 0.2), steps=(3,), regularizations=("none",),
            gallery_classes=("7",), gallery_slopes=(0.2,), gallery_steps=3)


def test_cells_cover_relu_once_and_every_nonzero_slope():
    config = SweepConfig(slopes=(0.0, 0.1, 0.3), steps=(10, 500), regularizations=("none", "paper"))
    grid = cells(config)
    assert len(grid) == 2 * 2 * (1 + 2 * 2)
    assert sum(c["method"] == "relu" for c in grid) == 4
    assert all(c["slope"] > 0 for c in grid if c["method"] != "relu")


def test_sweep_numbers_are_the_original_networks_on_direct_renders(tmp_path):
    payload = run_sweep(preset("quick", **TINY), tmp_path, progress=False)
    loaded = load()
    objectives = resolve_objectives(["1", "7"], loaded.spec)
    direct = render(loaded.model, loaded.spec, objectives, [0, 0],
                    RenderConfig(method="proxygrad", slope=0.2, steps=3, regularization=regularization("none"),
                                 progress=False))
    row = next(r for r in payload["summary"] if r["method"] == "proxygrad")
    assert row["mean"] == pytest.approx(direct.activation.mean().item(), rel=1e-6)
    assert row["target_share"] == pytest.approx(sum(int(p) == t for p, t in zip(direct.predicted, [1, 7])) / 2)
    assert {(r["method"], r["slope"]) for r in payload["summary"]} == {("relu", 0.0), ("leaky", 0.2),
                                                                       ("proxygrad", 0.2)}
    for name in ("figure2.png", "gallery_s0.2.png", "summary.csv", "results.json", "cells.jsonl"):
        assert (tmp_path / name).is_file()
    assert len(payload["gallery"]) == 3 and all((tmp_path / g["file"]).is_file() for g in payload["gallery"])
    assert any("proxygrad" in line for line in payload["findings"])


def _sweep_command(out, *extra):
    return [sys.executable, "-m", "proxygrad.cli", "sweep", "--quiet", "--out", str(out), "--classes", "1,7",
            "--seeds", "0", "--steps", "40", "--regularizations", "none", "--gallery-classes", "7",
            "--gallery-steps", "3", "--gallery-slopes", "0.2", *extra]


def test_killed_sweep_resumes_without_losing_or_redoing_cells(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    slopes = ["--slopes", "0,0.05,0.1,0.2,0.3"]
    process = subprocess.Popen(_sweep_command(out, *slopes), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cells_file = out / "cells.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not cells_file.exists() or len(cells_file.read_text().splitlines()) < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = [json.loads(line) for line in cells_file.read_text().splitlines() if line.strip().endswith("}")]
    assert 2 <= len(finished) < 1 + 2 * 4 + 3, "the kill should land mid-sweep"
    subprocess.run(_sweep_command(out, *slopes), env=env, check=True, capture_output=True)
    rows = [json.loads(line) for line in cells_file.read_text().splitlines()]
    assert len(rows) == 1 + 2 * 4 + 3 and len({r["key"] for r in rows}) == len(rows)
    for before in finished:  # kept as they were, not recomputed
        assert next(r for r in rows if r["key"] == before["key"]) == before
    fresh = tmp_path / "fresh"
    subprocess.run(_sweep_command(fresh, *slopes), env=env, check=True, capture_output=True)
    resumed = {r["key"]: r["activation"] for r in rows}
    for line in (fresh / "cells.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert resumed[row["key"]] == row["activation"]


@pytest.mark.parametrize("changes,message", [({"classes": ()}, "empty"), ({"slopes": (0.1, 1.5)}, "out of range"),
                                             ({"slopes": (-0.1,)}, "out of range"),
                                             ({"methods": ("relu", "gelu")}, "methods"),
                                             ({"regularizations": ("heavy",)}, "regularization")])
def test_bad_sweeps_fail_before_any_work(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        validate(preset("quick", **changes))
    with pytest.raises(ValueError, match=message):
        run_sweep(preset("quick", **changes), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_unknown_preset_and_class_are_clear_errors(tmp_path, capsys):
    assert cli.main(["sweep", "--preset", "huge", "--out", str(tmp_path / "a")]) == 2
    assert "quick, paper" in capsys.readouterr().err
    assert cli.main(["sweep", "--classes", "eleven", "--out", str(tmp_path / "b")]) == 2
    assert "unknown class" in capsys.readouterr().err
    assert not (tmp_path / "b" / "cells.jsonl").exists()


def test_html_report_loads_decodes_every_image_and_screenshots(tmp_path, chromium):
    from tests.conftest import CHROMIUM_FLAGS

    run_sweep(preset("quick", **TINY), tmp_path, progress=False)
    assert cli.main(["report", str(tmp_path)]) == 0
    page = tmp_path / "report.html"
    text = page.read_text()
    assert "src='data:image/png;base64," in text and "file:" not in text  # self-contained
    count = text.count("<img")
    profile = tmp_path / "profile"
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert f'data-images-ok="{count}/{count}"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}2", "--window-size=1200,1600",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 1600)
        assert len(set(image.convert("L").getdata())) > 10  # not a blank page
