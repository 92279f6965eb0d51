"""A throwaway podman container of the sandbox's Debian 12 image, for unit tests that need a real node."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/xpulab-debian:12"
PODMAN = str(ROOT / "sandbox" / "bin" / "podman")
NAME_PREFIX = os.environ.get("XPULAB_TEST_NAME_PREFIX", "xpulab-unit-")
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "sandbox" / "containers.conf"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}


def ready() -> bool:
    """Whether podman and the image are here (`make images`)."""
    if shutil.which("podman") is None:
        return False
    return subprocess.run([PODMAN, "image", "exists", IMAGE], env=ENV, check=False, timeout=60).returncode == 0


@contextlib.contextmanager
def container(label: str) -> Iterator[str]:
    """A running container on the host network, removed afterwards; yields its name."""
    name = f"{NAME_PREFIX}{label}-{os.getpid()}"
    subprocess.run([PODMAN, "run", "-d", "--rm", "--name", name, "--network", "host", IMAGE, "sleep", "infinity"],
                   env=ENV, check=True, capture_output=True, timeout=120)
    try:
        yield name
    finally:
        subprocess.run([PODMAN, "rm", "-f", "-t", "0", name], env=ENV, check=False, capture_output=True, timeout=120)
