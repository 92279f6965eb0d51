"""Bad input: each case stops in preflight with a clear message, before any task changes the node.

Each test runs site.yml through ansible_runner.run() against a fresh podman
node and asserts on the job events of that node: the task that failed, its
message, and that no task reported a change on the node before it (plus a
snapshot of packages, users and the paths xpulab writes, before and after).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Job, Node, inventory, run


def site_on_fresh_node(tmp_path: Path, make_node: Callable[..., Node], extravars: dict[str, Any]) -> tuple[Job, str]:
    node = make_node()
    before = node.snapshot()
    job = run(tmp_path, "site.yml", inventory(tmp_path, [node.name]), extravars)
    assert job.status == "failed" and job.rc != 0, job.stdout[-3000:]
    assert job.node_changes(node.name) == [], job.node_changes(node.name)
    assert node.snapshot() == before
    return job, node.name


def test_unfilled_lab_inventory(tmp_path: Path) -> None:
    job = run(tmp_path, "site.yml", ROOT / "inventories" / "lab" / "hosts.yml")
    task, msg = job.failure("localhost")
    assert task == "Check that the lab inventory is not the shipped example"
    assert "still holds the example nodes (node-01.example.invalid, node-02.example.invalid)" in msg
    assert not [e for e in job.events if (e.get("event_data") or {}).get("host", "").endswith(".invalid")]


def test_unknown_ffmpeg_version(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    job, host = site_on_fresh_node(tmp_path, make_node, {"ffmpeg_version": "9.9.9"})
    task, msg = job.failure(host)
    assert task == "Check that the FFmpeg version is known"
    assert "FFmpeg version '9.9.9' is not in ffmpeg_versions" in msg and "Nothing was changed" in msg


def test_untested_torchcodec_combination(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    job, host = site_on_fresh_node(tmp_path, make_node, {"torchcodec_version": "0.99.0"})
    task, msg = job.failure(host)
    assert task == "Check the combination against the compatibility table"
    assert "Untested combination" in msg and "TorchCodec plugin 0.99.0 with torch 2.14.1" in msg


@pytest.mark.parametrize(("extravars", "names"), [
    ({"torchcodec_method": "sorce"}, ["torchcodec_method", "sorce"]),
    ({"ffmpeg_keep_releases": "two"}, ["ffmpeg_keep_releases", "int"]),
    ({"pytorch_extra_packages": {"numpy": 1}}, ["pytorch_extra_packages", "list"]),
    ({"decode_smoke_fail_on_error": "perhaps"}, ["decode_smoke_fail_on_error", "bool"]),
], ids=["typo-method", "int-option", "list-option", "bool-option"])
def test_bad_option(tmp_path: Path, make_node: Callable[..., Node], extravars: dict[str, Any],
                    names: list[str]) -> None:
    job, host = site_on_fresh_node(tmp_path, make_node, extravars)
    task, msg = job.failure(host)
    assert task.startswith("Check every role's inputs against its argument spec"), (task, msg)
    for name in names:
        assert name in msg, msg
