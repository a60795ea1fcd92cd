"""proxygrad.train.loop: the schedule, LAMB's coupled decay, learning, checkpoints and exact resume, model.pt."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest
import torch
import torch.nn as nn

import proxygrad
from proxygrad import cli
from proxygrad.train import make_config, step_lr, train
from proxygrad.train.data import CenterCrop, prepare
from proxygrad.train.loop import CHECKPOINT, build_model, evaluate, make_optimizer
from proxygrad.train.dist import DistEnv

from .test_train_data import make_imagefolder


@pytest.fixture(scope="module")
def colors(tmp_path_factory):
    """An ImageFolder tree of 3 color classes, 8 training and 4 test images each (20 x 16 px)."""
    return make_imagefolder(tmp_path_factory.mktemp("colors"))


def tiny_config(root, **overrides):
    settings = dict(dataset="imagefolder", root=str(root), arch="pfnet18", epochs=2, batch_size=8, image_size=16,
                    resize=0, eval_every=1)
    return make_config(**{**settings, **overrides})


class OneThread:
    """Run torch on one intra-op thread (as the OMP_NUM_THREADS=1 subprocess does), then restore."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def test_step_lr_follows_the_derived_schedule_down_to_3e_6():
    lrs = [step_lr(e, 300, 0.003, 3e-6) for e in range(300)]
    boundaries = {0: 3e-3, 180: 3e-3 / math.sqrt(10), 240: 3e-4, 252: 3e-4 / math.sqrt(10), 264: 3e-5,
                  276: 3e-5 / math.sqrt(10), 288: 3e-6}
    for epoch, value in boundaries.items():
        assert lrs[epoch] == pytest.approx(value, rel=1e-12)
        if epoch:
            assert lrs[epoch - 1] > lrs[epoch]
    assert len(set(lrs)) == 7 and lrs[-1] == pytest.approx(3e-6) and lrs[179] == 3e-3
    assert step_lr(1, 2, 0.003, 3e-6) == pytest.approx(3e-6)  # short runs still end at final_lr


def test_lamb_applies_weight_decay_coupled_before_the_trust_ratio_and_does_not_clip():
    """Two LAMB steps against the LAMB paper's formulas with decay inside the update (You et al., Alg. 2)."""
    cfg = make_config("digits", weight_decay=1.0, lr=0.003)
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(5, 4, dtype=torch.float64))
    opt = make_optimizer(nn.ParameterList([w]), cfg)
    assert opt.defaults["max_grad_norm"] is None and opt.defaults["decoupled_decay"] is False
    expected, m, v = w.detach().clone(), torch.zeros_like(w), torch.zeros_like(w)
    b1, b2 = cfg.betas
    for t, scale in ((1, 1000.0), (2, 30.0)):  # large gradients: a clip at norm 1 would change the result
        g = torch.randn_like(w) * scale
        w.grad = g.clone()
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        adam = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + cfg.eps)
        update = adam + cfg.weight_decay * expected
        expected = expected - cfg.lr * (expected.norm() / update.norm()) * update
        torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-14)


def test_build_model_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = (build_model("pfnet18", 5, seed) for seed in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.fc.weight, b.fc.weight) and not torch.equal(a.fc.weight, c.fc.weight)


def test_a_small_network_learns_the_color_classes(colors, tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))
    cfg = tiny_config(colors, epochs=6, batch_size=4, eval_every=3, lr=0.03, final_lr=0.003, mode="proxygrad",
                      slope=0.1)
    results = train(cfg, tmp_path, progress=False, model=net)
    assert results["test_accuracy"] == 1.0 and results["data"]["train_images"] == 24
    assert type(net[1]).__name__ == "ProxyGradReLU"  # converted in place
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds" and len(rows) == 7
    assert [r.split(",")[5] != "" for r in rows[1:]] == [False, False, True, False, False, True]
    losses = [float(r.split(",")[2]) for r in rows[1:]]
    assert losses[-1] < losses[0] / 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["mode"] == "proxygrad" and saved["versions"]["torch"] == torch.__version__


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from proxygrad.train import make_config, train

    cfg = make_config(dataset="imagefolder", root=sys.argv[1], arch="pfnet18", epochs=4, batch_size=8,
                      image_size=16, resize=0, eval_every=2, mode="proxygrad", slope=0.1)

    def die(epoch, row):  # SIGKILL right after epoch 2's checkpoint: no cleanup, no results.json
        if epoch + 1 == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    train(cfg, sys.argv[2], progress=False, on_epoch_end=die)
""")


def test_a_killed_run_resumes_to_bitwise_the_same_weights(colors, tmp_path):
    cfg = tiny_config(colors, epochs=4, eval_every=2, mode="proxygrad", slope=0.1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(colors), str(tmp_path / "killed")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)["epoch"] == 2
    assert not (tmp_path / "killed" / "results.json").exists()
    with OneThread():
        resumed = train(cfg, tmp_path / "killed", progress=False)
        straight = train(cfg, tmp_path / "straight", progress=False)
    a = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(x, y) for s, t in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values())
               for x, y in zip(s.values(), t.values()))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(a["history"]) == strip(b["history"]) and len(a["history"]) == 4
    assert resumed["test_accuracy"] == straight["test_accuracy"]


def test_worker_processes_do_not_change_the_result_and_other_settings_are_not_resumed(colors, tmp_path):
    with OneThread():
        train(tiny_config(colors, epochs=1), tmp_path / "a", progress=False, workers=2)
        train(tiny_config(colors, epochs=1), tmp_path / "b", progress=False, workers=0)
    a, b = (torch.load(tmp_path / d / CHECKPOINT, weights_only=True)["model"] for d in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # augmentation draws depend on (seed, epoch, index) only
    with pytest.raises(ValueError, match=r"other settings \(lr: 0.003 -> 0.01\)"):
        train(tiny_config(colors, epochs=1, lr=0.01), tmp_path / "a", progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_on_a_gpu_writes_a_cpu_loadable_model(colors, tmp_path):
    results = train(tiny_config(colors, epochs=2, mode="proxygrad", slope=0.1), tmp_path, device="cuda",
                    progress=False)
    assert results["device"].startswith("cuda")
    loaded = proxygrad.load(str(tmp_path / "model.pt"))
    assert next(loaded.model.parameters()).device.type == "cpu"


def test_tensorboard_gets_the_metrics_when_installed(colors, tmp_path, monkeypatch):
    calls = []

    class Writer:  # stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is optional)
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", log_dir, purge_step))

        def add_scalar(self, tag, value, step):
            calls.append((tag, step))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    train(tiny_config(colors, epochs=2, eval_every=2), tmp_path, progress=False)
    assert calls[0] == ("init", str(tmp_path / "tensorboard"), None) and calls[-1] == ("close",)
    assert {("train_loss", 1), ("lr", 2), ("test_accuracy", 2)} <= set(calls) and ("test_accuracy", 1) not in calls


def test_model_file_is_the_forward_network_with_its_normalization(colors, tmp_path):
    cfg = tiny_config(colors, epochs=1, mode="leaky", slope=0.2)
    results = train(cfg, tmp_path, progress=False)
    loaded = proxygrad.load(str(tmp_path / "model.pt"))
    assert loaded.spec.mean == pytest.approx(results["data"]["mean"]) and loaded.spec.size == (16, 16)
    assert loaded.spec.class_names == ("class0", "class1", "class2")
    rectifiers = [m for m in loaded.model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert len(rectifiers) == 34 and all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2
                                         for m in rectifiers)
    assert not any(type(m).__name__ == "ProxyGradReLU" for m in loaded.model.modules())
    data = prepare(cfg.data, cfg.seed)
    _, accuracy = evaluate(loaded.model, CenterCrop(data.test, 16, data.mean, data.std), DistEnv())
    assert accuracy == results["test_accuracy"]


def test_train_command_writes_the_run_directory(colors, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--dataset", "imagefolder", "--root", str(colors), "--arch", "pfnet18", "--epochs", "1",
                     "--batch-size", "8", "--image-size", "16", "--resize", "0", "--mode", "proxygrad", "--slope",
                     "0.2", "--quiet", "--out", str(out)])
    assert code == 0
    assert {"checkpoint.pt", "metrics.csv", "metrics.png", "model.pt", "results.json"} <= {p.name for p in
                                                                                           out.iterdir()}
    assert "test accuracy" in capsys.readouterr().out
    code = cli.main(["train", "--dataset", "caltech101", "--root", str(tmp_path), "--quiet"])
    assert code == 2 and "101_ObjectCategories" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "digits", "--mode", "leaky", "--slope", "-1"]) == 2
    assert "slope must be a finite number >= 0" in capsys.readouterr().err
    assert cli.main(["train", "--preset", "digits", "--slope", "0.1"]) == 2
    assert "mode relu takes no slope" in capsys.readouterr().err
