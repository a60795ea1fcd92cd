"""The `proxygrad` command line."""
import subprocess
import sys

import pytest

from proxygrad import cli


def test_demo_shows_relu_stuck_and_proxygrad_at_optimum(capsys):
    assert cli.main(["demo", "--pixels", "200"]) == 0
    out = capsys.readouterr().out
    relu_line = next(line for line in out.splitlines() if line.strip().startswith("relu"))
    proxy_line = next(line for line in out.splitlines() if line.strip().startswith("proxygrad"))
    assert "100.0% of the optimum" in proxy_line and "100.0%" not in relu_line


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_bad_slope_is_a_clear_error_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "proxygrad.cli", "demo", "--slope", "-1"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "slope" in result.stderr and "Traceback" not in result.stderr


def _visualize(tmp_path, *extra):
    out = tmp_path / "run"
    code = cli.main(["visualize", "--quiet", "--out", str(out), *extra])
    return code, out


def test_visualize_default_renders_every_class_relu_and_proxygrad(tmp_path, capsys):
    import json

    code, out = _visualize(tmp_path)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["model"] == "digits"
    assert set(results["methods"]) == {"relu", "proxygrad s=0.075"}
    assert len(results["images"]) == 20
    assert sorted({r["target"] for r in results["images"]}) == list(range(10))
    for record in results["images"]:
        assert (out / record["file"]).is_file()
        assert record["predicted_name"] is not None and record["nonfinite_gradient_steps"] == 0
    # The bundled model is well trained: rendered classes are classified as their targets.
    assert all(summary["target_share"] >= 0.9 for summary in results["methods"].values())
    assert (out / "grid.png").is_file() and (out / "activation.png").is_file()
    assert "classified as target" in capsys.readouterr().out


def test_visualize_channels_neurons_and_options(tmp_path):
    import json

    code, out = _visualize(tmp_path, "-o", "layers.1.conv2:5", "-o", "layers.0.relu1:3@4,4", "-o", "class:7",
                           "--methods", "leaky,proxygrad", "--steps", "5", "--seeds", "0,1", "--jitter", "2",
                           "--scheme", "fluid:gaussian:3", "--tv", "0.001", "--octaves", "1.0:3,1.2:2")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["images"]) == 2 * 3 * 2
    assert {r["objective"] for r in results["images"]} == {"layers.1.conv2:5", "layers.0.relu1:3@4,4", "class:7"}


def test_visualize_from_an_image_file(tmp_path):
    from PIL import Image

    picture = tmp_path / "start.png"
    Image.new("L", (50, 40), color=200).save(picture)
    code, _ = _visualize(tmp_path, "--init", str(picture), "-o", "3", "--steps", "2", "--methods", "relu")
    assert code == 0


@pytest.mark.parametrize("args,message", [
    (["--model", "resnet81"], "resnet18"),
    (["-o", "class:eleven"], "unknown class"),
    (["-o", "layers.9.conv:1"], "unknown layer"),
    (["-o", "12"], "out of range"),
    (["--scheme", "wobbly:3"], "scheme"),
    (["--methods", "relu,gelu"], "method"),
    (["--regularize", "heavy"], "preset"),
])
def test_visualize_bad_input_is_a_clear_error(tmp_path, capsys, args, message):
    code, out = _visualize(tmp_path, "--steps", "1", *args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_visualize_corrupt_init_image_names_the_file(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code, _ = _visualize(tmp_path, "--init", str(broken), "--steps", "1")
    assert code == 2 and "broken.png" in capsys.readouterr().err


def test_visualize_at_another_size_and_one_the_model_cannot_take(tmp_path, capsys):
    import json

    import torch

    code, out = _visualize(tmp_path, "--size", "40", "-o", "2", "--steps", "2", "--methods", "relu")
    assert code == 0
    assert json.loads((out / "results.json").read_text())["settings"]["size"] == [40, 40]
    fixed = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 12 * 12, 3))
    torch.save(fixed, tmp_path / "fixed.pt")
    code, _ = _visualize(tmp_path, "--model", str(tmp_path / "fixed.pt"), "--steps", "2")
    error = capsys.readouterr().err
    assert code == 2 and "fixed.pt cannot take 1x224x224" in error and "--size" in error
    code, out = _visualize(tmp_path, "--model", str(tmp_path / "fixed.pt"), "--size", "12", "--steps", "2",
                           "-o", "1", "--methods", "relu")
    assert code == 0


def test_version(capsys):
    import proxygrad

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"proxygrad {proxygrad.__version__}"
