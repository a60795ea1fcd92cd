"""Sharding a render over 2 CPU processes (torchrun, gloo) gives the single-process images, bitwise."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ARGS = ["visualize", "--quiet", "-o", "1", "-o", "4", "-o", "layers.1.conv2:3", "--seeds", "0,1",
        "--steps", "6", "--methods", "relu,proxygrad"]


def _run(command, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*command, *ARGS, "--out", str(out)], check=True, capture_output=True, env=env, timeout=300)
    return json.loads((out / "results.json").read_text())


def test_torchrun_two_processes_equals_one(tmp_path):
    single = _run([sys.executable, "-m", "proxygrad.cli"], tmp_path / "one")
    sharded = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                    "29517", "-m", "proxygrad.cli"], tmp_path / "two")
    assert sharded["settings"]["processes"] == 2 and single["settings"]["processes"] == 1
    assert len(sharded["images"]) == len(single["images"]) == 12
    for a, b in zip(single["images"], sharded["images"]):
        assert (a["method"], a["objective"], a["seed"]) == (b["method"], b["objective"], b["seed"])
        assert abs(a["activation"] - b["activation"]) <= 1e-5 * max(1.0, abs(a["activation"]))
        pixels_a = np.asarray(Image.open(tmp_path / "one" / a["file"]))
        pixels_b = np.asarray(Image.open(tmp_path / "two" / b["file"]))
        assert np.array_equal(pixels_a, pixels_b)
