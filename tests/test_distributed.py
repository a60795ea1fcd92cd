"""Sharding a render over 2 CPU processes (torchrun, gloo) gives the single-process images, bitwise."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ARGS = ["visualize", "--quiet", "-o", "1", "-o", "4", "-o", "layers.1.conv2:3", "--seeds", "0,1",
        "--steps", "6", "--methods", "relu,proxygrad", "--transparency"]


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
        for key in ("file", "alpha"):  # the images and their transparency maps (gathered from the ranks)
            pixels_a = np.asarray(Image.open(tmp_path / "one" / a[key]))
            pixels_b = np.asarray(Image.open(tmp_path / "two" / b[key]))
            assert np.array_equal(pixels_a, pixels_b)


def test_sweep_over_two_processes_records_the_same_cells(tmp_path):
    args = ["sweep", "--quiet", "--classes", "2,5", "--seeds", "0,1", "--slopes", "0,0.1", "--steps", "4",
            "--regularizations", "paper", "--gallery-classes", "5", "--gallery-steps", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outputs = {}
    for name, launcher in (("one", [sys.executable, "-m", "proxygrad.cli"]),
                           ("two", [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                                    "--master-port", "29518", "-m", "proxygrad.cli"])):
        subprocess.run([*launcher, *args, "--out", str(tmp_path / name)], check=True, capture_output=True, env=env,
                       timeout=300)
        outputs[name] = {json.loads(line)["key"]: json.loads(line) for line in
                         (tmp_path / name / "cells.jsonl").read_text().splitlines()}
    # 3 sweep cells; gallery: relu once + leaky and proxygrad at the 2 quick-preset gallery slopes
    assert outputs["one"].keys() == outputs["two"].keys() and len(outputs["one"]) == 3 + 5
    for key, row in outputs["one"].items():
        other = outputs["two"][key]
        assert row["objectives"] == other["objectives"] and row["predicted"] == other["predicted"]
        assert np.allclose(row["activation"], other["activation"], rtol=1e-5, atol=1e-5)
    assert (tmp_path / "two" / "report.html").is_file()
