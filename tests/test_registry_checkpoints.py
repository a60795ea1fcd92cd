"""A checkpoint's stored spec ({"arch": ..., "state_dict": ..., "spec": ...}) wins over each source's default."""
import pytest
import torch
import torch.nn as nn
import torchvision

from proxygrad.models import IMAGENET_MEAN, IMAGENET_STD, DigitsResNet, InputSpec, load
from proxygrad.models.pfnet import pfnet18

NAMES = ["cat", "dog", "fox", "owl", "elk", "bee", "ant"]
SPEC = {"channels": 3, "size": [64, 64], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "class_names": NAMES}


def _assert_stored_spec(spec: InputSpec) -> None:
    assert spec.channels == 3 and spec.size == (64, 64)
    assert spec.class_names == tuple(NAMES) and spec.num_classes == 7
    assert spec.mean == pytest.approx((0.5, 0.4, 0.3)) and spec.std == pytest.approx((0.2, 0.25, 0.3))


def _assert_same_weights(model: nn.Module, state: dict) -> None:
    own = model.state_dict()
    assert set(own) == set(state)
    for key, value in state.items():
        assert torch.equal(own[key], value), key


@pytest.fixture(scope="module")
def resnet_state():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=7).state_dict()


@pytest.mark.parametrize("stored", [SPEC, InputSpec.from_dict(SPEC)], ids=["dict", "InputSpec"])
def test_resnet18_checkpoint_with_a_spec_keeps_it_on_every_route(tmp_path, resnet_state, stored):
    path = tmp_path / "resnet.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state, "spec": stored}, path)
    for loaded in (load(str(path)), load("resnet18", weights=str(path)), load(f"resnet18={path}")):
        _assert_stored_spec(loaded.spec)
        _assert_same_weights(loaded.model, resnet_state)
        assert loaded.model.fc.out_features == 7
    assert load(str(path)).source == "checkpoint"


def test_resnet18_checkpoint_without_a_spec_keeps_the_old_default(tmp_path, resnet_state):
    path = tmp_path / "plain.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state}, path)
    loaded = load(str(path))
    assert loaded.spec == InputSpec(3, (224, 224), IMAGENET_MEAN, IMAGENET_STD, None, 7)
    _assert_same_weights(loaded.model, resnet_state)
    named = tmp_path / "named.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state, "class_names": NAMES}, named)
    assert load(str(named)).spec == InputSpec(3, (224, 224), IMAGENET_MEAN, IMAGENET_STD, tuple(NAMES))


def test_pfnet18_checkpoint_with_and_without_a_spec(tmp_path):
    torch.manual_seed(0)
    state = pfnet18(num_classes=7).state_dict()
    with_spec, without = tmp_path / "pf_spec.pt", tmp_path / "pf.pt"
    torch.save({"arch": "pfnet18", "state_dict": state, "spec": SPEC}, with_spec)
    torch.save({"arch": "pfnet18", "state_dict": state}, without)
    loaded = load(str(with_spec))
    _assert_stored_spec(loaded.spec)
    _assert_same_weights(loaded.model, state)
    assert load(str(without)).spec == InputSpec(3, (224, 224), IMAGENET_MEAN, IMAGENET_STD, None, 7)


def test_digits_state_dict_and_whole_module_with_a_spec(tmp_path):
    torch.manual_seed(0)
    state = DigitsResNet(widths=(4, 8)).state_dict()
    spec = {"channels": 1, "size": [16, 16], "mean": [0.1], "std": [0.3], "class_names": [f"d{i}" for i in range(10)]}
    path = tmp_path / "digits.pt"
    torch.save({"state_dict": state, "spec": spec}, path)  # no arch: recognised as a digits model
    for loaded in (load(str(path)), load("digits", weights=str(path))):
        assert loaded.spec == InputSpec(1, (16, 16), (0.1,), (0.3,), tuple(f"d{i}" for i in range(10)))
        _assert_same_weights(loaded.model, state)
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(7))
    module(torch.zeros(1, 3, 64, 64))
    whole = tmp_path / "whole.pt"
    torch.save({"model": module, "spec": InputSpec.from_dict(SPEC)}, whole)
    _assert_stored_spec(load(str(whole)).spec)


def test_stored_specs_that_do_not_fit_are_refused_naming_the_file(tmp_path, resnet_state):
    wrong_count = tmp_path / "count.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state, "spec": SPEC | {"class_names": NAMES[:5]}},
               wrong_count)
    with pytest.raises(ValueError, match=r"count\.pt: its spec has 5 classes but the model has 7 outputs"):
        load(str(wrong_count))
    bad = tmp_path / "bad.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state, "spec": SPEC | {"colour": "rgb"}}, bad)
    with pytest.raises(ValueError, match=r"bad\.pt: its 'spec' is not a valid InputSpec .*colour"):
        load(str(bad))
    odd = tmp_path / "odd.pt"
    torch.save({"arch": "resnet18", "state_dict": resnet_state, "spec": "64x64"}, odd)
    with pytest.raises(ValueError, match=r"odd\.pt: 'spec' must be an InputSpec or its dict"):
        load(str(odd))
