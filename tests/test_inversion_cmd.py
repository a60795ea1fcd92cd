"""`proxygrad invert` and seed 004's cross-model assessment: model B, the run directories, the numbers."""
import csv
import json
import shutil

import pytest
import torch

import proxygrad
from proxygrad import cli
from proxygrad.experiments import inversion
from proxygrad.experiments.inversion import AssessConfig, InversionSettings, assess, mcnemar, preset
from proxygrad.models import digits as digits_mod
from proxygrad.models import digits_data
from proxygrad.models.train_bundled import evaluate
from proxygrad.report.files import write_png


# ---- model B ---------------------------------------------------------------------------------------------------
def test_model_b_is_bundled_independent_and_accurate():
    a, b = proxygrad.load("digits"), proxygrad.load("digits-b")
    assert b.name == "digits-b" and b.source == "bundled" and b.spec == a.spec
    assert b.model.widths == (12, 24, 48, 96) and a.model.widths == (16, 32, 64)  # other widths and depth
    x, y = digits_data("test")
    with torch.no_grad():
        predicted_a, predicted_b = a.normalized()(x).argmax(1), b.normalized()(x).argmax(1)
    accuracy = (predicted_b == y).float().mean().item()
    record = json.loads(digits_mod.PROVENANCE_FILE_B.read_text())
    assert accuracy > 0.97 and record["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert record["seed"] == 1 != json.loads(digits_mod.PROVENANCE_FILE.read_text())["seed"]
    assert record["sha256"] == digits_mod.sha256_file(digits_mod.WEIGHTS_FILE_B)
    assert digits_mod.WEIGHTS_FILE_B.stat().st_size < 5_000_000
    assert record["command"] == digits_mod.REGENERATE_B and "--widths 12,24,48,96" in record["command"]
    disagree = (predicted_a != predicted_b).sum().item()
    assert 0 < disagree < 20  # two good models, not copies of each other
    assert "digits-b" in proxygrad.models.available()


def test_model_b_with_a_mismatched_record_is_refused(tmp_path, monkeypatch):
    weights, record = tmp_path / "digits_b.pt", tmp_path / "digits_b.json"
    shutil.copy(digits_mod.WEIGHTS_FILE_B, weights)
    record.write_text(json.dumps(json.loads(digits_mod.PROVENANCE_FILE_B.read_text()) | {"sha256": "0" * 64}))
    monkeypatch.setattr(digits_mod, "WEIGHTS_FILE_B", weights)
    monkeypatch.setattr(digits_mod, "PROVENANCE_FILE_B", record)
    with pytest.raises(ValueError, match=r"digits_b\.pt do not match .*--widths 12,24,48,96"):
        proxygrad.load("digits-b")
    assert proxygrad.load("digits").name == "digits"  # model A is unaffected


# ---- proxygrad invert IMAGE ------------------------------------------------------------------------------------
def _invert(tmp_path, *extra):
    out = tmp_path / "run"
    return cli.main(["invert", "--quiet", "--out", str(out), *extra]), out


def test_invert_a_bundled_digit_writes_every_output(tmp_path, capsys):
    code, out = _invert(tmp_path, "--digit-index", "5", "--steps", "30", "--schemes", "tv,fluid:sobolev:5")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    label = digits_data("test")[1][5].item()
    assert results["original"]["label"] == str(label) and results["settings"]["layer"] == "layers.2"
    assert [(r["scheme"], r["method"]) for r in results["reconstructions"]] == [
        ("tv", "relu"), ("tv", "proxygrad"), ("fluid:sobolev:5", "relu"), ("fluid:sobolev:5", "proxygrad")]
    for row in results["reconstructions"]:
        assert (out / row["file"]).is_file()
        assert row["loss"][-1] == pytest.approx(row["distance"]) and row["distance"] < 0.5 * row["loss"][0]
        assert row["loss_steps"] == [0, 10, 20, 30]
    for name in ("original.png", "grid.png", "loss.png"):
        assert (out / name).is_file()
    assert "fluid:sobolev:5" in capsys.readouterr().out


def test_invert_a_picture_file_from_the_logits(tmp_path):
    images, labels = digits_data("test")
    write_png(tmp_path / "digit.png", images[0])
    code, out = _invert(tmp_path, str(tmp_path / "digit.png"), "--layer", "output", "--steps", "40",
                        "--schemes", "none", "--methods", "relu")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["original"]["label"] is None and results["original"]["predicted"] == str(labels[0].item())
    assert results["reconstructions"][0]["predicted"] == str(labels[0].item())  # model A agrees with itself
    assert (out / "original.png").read_bytes() == (tmp_path / "digit.png").read_bytes()


def test_invert_bad_input_is_a_clear_error(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "color.png")
    (tmp_path / "notes.png").write_text("not a picture")
    cases = [((str(tmp_path / "color.png"),), r"3 channel\(s\).*--convert"),
             ((str(tmp_path / "notes.png"),), "cannot read image"),
             ((str(tmp_path / "missing.png"),), "no image file"),
             (("--digit-index", "3", "--layer", "layers.7"), r"unknown layer 'layers\.7'; closest"),
             (("--digit-index", "450"), r"0\.\.449"),
             ((str(tmp_path / "color.png"), "--digit-index", "3"), "exactly one target"),
             ((), "exactly one target"),
             (("--digit-index", "3", "--methods", "leaky"), "relu', 'proxygrad'"),
             (("--digit-index", "3", "--schemes", "blur:3"), "cannot parse scheme")]
    for args, message in cases:
        code, _ = _invert(tmp_path, *args, "--steps", "1")
        assert code == 2, args
        assert __import__("re").search(message, capsys.readouterr().err), (args, message)
    code, out = _invert(tmp_path, str(tmp_path / "color.png"), "--convert", "--steps", "2", "--schemes", "none")
    assert code == 0 and json.loads((out / "results.json").read_text())["settings"]["convert"] is True


# ---- the assessment --------------------------------------------------------------------------------------------
def test_mcnemar_exact_p_values():
    assert mcnemar([1, 1, 1, 0], [0, 0, 0, 0]) == {"only_first": 3, "only_second": 0, "p_value": 0.25}
    assert mcnemar([1, 0], [1, 0])["p_value"] == 1.0
    assert mcnemar([1] * 10 + [0], [0] * 10 + [1])["p_value"] == pytest.approx(2 * (1 + 11) / 2**11)  # 2 P(X <= 1)


def test_digit_images_are_seeded_and_stratified():
    images, labels, index = inversion.digit_images(2, seed=3)
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert index == inversion.digit_images(2, seed=3)[2] != inversion.digit_images(2, seed=4)[2]
    torch.testing.assert_close(images, digits_data("test")[0][index])
    assert len(inversion.digit_images(None, 0)[1]) == 450


def test_assessment_numbers_resume_and_files(tmp_path, monkeypatch):
    config = AssessConfig(layers_a=("layers.1", "output"), layers_b=(), schemes=("none", "tv"), per_class=1,
                          inversion=InversionSettings(steps=40))
    payload = assess(config, tmp_path, progress=False)
    a, b = proxygrad.load("digits"), proxygrad.load("digits-b")
    x, y, _ = inversion.digit_images(1, 0)
    assert payload["n_images"] == 10 and len(payload["rows"]) == 2 * 2 * 2
    ref = payload["references"]["digits [layers.1] -> digits-b"]
    assert ref["classifier_on_originals"]["top1"] == pytest.approx(evaluate(b.normalized(), x, y))
    assert ref["reconstructor_on_originals"]["top1"] == pytest.approx(evaluate(a.normalized(), x, y))
    rows = {(r["layer"], r["scheme"], r["method"]): r for r in payload["rows"]}
    for scheme in ("none", "tv"):
        for method in ("relu", "proxygrad"):
            assert rows[("output", scheme, method)]["reconstructor_top1"] == 1.0  # A agrees with its own logits
            assert rows[("layers.1", scheme, method)]["top1"] >= ref["classifier_on_starts"]["top1"] + 0.4
            assert rows[("layers.1", scheme, method)]["top5"] >= rows[("layers.1", scheme, method)]["top1"]
    assert len(payload["proxygrad_vs_relu"]) == 4 and "ProxyGrad raised" in payload["summary"]
    with open(tmp_path / "table.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 8 and float(table[0]["top1"]) == pytest.approx(payload["rows"][0]["top1"])
    for name in ("results.json", "agreement.png", "examples.png", "rows.jsonl"):
        assert (tmp_path / name).is_file()

    def fail(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(inversion, "invert", fail)
    again = assess(config, tmp_path, progress=False)
    assert again["rows"] == payload["rows"]


def test_assessment_defaults_and_bad_settings():
    a, b = proxygrad.load("digits"), proxygrad.load("digits-b")
    names = [d.name for d in inversion._directions(AssessConfig(), a, b)]
    assert names == ["digits [layers.2] -> digits-b", "digits-b [layers.3] -> digits"]
    assert preset("full").per_class is None and preset("full").inversion.steps == 300
    assert preset("quick", steps=7, layers_a=("stem",)).inversion.steps == 7
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown layer 'layers.4'"):
        inversion._directions(AssessConfig(layers_b=("layers.4",)), a, b)
    with pytest.raises(ValueError, match="independently trained model B"):
        inversion._load_pair(AssessConfig(model_b="digits"), None)


def test_assessment_on_a_folder_of_pictures(tmp_path):
    images, labels = digits_data("test")
    for i in range(4):
        write_png(tmp_path / "pics" / str(labels[i].item()) / f"{i}.png", images[i])
    a = proxygrad.load("digits")
    x, y, files = inversion.folder_images(tmp_path / "pics", a)
    assert sorted(y.tolist()) == sorted(labels[:4].tolist()) and len(files) == 4
    first = files.index(f"{labels[0].item()}/0.png")
    torch.testing.assert_close(x[first], images[0], atol=1 / 127.5, rtol=0)  # the PNG's 8-bit rounding
    (tmp_path / "pics" / "cat").mkdir()
    with pytest.raises(ValueError, match="subfolder 'cat' is not a class of digits"):
        inversion.folder_images(tmp_path / "pics", a)
    wnids = [f"n{i:08d}" for i in (9, 3, 0, 1, 2, 4, 5, 6, 7, 8)]  # one folder per class: sorted order
    assert inversion.folder_labels(wnids, a) == {f"n{i:08d}": i for i in range(10)}


def test_invert_assess_command(tmp_path, capsys):
    code, out = _invert(tmp_path, "--assess", "--per-class", "1", "--steps", "5", "--schemes", "none",
                        "--methods", "relu", "--layer-b", "none")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"] == "invert --assess" and len(results["rows"]) == 1
    assert results["rows"][0]["direction"] == "digits [layers.2] -> digits-b"
    assert "classifier on the originals" in capsys.readouterr().out
    code, _ = _invert(tmp_path, "--assess", "--digit-index", "3")
    assert code == 2 and "drop IMAGE" in capsys.readouterr().err
