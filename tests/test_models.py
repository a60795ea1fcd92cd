"""proxygrad.models: specs, the bundled digits model, load() for every source, and its errors. No internet."""
from __future__ import annotations

import json
import shutil
import urllib.error

import pytest
import torch
import torch.nn as nn

from proxygrad.models import (DownloadError, InputSpec, LoadedModel, Normalized, available, digits_data, from_module,
                              load)
from proxygrad.models import digits as digits_mod
from proxygrad.models.registry import guess_spec
from proxygrad.models.spec import IMAGENET_MEAN, IMAGENET_STD
from proxygrad.models.train_bundled import TrainConfig, evaluate, main_train_bundled, random_shift, train_digits

IMAGENET = InputSpec.imagenet(224, class_names=[f"class{i}" for i in range(1000)])


# ---- InputSpec -------------------------------------------------------------------------------------------------
def test_to_model_input_matches_hand_computation():
    spec = InputSpec(3, (2, 2), IMAGENET_MEAN, IMAGENET_STD)
    x = torch.tensor([-1.0, 0.0, 1.0, 0.5], dtype=torch.float64).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    x.requires_grad_(True)
    y = spec.to_model_input(x)
    # (x + 1) / 2 is 0, 0.5, 1, 0.75; channel 0: (p - 0.485) / 0.229
    expected0 = torch.tensor([-0.485, 0.015, 0.515, 0.265], dtype=torch.float64) / 0.229
    expected2 = torch.tensor([-0.406, 0.094, 0.594, 0.344], dtype=torch.float64) / 0.225
    assert y.dtype == torch.float64 and y.shape == x.shape
    torch.testing.assert_close(y[0, 0].flatten(), expected0)
    torch.testing.assert_close(y[0, 2].flatten(), expected2)
    y.sum().backward()  # d/dx = 0.5 / std per channel
    torch.testing.assert_close(x.grad[0, 1], torch.full((2, 2), 0.5 / 0.224, dtype=torch.float64))
    torch.testing.assert_close(spec.from_model_input(y.detach()), x.detach())


def test_digits_spec_is_identity_on_minus_one_one():
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    torch.testing.assert_close(digits_mod.digits_spec().to_model_input(x), x)


def test_to_model_input_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        IMAGENET.to_model_input(torch.zeros(1, 1, 8, 8))


def test_spec_validation_and_round_trip():
    with pytest.raises(ValueError, match="mean has 1 entries for 3 channels"):
        InputSpec(3, (8, 8), (0.5,), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="std must be > 0"):
        InputSpec(1, 8, (0.5,), (0.0,))
    spec = InputSpec(1, 8, [0.5], [0.25], class_names=["a", "b"])
    assert spec.size == (8, 8) and spec.num_classes == 2 and spec.class_names == ("a", "b")
    assert InputSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.replace(class_names=None).num_classes is None


def test_class_index_by_name_and_index():
    spec = digits_mod.digits_spec()
    assert spec.class_index(7) == 7
    assert spec.class_index("7") == 7
    assert IMAGENET.class_index("class281") == 281
    assert IMAGENET.class_index("CLASS281") == 281  # unambiguous case-insensitive match
    assert IMAGENET.class_index("281") == 281  # digits that are no name: an index
    assert spec.class_name(3) == "3"


def test_class_index_errors_list_valid_names():
    with pytest.raises(ValueError, match=r"valid names: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"):
        digits_mod.digits_spec().class_index("seven")
    with pytest.raises(ValueError, match=r"valid indices are 0\.\.9"):
        digits_mod.digits_spec().class_index(10)
    with pytest.raises(ValueError, match="closest names: class28"):
        IMAGENET.class_index("clas28")
    with pytest.raises(ValueError, match="no class names"):
        InputSpec(1, 8, (0.5,), (0.5,)).class_index("cat")


def test_normalized_wraps_the_original_model():
    model = nn.Conv2d(3, 2, 1)
    wrapped = Normalized(model, IMAGENET)
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(wrapped(x), model(IMAGENET.to_model_input(x)))
    assert wrapped.model is model and wrapped.spec is IMAGENET


# ---- bundled digits --------------------------------------------------------------------------------------------
def test_digits_data_shapes_ranges_and_split():
    x, y = digits_data("train")
    xt, yt = digits_data("test")
    assert x.shape == (1347, 1, 32, 32) and xt.shape == (450, 1, 32, 32)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1 and x.max() <= 1 and x.max() > 0.9
    _, y_all = digits_data("all")
    share = torch.bincount(yt, minlength=10) - 0.25 * torch.bincount(y_all, minlength=10)
    assert share.abs().max() <= 1  # stratified: a quarter of each class in the test split
    x8, _ = digits_data("test", size=8)
    assert torch.allclose(x8 * 8 + 8, (x8 * 8 + 8).round(), atol=1e-5)  # 17 gray levels kept at 8x8
    with pytest.raises(ValueError, match="valid: train, test, all"):
        digits_data("val")


def test_bundled_model_loads_in_eval_mode_with_its_spec():
    loaded = load()
    assert isinstance(loaded, LoadedModel)
    assert loaded.source == "bundled" and loaded.name == "digits"
    assert not loaded.model.training
    assert loaded.spec == InputSpec(1, (32, 32), (0.5,), (0.5,), tuple("0123456789"))
    relus = [m for m in loaded.model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) >= 7 and sum(p.numel() for p in loaded.model.parameters()) < 200_000


def test_bundled_weights_test_accuracy_and_provenance():
    loaded = load("digits")
    x, y = digits_data("test")
    accuracy = evaluate(loaded.normalized(), x, y)
    assert accuracy > 0.97
    record = json.loads(digits_mod.PROVENANCE_FILE.read_text())
    assert record["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert record["sha256"] == digits_mod.sha256_file(digits_mod.WEIGHTS_FILE)
    assert digits_mod.WEIGHTS_FILE.stat().st_size < 5_000_000
    assert "train-bundled" in record["command"] and "--seed" in record["command"]
    assert record["split"]["train"] == 1347 and record["split"]["test"] == 450
    for key in ("seed", "data", "training", "versions", "date"):
        assert key in record


def test_bundled_weights_that_do_not_match_their_record_are_refused(tmp_path, monkeypatch):
    weights, record = tmp_path / "digits.pt", tmp_path / "digits.json"
    shutil.copy(digits_mod.WEIGHTS_FILE, weights)
    data = json.loads(digits_mod.PROVENANCE_FILE.read_text()) | {"sha256": "0" * 64}
    record.write_text(json.dumps(data))
    monkeypatch.setattr(digits_mod, "WEIGHTS_FILE", weights)
    monkeypatch.setattr(digits_mod, "PROVENANCE_FILE", record)
    with pytest.raises(ValueError, match=r"digits\.pt do not match their provenance record .*train-bundled"):
        load()
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="regenerate"):
        load()


def test_digits_state_dict_file_by_path(tmp_path):
    path = tmp_path / "my_digits.pt"
    torch.save(load().model.state_dict(), path)
    for loaded in (load(str(path)), load("digits", weights=str(path)), load(f"digits={path}")):
        assert loaded.spec.class_names == tuple("0123456789")
        torch.testing.assert_close(loaded.model.fc.weight, load().model.fc.weight)


def test_random_shift_moves_whole_images_and_fills():
    x = torch.full((3, 1, 6, 6), -1.0)
    x[:, 0, 2, 3] = 1.0
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for img in out:
        assert (img == 1).sum() == 1 and (img == -1).sum() == 35  # pixel moved by <= 2, nothing else came in
        r, c = (img[0] == 1).nonzero()[0].tolist()
        assert abs(r - 2) <= 2 and abs(c - 3) <= 2
    assert random_shift(x, 0, torch.Generator()) is x


def test_training_improves_over_chance_and_entry_point_writes_loadable_files(tmp_path):
    result = train_digits(TrainConfig(epochs=1, batch_size=32, seed=0), progress=False)
    assert result.test_accuracy > 0.3  # chance is 0.1
    assert not result.model.training
    assert main_train_bundled(["--epochs", "1", "--batch-size", "32", "--out", str(tmp_path), "--quiet"]) == 0
    record = json.loads((tmp_path / "digits.json").read_text())
    assert record["sha256"] == digits_mod.sha256_file(tmp_path / "digits.pt")
    assert record["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-6)  # same seed, same numbers
    loaded = load("digits", weights=str(tmp_path / "digits.pt"))
    assert evaluate(loaded.model, *digits_data("test")) == pytest.approx(result.test_accuracy)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_train_config_validates():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    assert main_train_bundled(["--lr", "-1", "--out", "/nonexistent/never"]) == 2


# ---- names -----------------------------------------------------------------------------------------------------
def test_available_lists_every_source():
    names = available()
    assert names[0] == "digits" and "resnet18" in names and "timm:resnet10t" in names


def test_unknown_model_suggests_closest_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet81'.*closest names: .*resnet18"):
        load("resnet81")
    with pytest.raises(ValueError, match="closest: resnet10t"):
        load("timm:resnet10tt")


# ---- torchvision ------------------------------------------------------------------------------------------------
def test_torchvision_without_weights_has_imagenet_spec():
    loaded = load("resnet18")
    assert loaded.source == "torchvision" and not loaded.model.training
    assert loaded.spec == InputSpec(3, (224, 224), IMAGENET_MEAN, IMAGENET_STD, None, 1000)
    assert load("resnet18", num_classes=7).spec.num_classes == 7


def test_torchvision_local_state_dict(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(num_classes=10)
    path = tmp_path / "r18.pt"
    torch.save(reference.state_dict(), path)
    loaded = load(f"resnet18={path}")  # class count taken from the file
    assert loaded.spec.num_classes == 10 and loaded.spec.size == (224, 224)
    torch.testing.assert_close(loaded.model.fc.weight, reference.fc.weight)
    wrapped = tmp_path / "ckpt.pth"  # checkpoint dict with DataParallel prefixes and class names
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()},
                "class_names": [f"c{i}" for i in range(10)], "epoch": 3}, wrapped)
    loaded = load("resnet18", weights=str(wrapped))
    assert loaded.spec.class_index("c4") == 4


def test_mismatched_state_dict_names_the_file(tmp_path):
    path = tmp_path / "digits_weights.pt"
    torch.save(load().model.state_dict(), path)
    with pytest.raises(ValueError, match=rf"{path}.*does not match the architecture resnet18.*missing keys"):
        load("resnet18", weights=str(path))
    with pytest.raises(ValueError, match=rf"{path}.*num_classes|{path}.*shape"):
        import torchvision

        torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
        load("resnet18", weights=str(path), num_classes=5)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    corrupt = tmp_path / "broken.pt"
    torch.save({"w": torch.zeros(3)}, corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:40])  # truncated archive
    for call in (lambda: load(f"resnet18={corrupt}"), lambda: load(str(corrupt)), lambda: load(f"digits={corrupt}")):
        with pytest.raises(ValueError, match=rf"{corrupt}.*corrupt"):
            call()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match=rf"{garbage}"):
        load("resnet18", weights=str(garbage))
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load(str(tmp_path / "nothere.pt"))


def test_weights_download_offline_gives_a_clear_error(monkeypatch):
    import torchvision.models._api as tv_api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    with pytest.raises(DownloadError, match=r"IMAGENET1K_V1.*no internet.*weights='path/to/file.pth'"):
        load("resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="valid: IMAGENET1K_V1, DEFAULT"):
        load("resnet18", weights="IMAGENET")


# ---- timm, whole models, any module --------------------------------------------------------------------------------
def test_timm_model_by_name_has_its_spec():
    loaded = load("resnet10t")  # not in torchvision -> timm
    assert loaded.source == "timm" and loaded.name == "timm:resnet10t"
    assert loaded.spec.channels == 3 and loaded.spec.size == (176, 176)
    assert loaded.spec.mean == IMAGENET_MEAN and loaded.spec.num_classes == 1000
    assert load("timm:resnet18").source == "timm"  # explicit prefix wins over torchvision's resnet18


def test_timm_pretrained_offline_gives_a_clear_error(monkeypatch):
    import timm.models._builder as builder

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(builder, "load_pretrained", offline)
    with pytest.raises(DownloadError, match="resnet10t.*no internet"):
        load("timm:resnet10t", weights="pretrained")


def test_whole_model_checkpoint_and_state_dict_without_architecture(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    loaded = load(str(path))
    assert loaded.source == "checkpoint" and loaded.name == str(path)
    assert loaded.spec.channels == 1 and loaded.spec.num_classes == 3
    spec = InputSpec(1, (16, 16), (0.1,), (0.2,), ("a", "b", "c"))
    torch.save(Normalized(net, spec), path)
    assert load(str(path)).spec == spec
    torch.save(net.state_dict(), path)
    with pytest.raises(ValueError, match=rf"{path} holds a state dict .*without its architecture.*resnet18="):
        load(str(path))


def test_check_size_names_the_model():
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    loaded = from_module(net, InputSpec(1, (8, 8), (0.5,), (0.5,)), name="tiny")
    loaded.check_size()
    with pytest.raises(ValueError, match="model tiny cannot take 1x16x16 inputs"):
        loaded.check_size(16)


def test_any_module_and_guessed_spec():
    loaded = load(nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 5)))
    assert loaded.source == "module" and loaded.spec.num_classes == 5 and loaded.spec.mean == IMAGENET_MEAN
    assert guess_spec(nn.Conv2d(1, 2, 3), {"spec": {"channels": 1, "size": [9, 9], "mean": [0], "std": [1]}}).size \
        == (9, 9)
