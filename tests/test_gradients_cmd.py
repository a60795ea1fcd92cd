"""``proxygrad gradients`` and proxygrad.experiments.gradients: run directory, numbers, resuming, ImageFolder."""
import csv
import json
import statistics

import numpy as np
import pytest
from PIL import Image

from proxygrad import cli
from proxygrad.experiments.gradients import GradientConfig, InputBatches, methods, table5_text

SMALL = ["--preset", "quick", "--repeats", "2", "--slopes", "0.3", "--size", "32", "--batch-size", "6",
         "--positions", "layer1.0.conv1,layer2.0.conv1", "--quiet"]


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_gradients_command_writes_table5_figures_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["gradients", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ProxyGrad (BN)" in printed and "with BatchNorm" in printed
    for name in ("table5.csv", "bn_std.csv", "gradients.png", "figure4.png", "results.json", "report.html"):
        assert (out / name).is_file(), name
    payload = json.loads((out / "results.json").read_text())
    assert payload["settings"]["data_name"] == "bundled digits" and payload["settings"]["num_classes"] == 10
    # 2 architectures x 2 positions x (relu, leaky 0.3, proxygrad 0.3)
    table = _rows(out / "table5.csv")
    assert len(table) == 12 and {r["n"] for r in table} == {"2"}
    # the table's means are the means of the per-network measurements in cells.jsonl
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    assert len(cells) == 4
    for row in table:
        values = [c["probes"][f"{row['method']} {float(row['slope']):g}"]["gradients"][row["position"]]
                  for c in cells if c["cell"]["batchnorm"] == (row["batchnorm"] == "True")]
        assert float(row["mean"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
    # BatchNorm statistics: 20 layers x (relu, leaky 0.3), only for the network with BatchNorm
    assert len(_rows(out / "bn_std.csv")) == 40
    # the paper's direction (see tests/test_analysis_gradients.py) shows in the findings
    assert any("with BatchNorm, layer1.0.conv1: the proxygrad gradient grows" in f for f in payload["findings"])
    assert any("with BatchNorm, layer1.0.conv1: the leaky gradient shrinks" in f for f in payload["findings"])
    # a second run on the same directory measures nothing new and gives the same table
    before = (out / "cells.jsonl").read_text()
    assert cli.main(["gradients", *SMALL, "--out", str(out)]) == 0
    assert (out / "cells.jsonl").read_text() == before
    assert _rows(out / "table5.csv") == table


def test_gradients_from_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs", "owls"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    batches = InputBatches(str(tmp_path / "data"), 16)
    assert batches.num_classes == 3 and len(batches) == 9
    images, labels = batches.batch(5, seed=1)
    assert images.shape == (5, 3, 16, 16) and images.min() >= -1 and images.max() <= 1
    assert set(labels.tolist()) <= {0, 1, 2}
    assert images.equal(batches.batch(5, seed=1)[0]) and not images.equal(batches.batch(5, seed=2)[0])
    out = tmp_path / "run"
    assert cli.main(["gradients", *SMALL, "--architectures", "nobn", "--data", str(tmp_path / "data"),
                     "--out", str(out)]) == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["settings"]["num_classes"] == 3 and payload["bn_input_std"] == []
    assert not (out / "figure4.png").exists()
    with pytest.raises(ValueError, match="larger than the data"):
        batches.batch(10, seed=0)


def test_digit_batches_are_gray_repeated_to_three_channels():
    batches = InputBatches(None, 32)
    images, labels = batches.batch(4, seed=0)
    assert images.shape == (4, 3, 32, 32) and labels.shape == (4,)
    assert images[:, 0].equal(images[:, 1]) and images[:, 1].equal(images[:, 2])
    assert len(batches) == 1797 and batches.num_classes == 10


def test_table5_layout():
    grads = [{"batchnorm": bn, "position": "p", "method": m, "slope": s, "mean": 1.0 + s + bn, "std": 0.1, "n": 2}
             for bn in (True, False) for m, s in methods((0.1,))]
    lines = table5_text(grads, "p").splitlines()
    assert lines[0].split() == ["s", "Leaky", "ReLU", "(BN)", "ProxyGrad", "(BN)", "Leaky", "ReLU", "(no", "BN)",
                                "ProxyGrad", "(no", "BN)"]
    assert lines[1].startswith("0 (ReLU)") and lines[2].split()[0] == "0.1"
    assert lines[2].split()[1] == "2.1"  # leaky, with BN: 1 + 0.1 + 1


@pytest.mark.parametrize("args, message", [
    (["--slopes", "0"], "slopes must be in (0, 1]"),
    (["--slopes", "1.5"], "slopes must be in (0, 1]"),
    (["--batch-size", "1"], "at least 2"),
    (["--data", "/no/such/folder"], "ImageFolder"),
    (["--preset", "huge"], "unknown gradients preset"),
    (["--positions", "layer9.conv1"], "valid positions include"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    assert cli.main(["gradients", "--preset", "quick", "--repeats", "1", "--size", "16", "--quiet",
                     "--out", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err


def test_config_defaults_follow_the_paper():
    config = GradientConfig()
    assert config.repeats == 50 and "layer1.0.conv1" in config.positions and config.batchnorm == (True, False)
