"""PFNet18 against its spec (shared/specs/pfnet18.md): parameter count, fixed kernels, layout, initialization."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import proxygrad
from proxygrad.models.pfnet import PFM, FixedDepthwise, PFNet18, gaussian_kernel, pfnet18, predefined_kernels

SIXTH, TWELFTH = 1 / 6, 1 / 12
SPEC_KERNELS = {  # the spec's values of the positive kernels, rows top to bottom
    "+U0": [[-SIXTH, 0, SIXTH]] * 3,
    "+U90": [[-SIXTH] * 3, [0] * 3, [SIXTH] * 3],
    "+U45": [[-.285868, -.107066, 0], [-.107066, 0, .107066], [0, .107066, .285868]],
    "+U135": [[0, -.107066, -.285868], [.107066, 0, -.107066], [.285868, .107066, 0]],
    "+E0": [[-TWELFTH, SIXTH, -TWELFTH]] * 3,
    "+E90": [[-TWELFTH] * 3, [SIXTH] * 3, [-TWELFTH] * 3],
    "+E45": [[-.142189, -.053905, .166667], [-.053905, .166667, -.053905], [.166667, -.053905, -.142189]],
    "+E135": [[.166667, -.053905, -.142189], [-.053905, .166667, -.053905], [-.142189, -.053905, .166667]],
}
ORDER = ["U0", "U45", "U90", "U135", "E0", "E45", "E90", "E135"]


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_parameter_count_for_102_classes_is_the_papers():
    assert trainable(pfnet18(num_classes=102)) == 1_464_518


def test_pfm_parameters_follow_the_module_formula():
    # BN over n_in * f channels (2 each), the 1x1 conv (n_in * f * n_out), BN over n_out (2 each)
    for n_in, n_out, f in ((3, 64, 16), (64, 128, 1), (256, 512, 1)):
        assert trainable(PFM(n_in, n_out, f)) == 2 * n_in * f + n_in * f * n_out + 2 * n_out


def test_the_16_kernels_match_the_spec_in_order_and_sign():
    kernels = predefined_kernels()
    assert kernels.shape == (16, 3, 3)
    for i, name in enumerate(ORDER):
        positive = torch.tensor(SPEC_KERNELS[f"+{name}"])
        torch.testing.assert_close(kernels[2 * i + 1], positive, atol=1e-6, rtol=0)
        torch.testing.assert_close(kernels[2 * i], -positive, atol=1e-6, rtol=0)
    torch.testing.assert_close(kernels.sum((1, 2)), torch.zeros(16), atol=1e-6, rtol=0)  # zero mean
    torch.testing.assert_close(kernels.abs().sum((1, 2)), torch.ones(16))  # L1 norm 1


def test_blur_kernel_is_the_sigma_075_gaussian():
    expected = torch.tensor([[.0509, .1238, .0509], [.1238, .3012, .1238], [.0509, .1238, .0509]])
    torch.testing.assert_close(gaussian_kernel(), expected, atol=6e-5, rtol=0)
    assert gaussian_kernel().sum().item() == pytest.approx(1.0)


def test_depthwise_channels_take_kernel_i_mod_16_and_carry_the_stride():
    kernels = predefined_kernels()
    layer = FixedDepthwise(3, 16, kernels, stride=2)
    x = torch.randn(2, 3, 9, 9)
    weight = torch.stack([kernels[i % 16] for i in range(48)])[:, None]  # output channel i sees input i // 16
    expected = torch.cat([F.conv2d(x[:, c:c + 1], weight[16 * c:16 * c + 16], stride=2, padding=1)
                          for c in range(3)], dim=1)
    torch.testing.assert_close(layer(x), expected)
    later = FixedDepthwise(64, 1, kernels)
    assert [int(torch.nonzero((later.weight[i, 0] == kernels).all(-1).all(-1))) for i in range(20)] == \
        [i % 16 for i in range(20)]


def test_fixed_filters_are_neither_parameters_nor_state_nor_trained():
    model = pfnet18(num_classes=10)
    assert not any("depthwise" in name or "shortcut.0" in name for name, _ in model.named_parameters())
    assert not any("depthwise" in key for key in model.state_dict())
    before = model.layer2[0].shortcut[0].weight.clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4)).backward()
    optimizer.step()
    assert torch.equal(model.layer2[0].shortcut[0].weight, before)
    assert torch.equal(model.stem.depthwise.weight[:16, 0], predefined_kernels())


def test_layout_shapes_and_rectifiers():
    model = pfnet18(num_classes=102).eval()
    shapes = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n in ("maxpool", "layer1", "layer2", "layer3", "layer4")]
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 102)
    for hook in hooks:
        hook.remove()
    assert shapes == {"maxpool": (1, 64, 56, 56), "layer1": (1, 64, 56, 56), "layer2": (1, 128, 28, 28),
                      "layer3": (1, 256, 14, 14), "layer4": (1, 512, 7, 7)}
    small = PFNet18(10, small_input=True).eval()
    assert isinstance(small.maxpool, nn.Identity) and small.stem.depthwise.stride == 1
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # stem PFM + stem ReLU + 8 blocks x (2 PFMs + 2) = 34 rectifiers, all changed by convert
    record = proxygrad.convert(pfnet18(num_classes=3), "proxygrad", 0.1)
    assert record.modules == 34


def test_kaiming_normal_initialization_of_the_trainable_convolutions():
    torch.manual_seed(0)
    model = pfnet18(num_classes=10)
    weight = model.layer4[1].pfm2.pointwise.weight  # 512 x 512 x 1 x 1, fan_out = 512
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)
    assert abs(weight.mean().item()) < 0.002
    assert torch.equal(model.layer1[0].pfm1.bn2.weight, torch.ones(64))


def test_load_builds_pfnet18_and_reads_its_weights(tmp_path):
    loaded = proxygrad.load("pfnet18", num_classes=7)
    assert isinstance(loaded.model, PFNet18) and loaded.spec.num_classes == 7 and loaded.spec.channels == 3
    path = tmp_path / "pf.pt"
    torch.save({"arch": "pfnet18", "state_dict": loaded.model.state_dict()}, path)
    again = proxygrad.load(str(path))
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(),
                                                 loaded.model.state_dict().values()))
    with pytest.raises(ValueError, match="no downloadable weights"):
        proxygrad.load("pfnet18", weights="IMAGENET1K_V1")
