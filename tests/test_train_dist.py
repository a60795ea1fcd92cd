"""proxygrad.train.dist: DistributedDataParallel (gloo, 2 CPU processes) equals one process on the same global
batches; the sweep's round-robin shares."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp
import torch.nn as nn

from proxygrad.train import dist, make_config, train

from .test_train_data import make_imagefolder


def tiny_net() -> nn.Module:
    """No BatchNorm: PyTorch has no SyncBatchNorm on CPUs, and per-process statistics would differ."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def config(root):
    # 24 images, global batches of 9: 9 + 9 + 6, split 5/4, 5/4, 3/3 over two processes (uneven shards)
    return make_config(dataset="imagefolder", root=str(root), epochs=3, batch_size=9, image_size=16, resize=0,
                       eval_every=3, mode="proxygrad", slope=0.2, lr=0.01)


def _worker(rank: int, root: str, out: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    env = dist.init("cpu")
    try:
        net = tiny_net()
        results = train(config(root), out, env=env, model=net, progress=False)
        torch.save({"state": net.state_dict(), "accuracy": results["test_accuracy"]}, f"{out}/rank{rank}.pt")
    finally:
        dist.close(env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_on_two_processes_equals_one_process_on_the_same_global_batches(tmp_path):
    root = make_imagefolder(tmp_path / "data")
    mp.spawn(_worker, args=(str(root), str(tmp_path / "ddp"), _free_port()), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = tiny_net()
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    results = train(config(root), tmp_path / "single", model=single, progress=False)
    for key, value in single.state_dict().items():
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key])  # the processes agree exactly
        torch.testing.assert_close(ranks[0]["state"][key], value, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(value, initial[key], atol=1e-3)  # and training moved every tensor
    assert ranks[0]["accuracy"] == ranks[1]["accuracy"] == results["test_accuracy"]
    saved = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(saved["model"][k], ranks[0]["state"][k]) for k in saved["model"])
    assert (tmp_path / "ddp" / "results.json").is_file()


def test_sweep_shares_are_round_robin_and_cover_everything():
    items = list(range(10))
    shares = [dist.my_share(items, r, 3) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
