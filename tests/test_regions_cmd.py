"""``proxygrad regions`` and proxygrad.experiments.regions: data sets, training, the run directory, resuming."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from proxygrad import cli
from proxygrad.analysis.regions import box_around, exact_regions
from proxygrad.experiments.regions import (Method, load_snapshot, make_dataset, mlp, parse_method, preset,
                                           train)

SMALL = ["--datasets", "moons", "--widths", "6", "--methods", "relu,leaky:0.01,proxygrad:0.2", "--epochs", "0,2",
         "--grid", "64", "--quiet"]


def test_datasets_follow_seed_003():
    points, labels, classes = make_dataset("random", seed=0)
    assert points.shape == (500, 2) and classes == 2 and np.abs(points).max() <= 1
    assert set(labels.tolist()) == {0, 1}
    points, labels, classes = make_dataset("moons", seed=0)
    assert points.shape == (1000, 2) and classes == 2 and np.bincount(labels).tolist() == [500, 500]
    points, labels, classes = make_dataset("quantiles", seed=0)
    assert points.shape == (1000, 2) and classes == 5 and np.bincount(labels).tolist() == [200] * 5
    assert np.array_equal(make_dataset("moons", seed=3)[0], make_dataset("moons", seed=3)[0])
    with pytest.raises(ValueError, match="random, moons, quantiles"):
        make_dataset("spirals")


def test_methods_and_networks():
    assert parse_method("relu") == Method("relu") and parse_method("leaky") == Method("leaky", 0.01)
    assert parse_method("proxygrad:0.2").label == "proxygrad 0.2"
    for bad in ("tanh", "relu:0.1", "leaky:0", "proxygrad:-1", "leaky:abc"):
        with pytest.raises(ValueError):
            parse_method(bad)
    model = mlp(16, 5, Method("leaky", 0.01))
    assert [type(m).__name__ for m in model] == ["Linear", "LeakyReLU"] * 3 + ["Linear"]
    assert model[-1].out_features == 5 and model[1].negative_slope == 0.01


def test_training_learns_moons_and_proxygrad_changes_only_the_backward():
    points, labels, classes = make_dataset("moons", seed=0)
    x, y = torch.from_numpy(points), torch.from_numpy(labels)
    trained = {}
    for method in (Method("relu"), Method("proxygrad", 0.2)):
        torch.manual_seed(0)
        model = mlp(16, classes, method)
        seen = list(train(model, x, y, method, (0, 3), seed=0))
        assert seen == [0, 3]
        trained[method.mode] = model
        accuracy = (model(x).argmax(1) == y).float().mean().item()
        assert accuracy > 0.85, (method, accuracy)
        assert all(type(m).__name__ != "ProxyGradReLU" for m in model)  # restored after training
    # same start and batches: they differ only because ProxyGrad's backward passes gradient below zero
    assert not torch.equal(trained["relu"][0].weight, trained["proxygrad"][0].weight)


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_regions_command_counts_draws_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["regions", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "grid sampling misses" in printed
    for name in ("regions.csv", "regions_vs_epoch.png", "dead_units.png", "sampling.png", "regions_moons_k6.png",
                 "results.json", "report.html"):
        assert (out / name).is_file(), name
    rows = _rows(out / "regions.csv")
    assert len(rows) == 3 * 2 * 3  # methods x epochs x layers
    for row in rows:
        assert int(row["sampled_regions"]) <= int(row["exact_regions"])
        assert 0 <= int(row["dead_in_box"]) <= int(row["dead_on_data"]) <= 6
    # relu and proxygrad start from the same weights; ProxyGrad's forward is ReLU's: same regions at epoch 0
    first = {m: [r["exact_regions"] for r in rows if r["method"] == m and r["epoch"] == "0"]
             for m in ("relu", "proxygrad:0.2")}
    assert first["relu"] == first["proxygrad:0.2"]
    # the table's counts are those of the saved snapshots
    config = preset("paper", datasets=("moons",), widths=(6,), methods=("relu", "leaky:0.01", "proxygrad:0.2"),
                    epochs=(0, 2), grid=64)
    points, _, _ = make_dataset("moons", 0)
    for row in rows:
        if row["layer"] == "3":
            cell = {"dataset": "moons", "width": 6, "method": row["method"], "seed": 0}
            model = load_snapshot(out, cell, int(row["epoch"]), config)
            assert exact_regions(model, box_around(points)).counts[-1] == int(row["exact_regions"])
    # a second run on the same directory trains nothing and gives the same table
    before = (out / "cells.jsonl").read_text()
    assert cli.main(["regions", *SMALL, "--no-pictures", "--out", str(out)]) == 0
    assert (out / "cells.jsonl").read_text() == before
    assert _rows(out / "regions.csv") == rows
    assert json.loads((out / "results.json").read_text())["settings"]["epochs"]["moons"] == [0, 2]
    # a lost checkpoint retrains its cell, reproducibly: the same numbers, no duplicate rows
    (out / "checkpoints" / "moons-k6-proxygrad0.2-seed0.pt").unlink()
    assert cli.main(["regions", *SMALL, "--no-pictures", "--out", str(out)]) == 0
    assert len((out / "cells.jsonl").read_text().splitlines()) == 4
    assert _rows(out / "regions.csv") == rows


@pytest.mark.parametrize("args, message", [
    (["--methods", "relu,gelu"], "unknown method 'gelu'"),
    (["--datasets", "spirals"], "unknown data set 'spirals'"),
    (["--epochs", "-1"], "epochs"),
    (["--preset", "huge"], "unknown regions preset"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    assert cli.main(["regions", "--quiet", "--out", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not Path(tmp_path / "run" / "regions.csv").exists()
