"""Shared fixtures for the post-provision checks.

Run against any inventory, e.g.:
    pytest tests/postprovision --hosts='ansible://xpulab_nodes' --ansible-inventory=lab
"""

from __future__ import annotations

import json
from typing import Any

import pytest

FACTS_DIR = "/etc/ansible/facts.d"


def read_fact(host: Any, name: str) -> dict[str, Any]:
    """Return a local fact written by an xpulab role, or fail the test."""
    path = f"{FACTS_DIR}/{name}.fact"
    fact = host.file(path)
    if not fact.exists:
        pytest.fail(f"{path} is missing: the role that writes it has not run on this host")
    return json.loads(fact.content_string)


@pytest.fixture(scope="module")
def ffmpeg_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, "xpulab_ffmpeg")


@pytest.fixture(scope="module")
def ffmpeg_prefix(ffmpeg_fact: dict[str, Any]) -> str:
    return str(ffmpeg_fact["current_prefix"])
