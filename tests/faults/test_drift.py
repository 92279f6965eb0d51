"""Drift on a settled node, one thing at a time, and the plain re-run that repairs it.

One node is converged once with site.yml (module fixture; the FFmpeg artifact
comes from the controller cache, so nothing compiles). Each case breaks one
thing a role installed or wrote, then runs site.yml plainly (xpulab_state's
skip on): the owning role must notice and run its tasks (it reports changes),
every other role must skip, and a third run must change nothing. Cases:
every package of every role's package list removed, every file a role
records changed, another torch build of the same version swapped in, the
venv interpreter a dangling link, the oneAPI keyring replaced. Last, a kill -9
while pip reinstalls TorchCodec into the venv, on the same node.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from harness import ROOT, Job, Kill, Node, inventory, run

pytestmark = pytest.mark.slow
ROLES = ROOT / "roles"


def role_list(path: str, key: str) -> list[str]:
    return list(yaml.safe_load((ROLES / path).read_text())[key])


@dataclass(frozen=True)
class Drift:
    """One break: the shell command that makes it, the role that must repair it, the roles it may pull along."""

    owner: str
    command: str
    also: tuple[str, ...] = ()


def removed(package: str, owner: str) -> Drift:
    return Drift(owner, f"dpkg --remove --force-depends {package}")


def changed(path: str, owner: str, also: tuple[str, ...] = ()) -> Drift:
    """path changed: a comment line added (JSON gets a blank line: its content must stay readable for other roles).
    A loop, as dash does not expand a pattern after >>; the case fails when the pattern matches nothing."""
    text = "\\n" if path.endswith((".fact", ".json")) else "\\n# drift\\n"
    return Drift(owner, f"for f in {path}; do test -f \"$f\" && printf '{text}' >> \"$f\" || exit 1; done", also)


VENV = "/opt/xpulab/venv"
KEYRING = "/usr/share/keyrings/oneapi-archive-keyring.gpg"  # its own case: another key put in its place
PACKAGES = {
    **{p: "intel_gpu" for p in role_list("intel_gpu/vars/Debian-12.yml", "__intel_gpu_packages")
       + role_list("intel_gpu/vars/Debian-12.yml", "__intel_gpu_dev_packages")},
    **{p: "gpu_containers" for p in role_list("gpu_containers/vars/Debian.yml", "__gpu_containers_podman_packages")},
    **{p.replace("{{ pytorch_python | basename }}", "python3"): "pytorch"
       for p in role_list("pytorch/vars/Debian.yml", "__pytorch_packages")},
    **{p: "ffmpeg" for p in role_list("ffmpeg/vars/Debian.yml", "__ffmpeg_dev_packages")},
}
# Files each role records (xpulab_state_files of its tasks/main.yml) on a sandbox node;
# test_every_recorded_file_has_a_case keeps this list complete.
FILES = {
    "/etc/ansible/facts.d/xpulab_intel_gpu.fact": "intel_gpu",
    "/etc/apt/sources.list.d/xpulab-debian-non-free.sources": "intel_gpu",
    "/etc/ansible/facts.d/xpulab_gpu_containers.fact": "gpu_containers",
    "/etc/ansible/facts.d/xpulab_ffmpeg.fact": "ffmpeg",
    "/etc/ld.so.conf.d/xpulab-ffmpeg.conf": "ffmpeg",
    # The release's manifest (its directory is named after the version and fingerprint).
    "/opt/ffmpeg/.releases/*/xpulab-manifest.json": "ffmpeg",
    "/etc/profile.d/xpulab-ffmpeg.sh": "ffmpeg",
    "/etc/ansible/facts.d/xpulab_pytorch.fact": "pytorch",
    f"{VENV}/xpulab-source.json": "pytorch",
    "/etc/ansible/facts.d/xpulab_oneapi.fact": "oneapi",
    "/etc/apt/sources.list.d/oneapi.sources": "oneapi",
    "/etc/apt/preferences.d/xpulab-oneapi": "oneapi",
    "/etc/ansible/facts.d/xpulab_torchcodec.fact": "torchcodec",
    # Lock files: their names depend on the versions, Python and platform.
    "/opt/xpulab/locks/pytorch-[0-9]*.txt": "pytorch",
    "/opt/xpulab/locks/torchcodec-[0-9]*.txt": "torchcodec",
    # The set-up of TorchCodec's own test suite (recorded as torchcodec_tests).
    "/etc/xpulab/torchcodec-known-failures.json": "torchcodec_tests",
    "/opt/xpulab/lib/xpulab_torchcodec_tests.py": "torchcodec_tests",
    "/opt/xpulab/locks/torchcodec-tests-*.txt": "torchcodec_tests",
    "/opt/xpulab/test-venv/lib/python3*/site-packages/xpulab-production.pth": "torchcodec_tests",
    "/var/lib/xpulab/torchcodec-tests/src/.git/HEAD": "torchcodec_tests",
    # The node health check: its script, systemd units and local fact.
    "/etc/ansible/facts.d/xpulab_node_health.fact": "node_health",
    "/etc/systemd/system/xpulab-node-health.service": "node_health",
    "/etc/systemd/system/xpulab-node-health.timer": "node_health",
    "/opt/xpulab/lib/xpulab_node_health.py": "node_health",
    # The decode smoke test's script, command, clip list and media.
    "/etc/xpulab/decode-smoke-clips.json": "decode_smoke",
    "/opt/xpulab/lib/xpulab_decode_smoke.py": "decode_smoke",
    "/usr/local/bin/xpulab-decode-smoke": "decode_smoke",
    "/var/cache/xpulab/media/nasa_13013.mp4": "decode_smoke",
    "/var/cache/xpulab/media/nasa_13013_stream3_frames_0-9.rgb24": "decode_smoke",
}
CASES: dict[str, Drift] = {
    **{f"package-{p}": removed(p, owner) for p, owner in PACKAGES.items()},
    **{f"file-{path}": changed(path, owner) for path, owner in FILES.items()},
    # Another build of torch 2.14.1 has another RECORD: a new venv generation is built, and
    # TorchCodec, which lives in the venv, is installed into it.
    "torch-other-build": Drift("pytorch", f"for f in $(readlink -f {VENV})/lib/python3*/site-packages/torch-2.14.1*"
                                          ".dist-info/RECORD; do test -f \"$f\" || exit 1; "
                                          "echo 'torch/_other_build.py,sha256=x,1' >> \"$f\"; done",
                               ("torchcodec",)),
    "venv-python-dangling": Drift("pytorch", f"ln -sfn /nonexistent/python3 $(readlink -f {VENV})/bin/python",
                                  ("torchcodec",)),
    "oneapi-keyring-replaced": Drift("oneapi", f"cp /usr/share/keyrings/debian-archive-keyring.gpg {KEYRING}"),
}


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Path, Path]]:
    """A fault node converged once with site.yml, its inventory and a work directory."""
    work = tmp_path_factory.mktemp("drift")
    node = Node("xpulab-fault-drift-a").start()
    # gpu_containers installs podman only when asked (its default is false): asked here, so the
    # drift case of its package has something to repair.
    hosts = inventory(work, [node.name], {"gpu_containers_install_podman": True})
    try:
        job = run(work, "site.yml", hosts, skip_tags="report")
        assert job.status == "successful", job.stdout[-4000:]
        yield node, work, hosts
    finally:
        node.remove()


def plain(settled: tuple[Node, Path, Path]) -> Job:
    node, work, hosts = settled
    job = run(work, "site.yml", hosts, skip_tags="report")
    assert job.status == "successful", job.stdout[-4000:]
    return job


def test_every_recorded_file_has_a_case(settled: tuple[Node, Path, Path]) -> None:
    """Every file in the node's xpulab_state records has a drift case, under the role that records it."""
    node = settled[0]
    recorded: dict[str, str] = {}
    for name in node.sh("cd /etc/ansible/facts.d && ls xpulab_state_*.fact").stdout.split():
        role = name[len("xpulab_state_"):-len(".fact")]
        recorded.update({path: role for path in (node.fact(name[:-len(".fact")]) or {}).get("files", {})})
    owners = {path: [owner for pattern, owner in FILES.items() if fnmatch.fnmatchcase(path, pattern)]
              for path in recorded
              if not path.endswith(".dist-info/RECORD") and path != KEYRING}  # their own cases, below
    assert {path: owner for path, owner in owners.items() if owner != [recorded[path]]} == {}


@pytest.mark.parametrize("case", list(CASES))
def test_drift_is_repaired_by_its_role(settled: tuple[Node, Path, Path], case: str) -> None:
    node = settled[0]
    drift = CASES[case]
    node.sh(drift.command)
    repair = plain(settled)
    decisions = repair.role_decisions(node.name)
    ran = {role for role, running in decisions.items() if running}
    assert drift.owner in ran, f"{drift.owner} did not notice: {decisions}"
    assert ran <= {drift.owner, *drift.also}, f"roles ran that did not own the drift: {decisions}"
    changes = repair.changed_roles(node.name)
    assert drift.owner in changes, f"{drift.owner} repaired nothing: {changes}"
    assert set(changes) <= {drift.owner, *drift.also}, changes
    again = plain(settled)
    assert again.changed_roles(node.name) == {}, again.changed_roles(node.name)
    assert not any(again.role_decisions(node.name).values()), again.role_decisions(node.name)


def test_kill_during_torchcodec_reinstall(settled: tuple[Node, Path, Path]) -> None:
    """TorchCodec removed from the venv, then the run dies while pip puts it back: a plain re-run repairs."""
    node, work, hosts = settled
    node.sh(f"{VENV}/bin/python -m pip uninstall -y -q torchcodec")
    kill = Kill(node, "Install from the lock (pip --require-hashes", process=r"pip.* install")
    killed = run(work, "site.yml", hosts, skip_tags="report", event_handler=kill.handler)
    assert kill.fired.wait(120) and kill.seen, killed.stdout[-3000:]
    assert (node.fact("xpulab_state_torchcodec") or {}).get("fingerprint") is None, "a success was recorded"
    rerun = plain(settled)
    assert rerun.ran(node.name, "Say which run's lock is taken over")
    assert rerun.role_decisions(node.name).get("torchcodec") is True
    out = node.sh(f"runuser -u nobody -- {VENV}/bin/python -c 'import torchcodec; print(torchcodec.__version__)'")
    assert out.stdout.strip().startswith("0.17.0")
