"""proxygrad.experiments.table: Table 4's cells, statistics, layout, findings, the sweep and the command."""
from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
from scipy.stats import ttest_ind

from proxygrad import cli
from proxygrad.experiments import table as T
from proxygrad.train import make_config

from .test_train_data import make_imagefolder


def fake_results(out, config, accuracies):
    """results.json files for cells, as finished training runs write them: {(arch, mode, slope, seed): acc %}."""
    for cell in config.cells():
        key = (cell.arch, cell.mode, cell.slope, cell.seed)
        if key in accuracies:
            where = T.cell_dir(out, cell)
            where.mkdir(parents=True)
            (where / "results.json").write_text(json.dumps({"test_accuracy": accuracies[key] / 100,
                                                            "seconds": 1.0, "settings": cell.to_dict()}))


def test_transcribed_table4_agrees_with_the_papers_text():
    # "ProxyGrad achieves the highest test accuracies for the Caltech101 dataset with both architectures. On the
    # other two datasets, the Leaky ReLU is the best performer."
    for (dataset, _), cells in T.PAPER_TABLE4.items():
        assert set(cells) == set(T.PAPER_SETTINGS)
        best = max(cells.values(), key=lambda v: v[0])[0]
        winners = {mode for (mode, _), (mean, _) in cells.items() if mean == best}
        assert winners == ({"proxygrad"} if dataset == "caltech101" else {"leaky"})
    assert T.PAPER_TABLE4[("caltech101", "resnet18")][("proxygrad", 0.2)] == (62.9, 0.8)
    assert T.PAPER_TABLE4[("flowers102", "pfnet18")][("relu", 0.0)] == (80.8, 0.2)


def test_parse_settings():
    assert T.parse_settings("paper") == T.PAPER_SETTINGS
    assert T.parse_settings("relu, leaky:0.1,proxygrad:0.2") == (("relu", 0.0), ("leaky", 0.1), ("proxygrad", 0.2))
    for bad in ("leaky", "proxygrad:x", "gelu:0.1"):
        with pytest.raises(ValueError, match="relu, leaky:SLOPE or proxygrad:SLOPE"):
            T.parse_settings(bad)


def test_statistics_layout_and_findings_from_finished_cells(tmp_path):
    base = make_config(dataset="caltech101", root=str(tmp_path))
    config = T.TableConfig(base, archs=("resnet18",), settings=(("proxygrad", 0.2), ("leaky", 0.2), ("relu", 0.0)),
                           seeds=(0, 1, 2))
    proxy, leaky, relu = [63.0, 62.1, 63.9], [62.0, 61.5, 63.1], [55.0, 56.2]
    accs = {("resnet18", "proxygrad", 0.2, s): a for s, a in enumerate(proxy)}
    accs |= {("resnet18", "leaky", 0.2, s): a for s, a in enumerate(leaky)}
    accs |= {("resnet18", "relu", 0.0, s): a for s, a in enumerate(relu)}  # seed 2 of relu unfinished
    fake_results(tmp_path, config, accs)
    results = T.write_table(config, tmp_path)
    rows = {(r["mode"], r["slope"]): r for r in results["rows"]}
    assert rows[("proxygrad", 0.2)]["mean"] == pytest.approx(np.mean(proxy))
    assert rows[("proxygrad", 0.2)]["std"] == pytest.approx(np.std(proxy, ddof=1))
    assert rows[("relu", 0.0)]["n"] == 2 and results["missing"] == [{"arch": "resnet18", "mode": "relu",
                                                                      "slope": 0.0, "seed": 2}]
    assert rows[("proxygrad", 0.2)]["paper_mean"] == 62.9 and rows[("relu", 0.0)]["paper_std"] == 0.6
    lines = results["text"].splitlines()
    assert lines[0] == "Caltech101 dataset" and lines[1].split()[:5] == ["Architecture", "Activation", "s",
                                                                         "Accuracy", "Std"]
    assert lines[2].split() == ["ResNet18", "ReLU", "with", "ProxyGrad", "0.2",
                                f"{np.mean(proxy):.1f}", f"{np.std(proxy, ddof=1):.1f}", "3", "62.9", "±", "0.8"]
    assert lines[4].split()[:2] == ["ReLU", "0"]  # the architecture is printed once per block
    p_leaky = ttest_ind(proxy, leaky, equal_var=False).pvalue
    assert results["findings"][0] == f"resnet18: best proxygrad s=0.2 at {np.mean(proxy):.1f}% (n=3)"
    assert f"better than leaky s=0.2 ({np.mean(leaky):.1f}%) by {np.mean(proxy) - np.mean(leaky):.1f} points " \
           f"(Welch t-test p = {p_leaky:.2g}, not significant at 0.05)" in results["findings"][2]
    csv_lines = (tmp_path / "table.csv").read_text().splitlines()
    assert csv_lines[0].startswith("arch,mode,slope,n,mean,std") and len(csv_lines) == 4
    assert (tmp_path / "table.png").stat().st_size > 1000


def test_table_command_collects_and_prints(tmp_path, capsys):
    base = make_config(dataset="flowers102", root=str(tmp_path))
    config = T.TableConfig(base, archs=("pfnet18",), settings=(("leaky", 0.01), ("relu", 0.0)), seeds=(0, 1))
    fake_results(tmp_path / "t", config, {("pfnet18", "leaky", 0.01, 0): 80.0, ("pfnet18", "leaky", 0.01, 1): 82.0,
                                          ("pfnet18", "relu", 0.0, 0): 79.0, ("pfnet18", "relu", 0.0, 1): 79.5})
    code = cli.main(["table", "--collect", "--dataset", "flowers102", "--root", str(tmp_path), "--archs", "pfnet18",
                     "--settings", "leaky:0.01,relu", "--seeds", "0,1", "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert code == 0 and "Flowers dataset" in out and "81.0 ± 0.4" in out  # the paper's leaky 0.01 for PFNet18
    assert f"pfnet18: best leaky s=0.01 at {statistics.fmean([80.0, 82.0]):.1f}% (n=2)" in out
    code = cli.main(["table", "--collect", "--dataset", "flowers102", "--root", str(tmp_path), "--archs", "pfnet18",
                     "--settings", "leaky:0.01,relu", "--seeds", "0,1", "--out", str(tmp_path / "t"), "--epochs", "5"])
    assert code == 2 and "other settings (epochs: 300 -> 5)" in capsys.readouterr().err


def test_sweep_over_two_ranks_trains_every_cell_once_and_the_last_writes_the_table(tmp_path, monkeypatch):
    root = make_imagefolder(tmp_path / "data")
    base = make_config(dataset="imagefolder", root=str(root), arch="pfnet18", epochs=1, batch_size=8,
                       image_size=16, resize=0)
    config = T.TableConfig(base, archs=("pfnet18",), settings=(("relu", 0.0), ("proxygrad", 0.2)), seeds=(0,))
    out = tmp_path / "table"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert T.run_table(config, out, sweep=True, progress=False) is None  # rank 1: proxygrad; relu still missing
    assert [p.name for p in (out / "runs").iterdir()] == ["pfnet18-proxygrad-0.2-seed0"]
    monkeypatch.setenv("RANK", "0")
    results = T.run_table(config, out, sweep=True, progress=False)
    assert [r["n"] for r in results["rows"]] == [1, 1] and not results["missing"]
    cell = json.loads((out / "runs" / "pfnet18-relu-0-seed0" / "results.json").read_text())
    assert results["rows"][0]["mean"] == pytest.approx(100 * cell["test_accuracy"])
    assert cell["processes"] == 1 and (out / "table.csv").is_file()
