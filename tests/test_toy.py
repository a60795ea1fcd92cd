"""The paper's Section 3 claims on the white-image problems, through the project's own rendering loop."""
import csv
import json

import pytest
import torch

from proxygrad import cli
from proxygrad.experiments.toy import ToyConfig, run_toy, steps_to_reach, write_toy
from proxygrad.problems import table1

CONFIG = ToyConfig(size=8, steps=400, seeds=(0, 1, 2), slopes=(0.1, 0.5), methods=("plain", "proxygrad"))


@pytest.fixture(scope="module")
def result():
    return run_toy(CONFIG, progress=False)


def _fractions(result, problem, label):
    return result.traces[problem][label] / result.optimum[problem]  # (seeds, steps + 1)


@pytest.mark.parametrize("problem", ["f1", "f3", "conv"])
def test_plain_ascent_gets_stuck(result, problem):
    """Stuck, not slow: far from the optimum, and less than 0.1% of it gained over the last 200 steps."""
    fractions = _fractions(result, problem, "plain")
    assert fractions[:, -1].max() < 0.9
    assert (fractions[:, -1] - fractions[:, -201]).abs().max() < 1e-3


@pytest.mark.parametrize("problem", ["f1", "f3"])
def test_plain_ascent_never_lifts_a_negative_pixel(result, problem):
    """The mechanism: at a negative pixel the gradient is 0 (f1) or s - p < 0 (f3)."""
    start, final = result.starts[problem], result.finals[problem]["plain"]
    assert torch.all(final[start < 0] <= start[start < 0] + 1e-6)


@pytest.mark.parametrize("problem", ["f1", "f3", "conv"])
def test_proxygrad_with_backward_slope_above_p_reaches_the_optimum(result, problem):
    assert _fractions(result, problem, "proxygrad s=0.5")[:, -1].min() > 1 - 1e-5


def test_proxygrad_with_backward_slope_below_p_stays_stuck_on_f3(result):
    """At a black pixel the proxy gradient is s_b - p < 0 for s_b = 0.1 < p = 0.2: the same local maximum."""
    assert torch.allclose(_fractions(result, "f3", "proxygrad s=0.1"), _fractions(result, "f3", "plain"), atol=1e-6)


def test_f2_reaches_the_optimum_slowly(result):
    plain = [steps_to_reach(t, result.optimum["f2"]) for t in result.traces["f2"]["plain"]]
    proxy = [steps_to_reach(t, result.optimum["f2"]) for t in result.traces["f2"]["proxygrad s=0.5"]]
    assert None not in plain and None not in proxy
    assert min(plain) > 2 * max(proxy)  # the race of patterns: negative pixels rise s times slower


def test_no_method_exceeds_the_exact_optimum(result):
    for problem, traces in result.traces.items():
        for label, trace in traces.items():
            assert trace.max().item() <= result.optimum[problem] * (1 + 1e-6), (problem, label)


def test_steps_to_reach():
    trace = torch.tensor([0.0, 5.0, 9.8, 9.95, 10.0])
    assert steps_to_reach(trace, 10.0) == 3 and steps_to_reach(trace, 20.0) is None


def test_run_directory_matches_the_results(result, tmp_path):
    payload = write_toy(tmp_path, result)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["optimum"] == pytest.approx({n: p.optimum(8, 8) for n, p in table1().items()})
    with open(tmp_path / "runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 3 * 3  # problems x methods x seeds
    row = next(r for r in rows if r["problem"] == "f1" and r["label"] == "plain" and r["seed"] == "0")
    assert float(row["final_value"]) == pytest.approx(result.traces["f1"]["plain"][0, -1].item())
    assert any("f3" in line and "proxygrad s=0.5" in line.split("fall short")[0] for line in payload["findings"])
    for name in ("table1.png", "figure1.png", "race.png", "summary.csv", "report.html"):
        assert (tmp_path / name).stat().st_size > 0


def test_command(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["toy", "--quiet", "--size", "4", "--steps", "20", "--seeds", "0", "--problems", "f1",
                     "--slopes", "0.5", "--out", str(out)]) == 0
    assert "f1" in capsys.readouterr().out and (out / "results.json").is_file()
    assert cli.main(["toy", "--problems", "f9", "--out", str(out)]) == 2
    assert "f9" in capsys.readouterr().err
