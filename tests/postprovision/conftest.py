"""Shared fixtures for the post-provision checks.

Run against any inventory, e.g.:
    pytest tests/postprovision --hosts='ansible://xpulab_nodes' --ansible-inventory=lab
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import testinfra

FACT_DIR = "/etc/ansible/facts.d"


def read_fact(host: Any, name: str) -> dict[str, Any]:
    """Return a local fact written by an xpulab role, or fail the test."""
    path = f"{FACT_DIR}/{name}.fact"
    fact = host.file(path)
    if not fact.exists:
        pytest.fail(f"{path} is missing: the role that writes it has not run on this host")
    return json.loads(fact.content_string)


PODMAN_CONNECTIONS = {"podman", "containers.podman.podman", "xpulab.gpu.podman_pipelined"}


@pytest.fixture(scope="module")
def host(_testinfra_host: Any) -> Any:
    """The host under test, on testinfra's native podman backend when the
    inventory reaches it through the podman connection plugin (testinfra
    would otherwise run every command through an Ansible module)."""
    backend = _testinfra_host.backend
    if getattr(backend, "NAME", "") == "ansible":
        hostvars = backend.ansible_runner.get_variables(backend.host)
        if _plain(hostvars.get("ansible_connection")) in PODMAN_CONNECTIONS:
            return testinfra.get_host(f"podman://{_plain(hostvars.get('ansible_host', backend.host))}")
    return _testinfra_host


def _plain(value: Any) -> Any:
    """ansible-inventory --list wraps values an inventory plugin marked unsafe."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return value["__ansible_unsafe"]
    return value


@pytest.fixture(scope="module")
def ffmpeg_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, "xpulab_ffmpeg")


@pytest.fixture(scope="module")
def ffmpeg_prefix(ffmpeg_fact: dict[str, Any]) -> str:
    return str(ffmpeg_fact["current_prefix"])
