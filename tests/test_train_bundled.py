"""`proxygrad train-bundled` options (--widths, --name, --train-subset) and the commands its records carry."""
import json
import shlex
from dataclasses import asdict
from pathlib import Path

import pytest

from proxygrad import cli
from proxygrad.models import digits as digits_mod
from proxygrad.models import load, load_digits_model
from proxygrad.models import train_bundled as tb

BUNDLED = Path("src/proxygrad/models/bundled")


def _parse(cmd: str):
    """Parsed arguments of a ``proxygrad train-bundled ...`` command line."""
    words = shlex.split(cmd)
    assert words[:2] == ["proxygrad", "train-bundled"]
    return tb.build_parser().parse_args(words[2:])


def test_regenerate_commands_are_what_the_generator_writes():
    assert tb.command(tb.TrainConfig(seed=0), BUNDLED) == digits_mod.REGENERATE
    assert tb.command(tb.TrainConfig(seed=1, widths=(12, 24, 48, 96)), BUNDLED, "digits-b") == digits_mod.REGENERATE_B
    assert digits_mod.REGENERATE_B.startswith("proxygrad train-bundled ")


def test_regenerate_b_asks_for_the_training_recorded_with_the_shipped_weights():
    args = _parse(digits_mod.REGENERATE_B)
    recorded = json.loads(digits_mod.PROVENANCE_FILE_B.read_text())["training"]
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(tb.config_from_args(args)).items()}
    assert config == {k: recorded[k] for k in config}  # seed 1, widths 12..96, every default as shipped
    assert tb.file_stem(args.name) + ".pt" == digits_mod.WEIGHTS_FILE_B.name
    assert tb.file_stem(args.name) + ".json" == digits_mod.PROVENANCE_FILE_B.name
    assert args.out == BUNDLED


def test_widths_and_name_write_a_loadable_model_whose_record_reproduces_it(tmp_path):
    out = tmp_path / "a"
    argv = ["--seed", "1", "--widths", "12,24,48,96", "--name", "digits-b", "--epochs", "1",
            "--train-subset", "96", "--out", str(out), "--quiet"]
    assert tb.main_train_bundled(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["digits_b.json", "digits_b.pt"]
    record = json.loads((out / "digits_b.json").read_text())
    assert record["command"] == ("proxygrad train-bundled --seed 1 --epochs 1 --widths 12,24,48,96 "
                                 f"--train-subset 96 --name digits-b --out {out.as_posix()}")
    assert record["command_without_cli"].startswith("python -m proxygrad.models.train_bundled --seed 1 --epochs 1")
    assert record["widths"] == [12, 24, 48, 96] and record["name"] == "digits-b"
    assert record["split"]["train"] == 96 and record["training"]["train_subset"] == 96
    assert record["sha256"] == digits_mod.sha256_file(out / "digits_b.pt")
    model = load_digits_model(out / "digits_b.pt")
    assert model.widths == (12, 24, 48, 96) and len(model.layers) == 4
    assert record["num_params"] == sum(p.numel() for p in model.parameters())
    assert load("digits", weights=str(out / "digits_b.pt")).model.widths == (12, 24, 48, 96)
    # the recorded command, run through the `proxygrad` CLI into another folder, gives the same bytes
    again = tmp_path / "b"
    words = shlex.split(record["command"])
    words[words.index("--out") + 1] = str(again)
    assert cli.main(words[1:] + ["--quiet"]) == 0
    assert digits_mod.sha256_file(again / "digits_b.pt") == record["sha256"]


def test_settings_without_a_flag_are_recorded_as_a_python_line_that_rebuilds_them(monkeypatch):
    cfg = tb.TrainConfig(seed=2, shift=1, label_smoothing=0.0, widths=(8, 16))
    cmd = tb.command(cfg, Path("my out"), "m-1")
    program, flag, code = shlex.split(cmd)
    assert (program, flag) == ("python", "-c")
    seen = {}
    monkeypatch.setattr(tb, "train_digits", lambda config: config)
    monkeypatch.setattr(tb, "save_bundled", lambda result, out, name: seen.update(config=result, out=out, name=name))
    exec(code, {})
    assert seen == {"config": cfg, "out": "my out", "name": "m-1"}


def test_bad_widths_and_names_fail_before_training(monkeypatch, capsys):
    monkeypatch.setattr(tb, "train_digits", lambda *a, **k: pytest.fail("trained despite bad arguments"))
    assert tb.main_train_bundled(["--widths", "12,0,48"]) == 2
    assert "widths must be one or more positive ints" in capsys.readouterr().err
    assert tb.main_train_bundled(["--name", "../digits"]) == 2
    assert "name must be letters, digits" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        tb.main_train_bundled(["--widths", "12,x"])
    assert exit_info.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="widths"):
        tb.TrainConfig(widths=())
    assert tb.TrainConfig(widths=[3, 5]).widths == (3, 5)
    assert tb.file_stem("digits-b") == "digits_b" and tb.file_stem("digits") == "digits"
