"""Objectives on a hand-made network whose activations are known exactly."""
import pytest
import torch
import torch.nn as nn

from proxygrad.am import objectives as obj
from proxygrad.am.objectives import OUTPUT, batch_scores, check_layers, parse, run_and_capture


class Tiny(nn.Module):
    """conv: channel c of the output = (c + 1) * input; head: logits = [sum, -sum, 2*sum] of conv channel 0."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1))
        self.head = nn.Linear(1, 3, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0], [-1.0], [2.0]]))

    def forward(self, x):
        h = self.conv(x)
        return self.head(h[:, :1].sum(dim=(2, 3)))


def _capture(x):
    net = Tiny()
    return run_and_capture(net, x, x, frozenset({"conv", OUTPUT}))


def test_units_channels_neurons_logits_and_deepdream():
    x = torch.arange(8.0).view(2, 1, 2, 2)  # image 0: 0..3, image 1: 4..7
    capture = _capture(x)
    assert torch.equal(obj.channel("conv", 1).score(capture), torch.tensor([2 * 1.5, 2 * 5.5]))
    assert torch.equal(obj.neuron("conv", 2, 1, 0).score(capture), torch.tensor([3 * 2.0, 3 * 6.0]))
    assert torch.equal(obj.class_logit(2).score(capture), torch.tensor([2 * 6.0, 2 * 22.0]))
    energy = torch.tensor([sum(((c + 1) * v) ** 2 for c in range(3) for v in range(4)) / 12,
                           sum(((c + 1) * v) ** 2 for c in range(3) for v in range(4, 8)) / 12])
    assert torch.allclose(obj.LayerEnergy("conv").score(capture), energy)
    logits = torch.tensor([[6.0, -6.0, 12.0], [22.0, -22.0, 44.0]])
    assert torch.allclose(obj.LogSoftmax(0).score(capture), torch.log_softmax(logits, 1)[:, 0])


def test_composition_sum_scale_negate():
    capture = _capture(torch.randn(3, 1, 2, 2))
    a, b = obj.class_logit(0), obj.channel("conv", 2)
    combined = a + 2.0 * b - obj.class_logit(1)
    expected = a.score(capture) + 2 * b.score(capture) - obj.class_logit(1).score(capture)
    assert torch.allclose(combined.score(capture), expected)
    assert torch.allclose(sum([a, b]).score(capture), a.score(capture) + b.score(capture))
    assert combined.layers == {"conv", OUTPUT}


def test_l2_penalty_is_minus_lambda_squared_norm():
    x = torch.randn(2, 1, 2, 2)
    capture = _capture(x)
    assert torch.allclose(obj.l2_penalty(0.5).score(capture), -0.5 * x.flatten(1).pow(2).sum(1))


def test_batch_scores_fast_path_matches_per_image():
    capture = _capture(torch.randn(3, 1, 2, 2))
    units = [obj.channel("conv", c) for c in (2, 0, 1)]
    fast = batch_scores(units, capture)
    slow = torch.stack([units[i].score(capture)[i] for i in range(3)])
    assert torch.allclose(fast, slow)
    mixed = [obj.channel("conv", 2), obj.class_logit(1), obj.channel("conv", 2)]
    expected = torch.stack([mixed[i].score(capture)[i] for i in range(3)])
    assert torch.allclose(batch_scores(mixed, capture), expected)


def test_hooks_are_removed():
    net = Tiny()
    run_and_capture(net, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), frozenset({"conv", OUTPUT}))
    assert not net.conv._forward_hooks


@pytest.mark.parametrize("text,kind,fields", [
    ("3", obj.Unit, {"layer": OUTPUT, "channel": 3}),
    ("logit:4", obj.Unit, {"layer": OUTPUT, "channel": 4}),
    ("class:cat", obj.Unit, {"layer": OUTPUT, "channel": 1}),
    ("logsoftmax:dog", obj.LogSoftmax, {"index": 2}),
    ("layer4.1.conv2:17", obj.Unit, {"layer": "layer4.1.conv2", "channel": 17, "position": None}),
    ("layer4.1.conv2:17@3,4", obj.Unit, {"layer": "layer4.1.conv2", "channel": 17, "position": (3, 4)}),
    ("layer4", obj.LayerEnergy, {"layer": "layer4"}),
])
def test_parse(text, kind, fields):
    parsed = parse(text, ["ant", "cat", "dog"])
    assert type(parsed) is kind
    for name, value in fields.items():
        assert getattr(parsed, name) == value


@pytest.mark.parametrize("text,match", [("class:kat", "closest.*cat"), ("conv:x", "LAYER:CHANNEL"),
                                        ("conv:1@2", "ROW,COL"), ("", "valid forms")])
def test_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse(text, ["ant", "cat", "dog"])


def test_unknown_layer_suggests_closest():
    with pytest.raises(ValueError, match="closest.*'conv'"):
        check_layers(Tiny(), [parse("cnov:1")])


def test_out_of_range_channel_and_position():
    capture = _capture(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="3 channels"):
        obj.channel("conv", 5).score(capture)
    with pytest.raises(ValueError, match="outside"):
        obj.neuron("conv", 0, 5, 5).score(capture)
    with pytest.raises(ValueError, match="3 channels"):
        batch_scores([obj.channel("conv", 7)], capture)
