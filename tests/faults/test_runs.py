"""Faults during a run: a second run at the same time, and a disk too full for a build.

Driven through ansible_runner (run and run_async) against fresh podman nodes;
`site.yml --tags ffmpeg` keeps each case to preflight plus the ffmpeg role.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml  # type: ignore[import-untyped]
from harness import ENV, ROOT, Node, inventory, run


def empty_cache(tmp_path: Path) -> dict[str, str]:
    """An empty controller artifact cache, so the node must build FFmpeg."""
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    return {"XPULAB_ARTIFACT_CACHE": str(tmp_path / "artifacts")}


def test_second_run_stops_naming_the_holder(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    node = make_node()
    hosts = inventory(tmp_path, [node.name])
    (tmp_path / "a").mkdir()
    cancel = threading.Event()
    thread, first = ansible_runner.run_async(
        private_data_dir=str(tmp_path / "a"), project_dir=str(ROOT), playbook=str(ROOT / "site.yml"),
        inventory=str(hosts), tags="ffmpeg", envvars={**ENV, **empty_cache(tmp_path)}, quiet=True,
        cancel_callback=cancel.is_set,
    )
    try:
        holder = None
        for _ in range(300):  # the first run takes the lock after its preflight, then builds for minutes
            probe = node.sh("cat /var/lib/xpulab/run.lock/holder.json", check=False)
            if probe.returncode == 0 and probe.stdout.strip():
                holder = json.loads(probe.stdout)
                break
            assert thread.is_alive(), "the first run ended before it held the lock"
            time.sleep(1)
        assert holder is not None, "the first run never took the lock"
        second = run(tmp_path, "site.yml", hosts, tags="ffmpeg", env=empty_cache(tmp_path))
        task, msg = second.failure(node.name)
        assert task == "Stop when another run holds the lock"
        assert f"{node.name} is locked by another xpulab run, so this run stops here and changed nothing" in msg
        assert f"run {holder['id']} from {holder['controller']} (ansible-playbook pid {holder['pid']}" in msg
        assert second.node_changes(node.name) == []
        assert thread.is_alive(), "the first run should still be building"
        after = json.loads(node.sh("cat /var/lib/xpulab/run.lock/holder.json").stdout)
        assert after == holder  # the lock still names the first run
    finally:
        cancel.set()
        thread.join(120)


def test_full_build_root(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    node = make_node(mounts=["--mount", "type=tmpfs,destination=/var/lib/xpulab/build,tmpfs-size=8m"])
    job = run(tmp_path, "site.yml", inventory(tmp_path, [node.name]), tags="ffmpeg", env=empty_cache(tmp_path))
    task, msg = job.failure(node.name)
    assert task == "Check there is room for what the role writes"
    assert f"{node.name} has not enough free disk space, nothing was changed" in msg
    assert "the FFmpeg build tree at /var/lib/xpulab/build/ffmpeg needs 2048 MiB, found 8 MiB free on /var/lib/xpulab/build" in msg
    assert "point ffmpeg_build_root at a filesystem with room" in msg
    assert node.sh("test -e /opt/ffmpeg", check=False).returncode != 0


def test_full_install_root(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    node = make_node(mounts=["--mount", "type=tmpfs,destination=/opt/ffmpeg,tmpfs-size=4m"])
    job = run(tmp_path, "site.yml", inventory(tmp_path, [node.name]), tags="ffmpeg")
    task, msg = job.failure(node.name)
    assert task == "Check there is room for what the role writes"
    assert "the FFmpeg release at /opt/ffmpeg needs 512 MiB, found 4 MiB free on /opt/ffmpeg" in msg
    assert node.sh("ls -A /opt/ffmpeg").stdout == ""


def kill_builder_mid_build(tmp_path: Path, builder: Node, hosts: Path, kind: str, wait: int, finish: int,
                           **run: Any) -> Any:
    """site.yml in the background until builder starts building kind (its build.log appears within wait
    seconds), then the builder dies (unreachable from then on); returns the finished job (its events)."""
    cancel = threading.Event()
    (tmp_path / "job").mkdir()
    thread, job = ansible_runner.run_async(
        private_data_dir=str(tmp_path / "job"), project_dir=str(ROOT), playbook=str(ROOT / "site.yml"),
        inventory=str(hosts), quiet=True, cancel_callback=cancel.is_set, **run,
    )
    try:
        for _ in range(wait):
            if builder.sh(f"ls /var/lib/xpulab/build/{kind}/*/build.log", check=False).returncode == 0:
                break
            assert thread.is_alive(), (f"the run ended before the {kind} build started:\n"
                                       + (job.stdout.read()[-4000:] if job.stdout else ""))
            time.sleep(1)
        else:
            pytest.fail(f"the builder never started building {kind}")
        builder.remove()
        thread.join(finish)
        assert not thread.is_alive(), "the run did not finish"
    finally:
        cancel.set()
        thread.join(60)
    return job


@pytest.mark.slow
def test_builder_killed_after_it_was_picked(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """Two nodes of one fingerprint, no artifact: the builder dies mid-build, the other node builds."""
    builder, other = make_node("a"), make_node("b")
    hosts = inventory(tmp_path, [builder.name, other.name])
    small = {"ffmpeg_extra_configure_flags": ["--disable-everything"]}  # a short build, a fingerprint of its own
    job = kill_builder_mid_build(tmp_path, builder, hosts, "ffmpeg", 900, 1500, tags="ffmpeg", extravars=small,
                                 envvars={**ENV, **empty_cache(tmp_path)})
    events = [e for e in job.events if (e.get("event_data") or {}).get("host") == other.name]
    tasks = [e["event_data"]["task"] for e in events if e["event"] == "runner_on_ok"]
    assert "Say which node builds in place of a failed builder" in tasks
    assert other.sh("test -x /opt/ffmpeg/current/bin/ffmpeg", check=False).returncode == 0
    assert job.status == "failed"  # the builder's failure stays visible


def seeded_cache(tmp_path: Path) -> dict[str, str]:
    """A controller artifact cache holding (hard links to) the FFmpeg artifacts already built, nothing else."""
    cache = tmp_path / "artifacts"
    cache.mkdir(exist_ok=True)
    for built in (Path.home() / ".cache" / "xpulab" / "artifacts").glob("ffmpeg-*"):
        if built.is_file() and not (cache / built.name).exists():
            os.link(built, cache / built.name)
    return {"XPULAB_ARTIFACT_CACHE": str(cache)}


@pytest.mark.slow
def test_torchcodec_builder_killed_after_it_was_picked(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """Two nodes of one TorchCodec fingerprint, no wheel: the builder dies mid-build, the other node builds."""
    builder, other = make_node("a"), make_node("b")
    hosts = inventory(tmp_path, [builder.name, other.name])
    # The source method, with a build setting of this case's own: a fingerprint no cache holds. The
    # sandbox's fixture commit of refs/pull/558/head is made a tested combination with molecule's
    # torchcodec scenario's row for it: the compatibility check passes and the build starts.
    fixture = yaml.safe_load((ROOT / "inventories" / "sandbox" / "group_vars" / "all" / "torchcodec_fixture.yml")
                             .read_text())["xpulab_torchcodec_fixture_commits"]["pull_558"]
    rows = yaml.safe_load((ROOT / "molecule" / "torchcodec" / "vars" / "main.yml")
                          .read_text())["torchcodec_fixture_rows"]
    source = {"torchcodec_method": "source",
              "torchcodec_compat_extra": [row for row in rows if row["torchcodec"] == fixture],
              "torchcodec_build_env": {"I_CONFIRM_THIS_IS_NOT_A_LICENSE_VIOLATION": "1",
                                       "TORCHCODEC_DISABLE_COMPILE_WARNING_AS_ERROR": "ON",
                                       "XPULAB_FAULT_CASE": "torchcodec-builder-killed"}}
    env = seeded_cache(tmp_path)
    # intel_gpu, FFmpeg (cached), torch, then the wheel build
    job = kill_builder_mid_build(tmp_path, builder, hosts, "torchcodec", 2700, 2400, extravars=source,
                                 envvars={**ENV, **env})
    events = [e for e in job.events if (e.get("event_data") or {}).get("host") == other.name]
    tasks = [e["event_data"]["task"] for e in events if e["event"] == "runner_on_ok"]
    assert "Say which node builds the TorchCodec wheel in place of a failed builder" in tasks
    records = list(Path(env["XPULAB_ARTIFACT_CACHE"]).glob("torchcodec-*.json"))
    assert [json.loads(r.read_text())["built_on"] for r in records] == [other.name]
    fact = json.loads(other.sh("cat /etc/ansible/facts.d/xpulab_torchcodec.fact").stdout)
    assert fact["method"] == "source" and fact["fingerprint"] in records[0].name
    assert not list(Path(env["XPULAB_ARTIFACT_CACHE"]).glob(".*.part"))
    assert job.status == "failed"  # the builder's failure stays visible
