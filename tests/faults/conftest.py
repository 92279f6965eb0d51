"""Fixtures of the fault suite: fresh podman nodes and a work directory per test."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Node  # noqa: E402


@pytest.fixture
def make_node(request: pytest.FixtureRequest) -> Iterator[Callable[..., Node]]:
    """Start fresh nodes named after the test; all removed afterwards."""
    started: list[Node] = []

    def make(suffix: str = "a", mounts: list[str] | None = None) -> Node:
        slug = re.sub(r"[^a-z0-9]+", "-", request.node.name[5:].lower()).strip("-")[:40]
        name = f"xpulab-fault-{slug}-{suffix}"
        node = Node(name, mounts or []).start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.remove()
