"""kill -9 of a run in the middle of a long or delicate step, then a plain re-run.

Each case starts site.yml (one role's tag) through ansible_runner against a
fresh podman node; an event handler arms a Kill when the task of interest
starts, which waits for the step's process on the node (and a delay where the
step is long), then SIGKILLs the ansible-playbook process group and every
process of the run on the node. Then: nothing recorded success in between
(the role's local fact and its xpulab_state record), and a plain re-run takes
over the dead run's lock and repairs the node (the role's own check passes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import Job, Kill, Node, inventory, run

TAKEOVER = "Say which run's lock is taken over"


def killed_then_rerun(tmp_path: Path, node: Node, tags: str, kill: Kill, extravars: dict[str, Any] | None = None,
                      env: dict[str, str] | None = None) -> tuple[Job, Job]:
    """The killed run and the plain re-run after it, with the checks every case shares."""
    hosts = inventory(tmp_path, [node.name])
    killed = run(tmp_path, "site.yml", hosts, extravars, tags=tags, env=env, event_handler=kill.handler)
    assert kill.fired.wait(120), f"the kill never fired:\n{killed.stdout[-3000:]}"
    assert killed.status != "successful", killed.stdout[-3000:]
    assert node.sh("test -f /var/lib/xpulab/run.lock/holder.json", check=False).returncode == 0, "no stale lock left"
    role = tags
    assert node.fact(f"xpulab_{role}") is None, f"the killed run recorded {role}'s local fact"
    assert (node.fact(f"xpulab_state_{role}") or {}).get("fingerprint") is None, f"the killed run recorded {role}"
    rerun = run(tmp_path, "site.yml", hosts, extravars, tags=tags, env=env)
    assert rerun.status == "successful", rerun.stdout[-4000:]
    assert rerun.ran(node.name, TAKEOVER), "the re-run did not take over the dead run's lock"
    assert node.fact(f"xpulab_{role}") is not None
    assert (node.fact(f"xpulab_state_{role}") or {}).get("fingerprint")
    assert node.sh("test -e /var/lib/xpulab/run.lock", check=False).returncode != 0, "the re-run kept the lock"
    return killed, rerun


@pytest.mark.slow
def test_kill_during_ffmpeg_build(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    node = make_node()
    cache = tmp_path / "artifacts"
    cache.mkdir()
    small = {"ffmpeg_extra_configure_flags": ["--disable-everything"]}  # a short build, a fingerprint of its own
    kill = Kill(node, "Build FFmpeg as the unprivileged build user", process=r"\bcc1\b|\bgcc\b|\bmake\b", delay=15)
    killed_then_rerun(tmp_path, node, "ffmpeg", kill, small, env={"XPULAB_ARTIFACT_CACHE": str(cache)})
    assert kill.seen, "the build was not running at the kill"
    assert node.sh("/opt/ffmpeg/current/bin/ffmpeg -hide_banner -version", check=False).returncode == 0
    assert len(list(cache.glob("*.json"))) == 1  # one complete artifact record, from the re-run


@pytest.mark.slow
def test_kill_during_ffmpeg_release_swap(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """The cached artifact is installed; the run dies as the staged release is moved into place."""
    node = make_node()
    kill = Kill(node, "Move the staged release into place")
    killed_then_rerun(tmp_path, node, "ffmpeg", kill)
    assert node.sh("/opt/ffmpeg/current/bin/ffmpeg -hide_banner -version", check=False).returncode == 0
    left = node.sh("ls -A /opt/ffmpeg/.releases").stdout.split()
    assert not [d for d in left if d.endswith((".partial", ".old"))], left


@pytest.mark.slow
def test_kill_during_torch_install(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """pip dies while it installs torch into the new venv: the re-run builds a complete one."""
    node = make_node()
    kill = Kill(node, "Install from the lock (pip --require-hashes", process=r"pip.* install", delay=20)
    # pip, not the venv archive a cache of this controller may hold.
    killed_then_rerun(tmp_path, node, "pytorch", kill, {"pytorch_use_artifact_cache": False})
    assert kill.seen, "pip was not running at the kill"
    out = node.sh("runuser -u nobody -- /opt/xpulab/venv/bin/python -c 'import torch; print(torch.__version__)'")
    assert out.stdout.strip().split("+")[0] == "2.14.1"
    target = node.sh("readlink /opt/xpulab/venv").stdout.strip()
    venvs = node.sh("ls -A /opt/xpulab/.venv.d").stdout.split()
    assert venvs == [Path(target).name], venvs  # the killed venv was removed


@pytest.mark.slow
def test_kill_during_torch_venv_unpack(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """tar dies while it unpacks the cached venv archive: the re-run installs a complete venv, no staging left."""
    cache = tmp_path / "artifacts"
    cache.mkdir()
    packer = make_node()
    hosts = inventory(tmp_path, [packer.name])
    packed = run(tmp_path, "site.yml", hosts, tags="pytorch", env={"XPULAB_ARTIFACT_CACHE": str(cache)})
    assert packed.status == "successful", packed.stdout[-4000:]
    assert len(list(cache.glob("pytorch-venv-*.tar.zst.json"))) == 1, "the first node did not pack its venv"
    node = make_node()
    kill = Kill(node, "Unpack the archive into staging, owned by root", process=r"\bzstd\b|\btar\b", delay=2)
    _, rerun = killed_then_rerun(tmp_path, node, "pytorch", kill, env={"XPULAB_ARTIFACT_CACHE": str(cache)})
    assert kill.seen, "tar was not running at the kill"
    assert "Unpack the archive into staging, owned by root" in rerun.node_changes(node.name)
    out = node.sh("runuser -u nobody -- /opt/xpulab/venv/bin/python -c 'import torch; print(torch.__version__)'")
    assert out.stdout.strip().split("+")[0] == "2.14.1"
    target = node.sh("readlink /opt/xpulab/venv").stdout.strip()
    venvs = node.sh("ls -A /opt/xpulab/.venv.d").stdout.split()
    assert venvs == [Path(target).name], venvs  # no staging, no half-unpacked venv
    assert node.sh("ls -A /var/cache/xpulab/artifacts").stdout.split() == []  # the node's copy is gone


@pytest.mark.slow
def test_kill_during_dpkg_of_intel_stack(tmp_path: Path, make_node: Callable[..., Node]) -> None:
    """dpkg dies while it unpacks the Intel stack: the re-run finishes dpkg's work (dpkg --configure -a), then apt."""
    node = make_node()
    kill = Kill(node, "Install the Intel GPU compute and media stack", process=r"^(/usr/bin/)?dpkg ", delay=1)
    hosts = inventory(tmp_path, [node.name])
    killed = run(tmp_path, "site.yml", hosts, tags="intel_gpu", event_handler=kill.handler)
    assert kill.fired.wait(120) and kill.seen, killed.stdout[-3000:]
    interrupted = node.sh("dpkg --audit; ls /var/lib/dpkg/updates", check=False).stdout.strip()
    assert interrupted, "the kill left dpkg clean: nothing to repair"
    assert node.fact("xpulab_intel_gpu") is None
    assert (node.fact("xpulab_state_intel_gpu") or {}).get("fingerprint") is None
    rerun = run(tmp_path, "site.yml", hosts, tags="intel_gpu")
    assert rerun.status == "successful", rerun.stdout[-4000:]
    assert rerun.ran(node.name, TAKEOVER)
    assert "Finish the interrupted dpkg run (dpkg --configure -a)" in rerun.node_changes(node.name)
    assert node.sh("dpkg --audit").stdout.strip() == ""
    packages = node.fact("xpulab_intel_gpu")["packages"]  # type: ignore[index]
    assert "intel-opencl-icd" in packages and "vainfo" in packages
    assert (node.fact("xpulab_state_intel_gpu") or {}).get("fingerprint")
