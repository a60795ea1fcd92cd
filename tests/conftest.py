"""Shared test set-up: a headless Chromium for the HTML report tests (Debian's package, installed if missing)."""
import os
import shutil
import subprocess

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _install_chromium() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, capture_output=True, env=env,
                   timeout=900)


@pytest.fixture(scope="session")
def chromium():
    """Path of a headless-capable Chromium; installs Debian's package when missing (root with apt-get)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("no chromium, and no root apt-get to install Debian's chromium package")
        _install_chromium()
        path = shutil.which("chromium")
    return path
