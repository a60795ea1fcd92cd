"""``proxygrad gap`` on its test preset: AM never beats the exact maximum, the gaps follow from the rows."""
import json

import numpy as np
import pytest
import torch

from proxygrad import cli
from proxygrad.exact import maximize
from proxygrad.experiments.gap import NETWORKS, _verdict, preset, run_gap, summary, train_network


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gap") / "run"
    assert cli.main(["gap", "--preset", "test", "--quiet", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_exact_maxima_are_proved_and_never_beaten(run):
    out, payload = run
    network = payload["networks"]["mlp8-relu"]
    assert network["milp_optimal"] == "2/2"
    result = run_gap(preset("test"), out, progress=False)  # resumes: everything comes from the run directory
    for row in result.rows:
        assert row["exact_is_optimal"]
        assert row["reached"] <= row["exact"] + 1e-5 * abs(row["exact"])  # no start beats the global maximum
        assert row["gap"] == pytest.approx((row["exact"] - row["reached"]) / abs(row["exact"]))


def test_exact_maxima_belong_to_the_saved_network(run):
    out, payload = run
    model = NETWORKS["mlp8-relu"]()
    model.load_state_dict(torch.load(next((out / "networks").glob("mlp8-relu*.pt")), weights_only=True))
    for c, value in payload["networks"]["mlp8-relu"]["exact_maxima"].items():
        assert maximize(model.eval(), (1, 8, 8), int(c)).value == pytest.approx(value, rel=1e-9)


def test_summary_is_the_mean_of_the_rows(run):
    out, payload = run
    result = run_gap(preset("test"), out, progress=False)
    table = summary(result)
    assert [r["mean_gap"] for r in table] == pytest.approx([r["mean_gap"] for r in payload["summary"]])
    for line in table:
        gaps = [r["gap"] for r in result.rows if (r["network"], r["steps"], r["method"]) ==
                (line["network"], line["steps"], line["method"])]
        assert line["mean_gap"] == pytest.approx(np.mean(gaps)) and line["starts"] == 4
    assert {r["method"] for r in table} == {"plain", "proxygrad s=0.3", "proxygrad s=0.3->0"}
    assert all(r["verdict"] for r in table if r["method"] != "plain")
    assert (out / "gap.png").stat().st_size > 0 and (out / "report.html").is_file()


def test_verdict_needs_an_effect_beyond_two_standard_errors():
    assert _verdict(np.array([-0.10, -0.12, -0.09, -0.11])) == "helps"
    assert _verdict(np.array([0.10, 0.12, 0.09, 0.11])) == "hurts"
    assert _verdict(np.array([-0.3, 0.3, -0.2, 0.25])) == "no clear difference"
    assert _verdict(np.array([-1e-5, -2e-5, -1e-5])) == "no clear difference"  # below 0.1 percentage point


def test_training_learns_the_digits():
    _, accuracy = train_network("mlp8-relu", seed=0, epochs=5)
    assert accuracy > 0.6  # chance is 0.1


def test_bad_options_are_clear_errors(tmp_path, capsys):
    assert cli.main(["gap", "--networks", "resnet50", "--out", str(tmp_path)]) == 2
    assert "resnet50" in capsys.readouterr().err
    assert cli.main(["gap", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert cli.main(["gap", "--classes", "12", "--out", str(tmp_path)]) == 2
